//! The handshake of the paper's Fig. 2, in four messages.
//!
//! ```text
//! Initiator                                             Responder
//! Offer   = nonce, platform, suites, X448 share,
//!           J-PAKE round 1 (all own password roles) -->
//!                  <-- Accept = nonce, platform, suite, X448 share, KEM key,
//!                               J-PAKE round 1 + round 2 (shared roles)
//! Finish  = KEM ciphertext, J-PAKE round 2,
//!           role authenticators, finished MAC       -->
//!                  <-- Confirm = role authenticators, finished MAC
//! ```
//!
//! A pure state machine: bytes in, bytes and an [`Established`] session out.
//! Every byte exchanged goes into the transcript hash, which salts the key
//! derivation and is covered by every authenticator and finished MAC.

mod keys;
mod messages;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use rustls_pki_types::UnixTime;
use subtle::ConstantTimeEq;

use crate::channel::{ChannelConfig, PacketType, SecureSession, Side};
use crate::error::{ConfigError, HandshakeError};
use crate::jpake::{JpakeRun, Position};
use crate::primitives::{
    HASH_LEN, KemDecapsulationKey, Secret, Transcript, X448_LEN, X448Secret, random_array,
};
use crate::roles::{Credentials, RoleKind, RoleName};
use crate::suite::CipherSuite;

use keys::{SessionKeys, verify_authenticators, write_authenticators};
pub use messages::MAX_HANDSHAKE_MESSAGE_LEN;
use messages::{Accept, Confirm, Finish, MAC_LEN, NONCE_LEN, Offer};

/// A platform's random identity; part of the transcript, so a relay cannot
/// present one platform's handshake as another's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformId(pub [u8; 16]);

impl PlatformId {
    pub fn random() -> Result<Self, getrandom::Error> {
        random_array().map(Self)
    }
}

impl fmt::Display for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlatformId({self})")
    }
}

/// What to do when a handshake completes but no role of the peer verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthenticatedPolicy {
    /// Abort: the peer may be a man in the middle, or shares no role with us.
    Refuse,
    /// Keep the session as opportunistic encryption only; the layer above
    /// lets such peers reach `unrestricted` services alone.
    Accept,
}

/// The time, passed in: wall clock for certificate validity, monotonic for timers.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall: UnixTime,
    pub monotonic: Instant,
}

impl Now {
    pub fn system() -> Self {
        Self {
            wall: UnixTime::now(),
            monotonic: Instant::now(),
        }
    }
}

/// One platform's security configuration.
#[derive(Debug)]
pub struct HandshakeConfig {
    pub platform: PlatformId,
    /// Suites this platform accepts, most preferred first. The initiator
    /// offers all of them; the responder picks its first one that was offered.
    pub suites: Vec<CipherSuite>,
    pub credentials: Credentials,
    pub unauthenticated: UnauthenticatedPolicy,
    pub channel: ChannelConfig,
}

impl HandshakeConfig {
    /// Both suites (NewHope first, as the paper), refusing unauthenticated peers.
    pub fn new(platform: PlatformId, credentials: Credentials) -> Self {
        Self {
            platform,
            suites: CipherSuite::ALL.to_vec(),
            credentials,
            unauthenticated: UnauthenticatedPolicy::Refuse,
            channel: ChannelConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let unique: BTreeSet<_> = self.suites.iter().collect();
        if self.suites.is_empty() || unique.len() != self.suites.len() {
            return Err(ConfigError::SuiteList);
        }
        self.credentials.validate()?;
        self.channel.validate()
    }
}

/// Something the layer above must know about, even if the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// The peer's proof for a password role did not verify: one online
    /// password guess (or a wrong password in its configuration). Throttle.
    PasswordRoleFailed { role: RoleName },
    /// A shared-key or certificate claim did not verify.
    RoleRejected {
        role: RoleName,
        kind: RoleKind,
        reason: String,
    },
}

/// A finished handshake.
#[derive(Debug)]
pub struct Established {
    pub suite: CipherSuite,
    pub peer: PlatformId,
    /// The peer's roles whose authenticators verified. Empty means the session
    /// is unauthenticated (only possible under [`UnauthenticatedPolicy::Accept`]).
    pub peer_roles: BTreeSet<RoleName>,
    pub session: SecureSession,
}

/// What one received message produced.
#[derive(Debug)]
pub struct Progress {
    /// The next handshake message to send, if any.
    pub reply: Option<Vec<u8>>,
    /// Set once the handshake is complete on this side.
    pub established: Option<Established>,
}

/// One side of one handshake.
pub struct Handshake {
    config: Arc<HandshakeConfig>,
    state: State,
    events: Vec<SecurityEvent>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

enum State {
    AwaitOffer,
    AwaitAccept(Box<AwaitAccept>),
    AwaitFinish(Box<AwaitFinish>),
    AwaitConfirm(Box<AwaitConfirm>),
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::AwaitOffer => "await offer",
            Self::AwaitAccept(_) => "await accept",
            Self::AwaitFinish(_) => "await finish",
            Self::AwaitConfirm(_) => "await confirm",
            Self::Closed => "closed",
        }
    }

    fn expects(&self) -> Option<PacketType> {
        match self {
            Self::AwaitOffer => Some(PacketType::Offer),
            Self::AwaitAccept(_) => Some(PacketType::Accept),
            Self::AwaitFinish(_) => Some(PacketType::Finish),
            Self::AwaitConfirm(_) => Some(PacketType::Confirm),
            Self::Closed => None,
        }
    }
}

struct AwaitAccept {
    transcript: Transcript,
    x448: X448Secret,
    x448_public: [u8; X448_LEN],
    offered: Vec<CipherSuite>,
    jpake: Vec<JpakeRun>,
    expected_peer: Option<PlatformId>,
}

struct AwaitFinish {
    transcript: Transcript,
    suite: CipherSuite,
    peer: PlatformId,
    x448_shared: Secret<X448_LEN>,
    x448_initiator: [u8; X448_LEN],
    x448_responder: [u8; X448_LEN],
    kem: KemDecapsulationKey,
    kem_public: Vec<u8>,
    jpake: Vec<JpakeRun>,
}

struct AwaitConfirm {
    transcript: Transcript,
    suite: CipherSuite,
    peer: PlatformId,
    keys: SessionKeys,
    password_keys: Vec<(RoleName, Secret<HASH_LEN>)>,
}

const TRANSCRIPT_LABEL: &[u8] = b"jadeite/v1/handshake";

impl Handshake {
    /// Starts a handshake as initiator; returns the Offer to send.
    pub fn initiate(
        config: Arc<HandshakeConfig>,
        expected_peer: Option<PlatformId>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        let nonce: [u8; NONCE_LEN] = random_array().map_err(|_| HandshakeError::Randomness)?;
        let x448 = X448Secret::generate().map_err(|_| HandshakeError::Randomness)?;
        let x448_public = x448.public_key();
        let mut message = Offer::encode(&nonce, &config.platform, &config.suites, &x448_public);
        let mut transcript = Transcript::new(TRANSCRIPT_LABEL);
        transcript.absorb(message.as_slice());
        let context = transcript.current();

        let mut jpake = Vec::new();
        let mut rounds = Vec::new();
        for (role, password) in &config.credentials.passwords {
            let (run, round1) =
                JpakeRun::start(role.clone(), password, Position::Initiator, &context)
                    .map_err(|_| HandshakeError::Randomness)?;
            jpake.push(run);
            rounds.push(round1);
        }
        let head_len = message.len();
        Offer::encode_jpake(&mut message, &rounds);
        transcript.absorb(&message.as_slice()[head_len..]);

        let offered = config.suites.clone();
        let state = AwaitAccept {
            transcript,
            x448,
            x448_public,
            offered,
            jpake,
            expected_peer,
        };
        let handshake = Self {
            config,
            state: State::AwaitAccept(Box::new(state)),
            events: Vec::new(),
        };
        Ok((handshake, message.into_vec()))
    }

    /// A responder waiting for an Offer.
    pub fn respond(config: Arc<HandshakeConfig>) -> Self {
        Self {
            config,
            state: State::AwaitOffer,
            events: Vec::new(),
        }
    }

    /// Feeds one received handshake message. After an error the handshake is
    /// closed; [`Self::take_events`] still reports what happened.
    pub fn receive(&mut self, message: &[u8], now: Now) -> Result<Progress, HandshakeError> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        if let Some(expected) = state.expects() {
            let received = message.first().copied().unwrap_or(0);
            if received != expected as u8 {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: state.name(),
                    received,
                });
            }
        }
        match state {
            State::AwaitOffer => self.on_offer(message),
            State::AwaitAccept(state) => self.on_accept(*state, message),
            State::AwaitFinish(state) => self.on_finish(*state, message, now),
            State::AwaitConfirm(state) => self.on_confirm(*state, message, now),
            State::Closed => Err(HandshakeError::Closed),
        }
    }

    /// Events gathered so far (failed password roles, rejected claims).
    pub fn take_events(&mut self) -> Vec<SecurityEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn on_offer(&mut self, message: &[u8]) -> Result<Progress, HandshakeError> {
        let config = Arc::clone(&self.config);
        let offer = Offer::decode(message)?;
        if offer.platform == config.platform {
            return Err(HandshakeError::Reflection);
        }
        let suite = config
            .suites
            .iter()
            .copied()
            .find(|suite| offer.suites.contains(suite))
            .ok_or(HandshakeError::NoCommonSuite)?;

        let mut transcript = Transcript::new(TRANSCRIPT_LABEL);
        transcript.absorb(&offer.bytes[..offer.head_len]);
        let initiator_context = transcript.current();
        transcript.absorb(&offer.bytes[offer.head_len..]);

        let x448 = X448Secret::generate().map_err(|_| HandshakeError::Randomness)?;
        let x448_public = x448.public_key();
        let x448_shared = x448
            .diffie_hellman(&offer.x448)
            .map_err(|_| HandshakeError::InvalidKeyShare("X448 share"))?;
        let (kem, kem_public) = suite
            .kem()
            .generate()
            .map_err(|_| HandshakeError::Randomness)?;
        let nonce: [u8; NONCE_LEN] = random_array().map_err(|_| HandshakeError::Randomness)?;
        let mut reply = Accept::encode(&nonce, &config.platform, suite, &x448_public, &kem_public);
        transcript.absorb(reply.as_slice());
        let context = transcript.current();

        let mut jpake = Vec::new();
        let mut rounds = Vec::new();
        for peer_round1 in &offer.jpake {
            let Some(password) = config.credentials.passwords.get(&peer_round1.role) else {
                continue;
            };
            let role = peer_round1.role.clone();
            let (mut run, round1) =
                JpakeRun::start(role.clone(), password, Position::Responder, &context)
                    .map_err(|_| HandshakeError::Randomness)?;
            run.receive_round1(peer_round1, &initiator_context)
                .map_err(|reason| HandshakeError::Jpake {
                    role: role.clone(),
                    reason,
                })?;
            let round2 = run
                .round2(&context)
                .map_err(|reason| HandshakeError::Jpake { role, reason })?;
            rounds.push((round1, round2));
            jpake.push(run);
        }
        let head_len = reply.len();
        Accept::encode_jpake(&mut reply, &rounds);
        transcript.absorb(&reply.as_slice()[head_len..]);

        self.state = State::AwaitFinish(Box::new(AwaitFinish {
            transcript,
            suite,
            peer: offer.platform,
            x448_shared,
            x448_initiator: offer.x448,
            x448_responder: x448_public,
            kem,
            kem_public,
            jpake,
        }));
        Ok(Progress {
            reply: Some(reply.into_vec()),
            established: None,
        })
    }

    fn on_accept(
        &mut self,
        mut state: AwaitAccept,
        message: &[u8],
    ) -> Result<Progress, HandshakeError> {
        let config = Arc::clone(&self.config);
        let accept = Accept::decode(message)?;
        let suite = accept
            .suite
            .filter(|s| state.offered.contains(s))
            .ok_or(HandshakeError::UnofferedSuite)?;
        if accept.platform == config.platform || accept.x448 == state.x448_public {
            return Err(HandshakeError::Reflection);
        }
        if state
            .expected_peer
            .is_some_and(|expected| expected != accept.platform)
        {
            return Err(HandshakeError::PeerMismatch);
        }
        state.transcript.absorb(&accept.bytes[..accept.head_len]);
        let responder_context = state.transcript.current();
        state.transcript.absorb(&accept.bytes[accept.head_len..]);

        let x448_shared = state
            .x448
            .diffie_hellman(&accept.x448)
            .map_err(|_| HandshakeError::InvalidKeyShare("X448 share"))?;
        let (kem_ciphertext, kem_shared) = suite
            .kem()
            .encapsulate(accept.kem_public)
            .map_err(|_| HandshakeError::InvalidKeyShare("KEM key"))?;

        // The responder answers a subset of our runs, in our order.
        let mut runs = std::mem::take(&mut state.jpake).into_iter();
        let mut active = Vec::with_capacity(accept.jpake.len());
        for (round1, round2) in &accept.jpake {
            let mut run = runs
                .by_ref()
                .find(|run| run.role() == &round1.role)
                .ok_or(HandshakeError::PasswordRoleMismatch)?;
            let jpake_error = |reason| HandshakeError::Jpake {
                role: round1.role.clone(),
                reason,
            };
            run.receive_round1(round1, &responder_context)
                .map_err(jpake_error)?;
            active.push((run, round2));
        }

        let mut reply = Finish::encode_head(&kem_ciphertext);
        state.transcript.absorb(reply.as_slice());
        let context = state.transcript.current();
        let mut password_keys = Vec::with_capacity(active.len());
        let mut rounds = Vec::with_capacity(active.len());
        for (run, peer_round2) in &active {
            let jpake_error = |reason| HandshakeError::Jpake {
                role: run.role().clone(),
                reason,
            };
            password_keys.push((
                run.role().clone(),
                run.finish(peer_round2, &responder_context)
                    .map_err(jpake_error)?,
            ));
            rounds.push(run.round2(&context).map_err(jpake_error)?);
        }
        let head_len = reply.len();
        Finish::encode_jpake(&mut reply, &rounds);
        state.transcript.absorb(&reply.as_slice()[head_len..]);

        let keys = SessionKeys::derive(
            suite,
            &state.transcript.current(),
            &x448_shared,
            &kem_shared,
            &state.x448_public,
            &accept.x448,
            accept.kem_public,
            &kem_ciphertext,
        );
        let auth_start = reply.len();
        write_authenticators(
            &mut reply,
            &config.credentials,
            Position::Initiator,
            &state.transcript.current(),
            &keys,
            &password_keys,
        )?;
        state.transcript.absorb(&reply.as_slice()[auth_start..]);
        let finished = keys.finished(Position::Initiator, &state.transcript.current());
        reply.bytes(finished.expose());
        state.transcript.absorb(finished.expose());

        self.state = State::AwaitConfirm(Box::new(AwaitConfirm {
            transcript: state.transcript,
            suite,
            peer: accept.platform,
            keys,
            password_keys,
        }));
        Ok(Progress {
            reply: Some(reply.into_vec()),
            established: None,
        })
    }

    fn on_finish(
        &mut self,
        mut state: AwaitFinish,
        message: &[u8],
        now: Now,
    ) -> Result<Progress, HandshakeError> {
        let config = Arc::clone(&self.config);
        let finish = Finish::decode(message)?;
        let roles_match = finish.jpake.len() == state.jpake.len()
            && finish
                .jpake
                .iter()
                .zip(&state.jpake)
                .all(|(round2, run)| &round2.role == run.role());
        if !roles_match {
            return Err(HandshakeError::PasswordRoleMismatch);
        }
        let kem_shared = state
            .kem
            .decapsulate(finish.kem_ciphertext)
            .map_err(|_| HandshakeError::InvalidKeyShare("KEM ciphertext"))?;
        state.transcript.absorb(&finish.bytes[..finish.head_len]);
        let initiator_context = state.transcript.current();
        state
            .transcript
            .absorb(&finish.bytes[finish.head_len..finish.keys_len]);

        let mut password_keys = Vec::with_capacity(state.jpake.len());
        for (run, round2) in state.jpake.iter().zip(&finish.jpake) {
            let key =
                run.finish(round2, &initiator_context)
                    .map_err(|reason| HandshakeError::Jpake {
                        role: run.role().clone(),
                        reason,
                    })?;
            password_keys.push((run.role().clone(), key));
        }
        let keys_transcript = state.transcript.current();
        let keys = SessionKeys::derive(
            state.suite,
            &keys_transcript,
            &state.x448_shared,
            &kem_shared,
            &state.x448_initiator,
            &state.x448_responder,
            &state.kem_public,
            finish.kem_ciphertext,
        );
        state
            .transcript
            .absorb(&finish.bytes[finish.keys_len..finish.auth_len]);
        check_finished(
            &keys,
            Position::Initiator,
            &state.transcript.current(),
            &finish.finished,
        )?;
        state.transcript.absorb(&finish.finished);

        let peer_roles = verify_authenticators(
            &finish.authenticators,
            &config.credentials,
            Position::Initiator,
            &keys_transcript,
            &keys,
            &password_keys,
            now.wall,
            &mut self.events,
        );
        self.apply_policy(&peer_roles)?;

        let mut reply = Confirm::encode_head();
        write_authenticators(
            &mut reply,
            &config.credentials,
            Position::Responder,
            &state.transcript.current(),
            &keys,
            &password_keys,
        )?;
        state.transcript.absorb(reply.as_slice());
        let finished = keys.finished(Position::Responder, &state.transcript.current());
        reply.bytes(finished.expose());

        let session = SecureSession::new(
            state.suite,
            Side::Responder,
            config.channel.clone(),
            keys.into_epoch_secrets(),
            now.monotonic,
        );
        Ok(Progress {
            reply: Some(reply.into_vec()),
            established: Some(Established {
                suite: state.suite,
                peer: state.peer,
                peer_roles,
                session,
            }),
        })
    }

    fn on_confirm(
        &mut self,
        mut state: AwaitConfirm,
        message: &[u8],
        now: Now,
    ) -> Result<Progress, HandshakeError> {
        let config = Arc::clone(&self.config);
        let confirm = Confirm::decode(message)?;
        let authenticated_transcript = state.transcript.current();
        state.transcript.absorb(&confirm.bytes[..confirm.auth_len]);
        check_finished(
            &state.keys,
            Position::Responder,
            &state.transcript.current(),
            &confirm.finished,
        )?;

        let peer_roles = verify_authenticators(
            &confirm.authenticators,
            &config.credentials,
            Position::Responder,
            &authenticated_transcript,
            &state.keys,
            &state.password_keys,
            now.wall,
            &mut self.events,
        );
        self.apply_policy(&peer_roles)?;
        let session = SecureSession::new(
            state.suite,
            Side::Initiator,
            config.channel.clone(),
            state.keys.into_epoch_secrets(),
            now.monotonic,
        );
        Ok(Progress {
            reply: None,
            established: Some(Established {
                suite: state.suite,
                peer: state.peer,
                peer_roles,
                session,
            }),
        })
    }

    fn apply_policy(&self, peer_roles: &BTreeSet<RoleName>) -> Result<(), HandshakeError> {
        if peer_roles.is_empty() && self.config.unauthenticated == UnauthenticatedPolicy::Refuse {
            return Err(HandshakeError::NoVerifiedRole);
        }
        Ok(())
    }
}

fn check_finished(
    keys: &SessionKeys,
    sender: Position,
    transcript: &[u8; HASH_LEN],
    received: &[u8; MAC_LEN],
) -> Result<(), HandshakeError> {
    let expected = keys.finished(sender, transcript);
    if bool::from(expected.expose().ct_eq(received)) {
        Ok(())
    } else {
        Err(HandshakeError::KeyConfirmation)
    }
}
