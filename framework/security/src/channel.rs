//! The secure channel: ChaCha20-Poly1305 data messages with per-direction
//! counters, a replay window that tolerates reordering, and rekey epochs.
//!
//! Sans-IO like the handshake: the caller passes the time, hands in received
//! packets and asks for packets to send ([`SecureSession::poll_transmit`]).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::{Reader, Writer};
use crate::error::{ChannelError, ConfigError, DecodeError};
use crate::primitives::{
    AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, HASH_LEN, KemDecapsulationKey, Secret,
    X448_LEN, X448Secret, hash, mac,
};
use crate::replay::{DEFAULT_WINDOW_BITS, ReplayError, ReplayWindow};
use crate::suite::CipherSuite;

/// Type byte, epoch (u32) and counter (u64), all big-endian; authenticated as
/// associated data together with the caller's routing header.
pub const DATA_HEADER_LEN: usize = 1 + 4 + 8;
/// Longest routing header the caller may bind into a message.
pub const MAX_ROUTING_HEADER_LEN: usize = 256;
/// Bytes a sealed message adds to its plaintext.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + AEAD_TAG_LEN;

/// First byte of every packet this crate produces, so the layer above can
/// route a packet to the handshake or the channel without parsing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketType {
    Offer = 0x01,
    Accept = 0x02,
    Finish = 0x03,
    Confirm = 0x04,
    Application = 0x10,
    RekeyRequest = 0x11,
    RekeyResponse = 0x12,
    RekeyConfirm = 0x13,
}

impl PacketType {
    pub fn of(packet: &[u8]) -> Option<Self> {
        Some(match *packet.first()? {
            0x01 => Self::Offer,
            0x02 => Self::Accept,
            0x03 => Self::Finish,
            0x04 => Self::Confirm,
            0x10 => Self::Application,
            0x11 => Self::RekeyRequest,
            0x12 => Self::RekeyResponse,
            0x13 => Self::RekeyConfirm,
            _ => return None,
        })
    }

    pub fn is_handshake(self) -> bool {
        (self as u8) < 0x10
    }
}

/// Limits and timers of a session. The defaults suit a long-lived platform link.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Replay window in bits per direction. Default 8192 (1 KiB): messages of
    /// one session travel over several transports at once, so they arrive
    /// reordered by up to the number in flight; 8192 covers thousands.
    pub replay_window_bits: usize,
    /// Start a rekey once this many messages were sent in one epoch.
    pub rekey_after_messages: u64,
    /// Refuse to send application data after this many messages in one epoch
    /// (the rekey had `reject - rekey` messages of time to finish).
    pub reject_after_messages: u64,
    /// Start a rekey once an epoch is this old: bounds what a key compromise reveals.
    pub rekey_after: Duration,
    /// How long the previous epoch's key still opens messages after a switch,
    /// for messages that were in flight on slower transports.
    pub previous_epoch_grace: Duration,
    /// Resend a rekey request that got no answer after this long.
    pub rekey_retry: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            replay_window_bits: DEFAULT_WINDOW_BITS,
            rekey_after_messages: 1 << 32,
            reject_after_messages: 1 << 48,
            rekey_after: Duration::from_secs(300),
            previous_epoch_grace: Duration::from_secs(30),
            rekey_retry: Duration::from_secs(5),
        }
    }
}

impl ChannelConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(128..=1 << 20).contains(&self.replay_window_bits) {
            return Err(ConfigError::Channel("replay_window_bits"));
        }
        if self.rekey_after_messages == 0 || self.rekey_after_messages >= self.reject_after_messages
        {
            return Err(ConfigError::Channel("rekey_after_messages"));
        }
        // Leave room above the reject limit for the rekey's own control messages.
        if self.reject_after_messages > u64::MAX - (1 << 16) {
            return Err(ConfigError::Channel("reject_after_messages"));
        }
        if self.rekey_after.is_zero() || self.rekey_retry.is_zero() {
            return Err(ConfigError::Channel("rekey_after"));
        }
        Ok(())
    }
}

/// Which end of the handshake a session was made on. Fixes the key direction
/// for the life of the session, whoever starts a rekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Initiator,
    Responder,
}

/// Secrets of one epoch, derived from the epoch's pseudorandom key.
pub(crate) struct EpochSecrets {
    initiator_to_responder: Secret<AEAD_KEY_LEN>,
    responder_to_initiator: Secret<AEAD_KEY_LEN>,
    rekey_secret: Secret<HASH_LEN>,
}

impl EpochSecrets {
    pub(crate) fn expand(prk: &Secret<HASH_LEN>) -> Self {
        let key = |label: &[u8]| mac::<HASH_LEN>(prk.expose(), &[b"jadeite/v1/expand", label]);
        let truncate = |s: Secret<HASH_LEN>| {
            let mut out = [0u8; AEAD_KEY_LEN];
            out.copy_from_slice(&s.expose()[..AEAD_KEY_LEN]);
            Secret::new(out)
        };
        Self {
            initiator_to_responder: truncate(key(b"initiator to responder")),
            responder_to_initiator: truncate(key(b"responder to initiator")),
            rekey_secret: key(b"rekey secret"),
        }
    }

    fn split(
        self,
        side: Side,
        number: u32,
        window_bits: usize,
    ) -> (SendEpoch, ReceiveEpoch, Secret<HASH_LEN>) {
        let (send, receive) = match side {
            Side::Initiator => (&self.initiator_to_responder, &self.responder_to_initiator),
            Side::Responder => (&self.responder_to_initiator, &self.initiator_to_responder),
        };
        (
            SendEpoch {
                number,
                key: AeadKey::new(send.expose()),
                next_counter: 0,
            },
            ReceiveEpoch {
                number,
                key: AeadKey::new(receive.expose()),
                window: ReplayWindow::new(window_bits),
            },
            self.rekey_secret.clone(),
        )
    }
}

struct SendEpoch {
    number: u32,
    key: AeadKey,
    next_counter: u64,
}

struct ReceiveEpoch {
    number: u32,
    key: AeadKey,
    window: ReplayWindow,
}

/// Keys for the next epoch, installed by the side that answered a rekey
/// request; promoted when the first message under them arrives.
struct PendingEpoch {
    /// The request attempt these keys answer; an older attempt never replaces them.
    attempt: u32,
    send: SendEpoch,
    receive: ReceiveEpoch,
    rekey_secret: Secret<HASH_LEN>,
}

enum RekeyState {
    Idle,
    /// A request is out. `attempt` tells its answer from answers to earlier,
    /// replaced requests that may still arrive over a slower transport.
    Requested {
        target: u32,
        attempt: u32,
        x448: X448Secret,
        x448_public: [u8; X448_LEN],
        kem: KemDecapsulationKey,
        kem_public: Vec<u8>,
        sent_at: Instant,
    },
}

/// An established secure session with one peer.
pub struct SecureSession {
    suite: CipherSuite,
    side: Side,
    config: ChannelConfig,
    send: SendEpoch,
    receive: ReceiveEpoch,
    previous: Option<(ReceiveEpoch, Instant)>,
    pending: Option<PendingEpoch>,
    rekey_secret: Secret<HASH_LEN>,
    rekey: RekeyState,
    /// Rekey requests sent so far; numbers each attempt.
    rekey_attempts: u32,
    epoch_started: Instant,
    /// When this side last sent a rekey confirmation (see `repeat_confirm`).
    last_confirm: Option<Instant>,
    outbox: VecDeque<(PacketType, Vec<u8>)>,
}

impl fmt::Debug for SecureSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureSession")
            .field("suite", &self.suite)
            .field("side", &self.side)
            .field("send_epoch", &self.send.number)
            .field("receive_epoch", &self.receive.number)
            .finish_non_exhaustive()
    }
}

/// What an opened packet turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'p> {
    /// Application data, decrypted in place inside the packet buffer.
    Application(&'p mut [u8]),
    /// A rekey message, handled internally; check [`SecureSession::poll_transmit`].
    Control,
}

impl SecureSession {
    pub(crate) fn new(
        suite: CipherSuite,
        side: Side,
        config: ChannelConfig,
        secrets: EpochSecrets,
        now: Instant,
    ) -> Self {
        let (send, receive, rekey_secret) = secrets.split(side, 0, config.replay_window_bits);
        Self {
            suite,
            side,
            config,
            send,
            receive,
            previous: None,
            pending: None,
            rekey_secret,
            rekey: RekeyState::Idle,
            rekey_attempts: 0,
            epoch_started: now,
            last_confirm: None,
            outbox: VecDeque::new(),
        }
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// The epoch new messages are sealed under.
    pub fn send_epoch(&self) -> u32 {
        self.send.number
    }

    /// Counter the next sealed message will carry.
    pub fn next_send_counter(&self) -> u64 {
        self.send.next_counter
    }

    /// Whether the previous epoch's key is still held (grace period running).
    pub fn holds_previous_epoch(&self) -> bool {
        self.previous.is_some()
    }

    /// Seals `plaintext` into a new packet.
    pub fn seal(
        &mut self,
        routing_header: &[u8],
        plaintext: &[u8],
        now: Instant,
    ) -> Result<Vec<u8>, ChannelError> {
        let mut packet = Vec::with_capacity(DATA_OVERHEAD + plaintext.len());
        packet.resize(DATA_HEADER_LEN, 0);
        packet.extend_from_slice(plaintext);
        self.seal_in_place(routing_header, &mut packet, now)?;
        Ok(packet)
    }

    /// Seals without copying: `packet` holds [`DATA_HEADER_LEN`] reserved bytes
    /// (overwritten with the header) followed by the plaintext; the tag is appended.
    pub fn seal_in_place(
        &mut self,
        routing_header: &[u8],
        packet: &mut Vec<u8>,
        now: Instant,
    ) -> Result<(), ChannelError> {
        self.retire_previous(now);
        if self.send.next_counter >= self.config.reject_after_messages {
            return Err(ChannelError::KeyExhausted);
        }
        self.seal_packet(PacketType::Application, routing_header, packet)
    }

    fn seal_packet(
        &mut self,
        kind: PacketType,
        routing_header: &[u8],
        packet: &mut Vec<u8>,
    ) -> Result<(), ChannelError> {
        if packet.len() < DATA_HEADER_LEN {
            return Err(ChannelError::Decode(DecodeError::Truncated {
                field: "reserved header",
            }));
        }
        let counter = self.send.next_counter;
        // Control messages may use the space above the reject limit, never wrap.
        self.send.next_counter = counter.checked_add(1).ok_or(ChannelError::KeyExhausted)?;
        let header = header_bytes(kind, self.send.number, counter);
        packet[..DATA_HEADER_LEN].copy_from_slice(&header);
        let aad = associated_data(&header, routing_header)?;
        self.send
            .key
            .seal_in_place(&nonce(counter), &aad.0[..aad.1], packet, DATA_HEADER_LEN);
        Ok(())
    }

    /// Authenticates and decrypts `packet` in place. A failure leaves the
    /// session, and its replay window, exactly as it was.
    pub fn open<'p>(
        &mut self,
        routing_header: &[u8],
        packet: &'p mut [u8],
        now: Instant,
    ) -> Result<Received<'p>, ChannelError> {
        self.retire_previous(now);
        let mut reader = Reader::new(packet);
        let kind = reader.u8("packet type")?;
        let kind = PacketType::of(&[kind])
            .filter(|k| !k.is_handshake())
            .ok_or(ChannelError::Decode(DecodeError::UnknownType(kind)))?;
        let epoch = reader.u32("epoch")?;
        let counter = reader.u64("counter")?;
        if packet.len() < DATA_OVERHEAD {
            return Err(ChannelError::Decode(DecodeError::Truncated {
                field: "ciphertext",
            }));
        }
        let (_, body) = packet.split_at_mut(DATA_HEADER_LEN);
        let aad = associated_data(&header_bytes(kind, epoch, counter), routing_header)?;

        let slot = self.receive_slot(epoch)?;
        slot.window.check(counter).map_err(replay_error)?;
        let len = slot
            .key
            .open_in_place(&nonce(counter), &aad.0[..aad.1], body)
            .map_err(|_| ChannelError::BadTag)?;
        slot.window.accept(counter).map_err(replay_error)?;

        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.receive.number == epoch)
        {
            self.promote_pending(now);
        } else if self
            .previous
            .as_ref()
            .is_some_and(|(p, _)| p.number == epoch)
            && self.receive.window.is_empty()
        {
            // We switched, the peer still sends under the old epoch: our
            // confirmation may have been lost. Repeat it, at most once per retry interval.
            self.repeat_confirm(now);
        }
        let plaintext = &mut body[..len];
        match kind {
            PacketType::Application => Ok(Received::Application(plaintext)),
            PacketType::RekeyRequest => self
                .on_rekey_request(plaintext, now)
                .map(|()| Received::Control),
            PacketType::RekeyResponse => self
                .on_rekey_response(plaintext, now)
                .map(|()| Received::Control),
            PacketType::RekeyConfirm => Ok(Received::Control),
            _ => Err(ChannelError::Decode(DecodeError::UnknownType(kind as u8))),
        }
    }

    fn receive_slot(&mut self, epoch: u32) -> Result<&mut ReceiveEpoch, ChannelError> {
        if self.receive.number == epoch {
            return Ok(&mut self.receive);
        }
        if let Some((previous, _)) = self.previous.as_mut().filter(|(p, _)| p.number == epoch) {
            return Ok(previous);
        }
        if let Some(pending) = self.pending.as_mut().filter(|p| p.receive.number == epoch) {
            return Ok(&mut pending.receive);
        }
        Err(ChannelError::UnknownEpoch(epoch))
    }

    /// A packet to send, if the session has one: a queued rekey message, or a
    /// new rekey request when the epoch is due. Call after every `open` and
    /// whenever [`Self::next_timeout`] passes.
    pub fn poll_transmit(
        &mut self,
        routing_header: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ChannelError> {
        self.retire_previous(now);
        if self.outbox.is_empty() {
            self.start_rekey_if_due(now)?;
        }
        let Some((kind, payload)) = self.outbox.pop_front() else {
            return Ok(None);
        };
        let mut packet = Vec::with_capacity(DATA_OVERHEAD + payload.len());
        packet.resize(DATA_HEADER_LEN, 0);
        packet.extend_from_slice(&payload);
        self.seal_packet(kind, routing_header, &mut packet)?;
        Ok(Some(packet))
    }

    /// When `poll_transmit` should next be called even if nothing arrives.
    pub fn next_timeout(&self) -> Option<Instant> {
        let rekey = match &self.rekey {
            RekeyState::Idle if self.pending.is_none() => {
                Some(self.epoch_started + self.config.rekey_after)
            }
            RekeyState::Idle => None,
            RekeyState::Requested { sent_at, .. } => Some(*sent_at + self.config.rekey_retry),
        };
        let retire = self.previous.as_ref().map(|(_, at)| *at);
        [rekey, retire].into_iter().flatten().min()
    }

    /// Starts a rekey now, whatever the counters say.
    pub fn force_rekey(&mut self, now: Instant) -> Result<(), ChannelError> {
        if matches!(self.rekey, RekeyState::Idle) && self.pending.is_none() {
            self.queue_rekey_request(now)?;
        }
        Ok(())
    }

    fn start_rekey_if_due(&mut self, now: Instant) -> Result<(), ChannelError> {
        match &self.rekey {
            RekeyState::Idle if self.pending.is_none() => {
                let due = self.send.next_counter >= self.config.rekey_after_messages
                    || now.saturating_duration_since(self.epoch_started) >= self.config.rekey_after;
                if due {
                    self.queue_rekey_request(now)?;
                }
            }
            RekeyState::Requested { sent_at, .. }
                if now.saturating_duration_since(*sent_at) >= self.config.rekey_retry =>
            {
                // Lost or unanswered: a fresh request with fresh ephemeral keys.
                self.queue_rekey_request(now)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn queue_rekey_request(&mut self, now: Instant) -> Result<(), ChannelError> {
        let target = self
            .send
            .number
            .checked_add(1)
            .ok_or(ChannelError::KeyExhausted)?;
        let x448 = X448Secret::generate().map_err(|_| ChannelError::Randomness)?;
        let (kem, kem_public) = self
            .suite
            .kem()
            .generate()
            .map_err(|_| ChannelError::Randomness)?;
        self.rekey_attempts = self.rekey_attempts.wrapping_add(1);
        let attempt = self.rekey_attempts;
        let x448_public = x448.public_key();
        let mut request = Writer::with_capacity(8 + X448_LEN + kem_public.len());
        request
            .u32(target)
            .u32(attempt)
            .bytes(&x448_public)
            .bytes(&kem_public);
        // A retry replaces the unsent request, if any.
        self.outbox
            .retain(|(kind, _)| *kind != PacketType::RekeyRequest);
        self.outbox
            .push_back((PacketType::RekeyRequest, request.into_vec()));
        self.rekey = RekeyState::Requested {
            target,
            attempt,
            x448,
            x448_public,
            kem,
            kem_public,
            sent_at: now,
        };
        tracing::debug!(target_epoch = target, "rekey requested");
        Ok(())
    }

    fn on_rekey_request(&mut self, payload: &[u8], _now: Instant) -> Result<(), ChannelError> {
        let kem = self.suite.kem();
        let mut reader = Reader::new(payload);
        let target = reader.u32("target epoch")?;
        let attempt = reader.u32("attempt")?;
        let peer_x448: [u8; X448_LEN] = reader.array("x448 share")?;
        let kem_public = reader.take(kem.public_key_len(), "kem public key")?;
        reader.finish()?;
        if target != self.receive.number.wrapping_add(1) {
            return Ok(()); // stale or from the future: ignore
        }
        if self.pending.as_ref().is_some_and(|p| p.attempt >= attempt) {
            return Ok(()); // a delayed, replaced request: keep the newer answer
        }
        if let RekeyState::Requested { target: ours, .. } = &self.rekey {
            // Both sides asked at once: the handshake initiator's request wins.
            if *ours == target && self.side == Side::Initiator {
                return Ok(());
            }
            self.rekey = RekeyState::Idle;
            self.outbox
                .retain(|(kind, _)| *kind != PacketType::RekeyRequest);
        }
        let x448 = X448Secret::generate().map_err(|_| ChannelError::Randomness)?;
        let x448_shared = x448
            .diffie_hellman(&peer_x448)
            .map_err(|_| ChannelError::BadRekey)?;
        let (ciphertext, kem_shared) = kem
            .encapsulate(kem_public)
            .map_err(|_| ChannelError::BadRekey)?;
        let own_x448 = x448.public_key();
        let prk = self.rekey_prk(
            target,
            &x448_shared,
            &kem_shared,
            &peer_x448,
            &own_x448,
            kem_public,
            &ciphertext,
        );
        let (send, receive, rekey_secret) =
            EpochSecrets::expand(&prk).split(self.side, target, self.config.replay_window_bits);
        self.pending = Some(PendingEpoch {
            attempt,
            send,
            receive,
            rekey_secret,
        });
        let mut response = Writer::with_capacity(8 + X448_LEN + ciphertext.len());
        response
            .u32(target)
            .u32(attempt)
            .bytes(&own_x448)
            .bytes(&ciphertext);
        self.outbox
            .push_back((PacketType::RekeyResponse, response.into_vec()));
        tracing::debug!(target_epoch = target, "rekey answered");
        Ok(())
    }

    fn on_rekey_response(&mut self, payload: &[u8], now: Instant) -> Result<(), ChannelError> {
        let RekeyState::Requested {
            target, attempt, ..
        } = &self.rekey
        else {
            return Ok(()); // an answer to a request we no longer wait for
        };
        let (target, attempt) = (*target, *attempt);
        let kem_len = self.suite.kem().ciphertext_len();
        let mut reader = Reader::new(payload);
        if reader.u32("target epoch")? != target || reader.u32("attempt")? != attempt {
            return Ok(()); // answers a request this side has since replaced
        }
        let peer_x448: [u8; X448_LEN] = reader.array("x448 share")?;
        let ciphertext = reader.take(kem_len, "kem ciphertext")?;
        reader.finish()?;
        let RekeyState::Requested {
            x448,
            x448_public: own_x448,
            kem,
            kem_public,
            ..
        } = std::mem::replace(&mut self.rekey, RekeyState::Idle)
        else {
            return Ok(());
        };
        let x448_shared = x448
            .diffie_hellman(&peer_x448)
            .map_err(|_| ChannelError::BadRekey)?;
        let kem_shared = kem
            .decapsulate(ciphertext)
            .map_err(|_| ChannelError::BadRekey)?;
        let prk = self.rekey_prk(
            target,
            &x448_shared,
            &kem_shared,
            &own_x448,
            &peer_x448,
            &kem_public,
            ciphertext,
        );
        let (send, receive, rekey_secret) =
            EpochSecrets::expand(&prk).split(self.side, target, self.config.replay_window_bits);
        self.install(send, receive, rekey_secret, now);
        // The confirmation travels under the new key: the peer switches on it.
        self.outbox
            .push_back((PacketType::RekeyConfirm, target.to_be_bytes().to_vec()));
        tracing::debug!(epoch = target, "rekeyed");
        Ok(())
    }

    fn repeat_confirm(&mut self, now: Instant) {
        let due = self
            .last_confirm
            .is_none_or(|at| now.saturating_duration_since(at) >= self.config.rekey_retry);
        if due
            && !self
                .outbox
                .iter()
                .any(|(kind, _)| *kind == PacketType::RekeyConfirm)
        {
            self.outbox.push_back((
                PacketType::RekeyConfirm,
                self.send.number.to_be_bytes().to_vec(),
            ));
            self.last_confirm = Some(now);
        }
    }

    fn promote_pending(&mut self, now: Instant) {
        if let Some(PendingEpoch {
            send,
            attempt: _,
            receive,
            rekey_secret,
        }) = self.pending.take()
        {
            tracing::debug!(epoch = receive.number, "rekeyed");
            self.install(send, receive, rekey_secret, now);
        }
    }

    /// Switches to a new epoch; the old receive key stays for the grace
    /// period, the old send key and rekey secret are dropped (zeroized) now.
    fn install(
        &mut self,
        send: SendEpoch,
        receive: ReceiveEpoch,
        rekey_secret: Secret<HASH_LEN>,
        now: Instant,
    ) {
        let old = std::mem::replace(&mut self.receive, receive);
        self.previous = Some((old, now + self.config.previous_epoch_grace));
        self.send = send;
        self.rekey_secret = rekey_secret;
        self.epoch_started = now;
    }

    fn retire_previous(&mut self, now: Instant) {
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, retire_at)| now >= *retire_at)
        {
            self.previous = None;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rekey_prk(
        &self,
        target: u32,
        x448_shared: &Secret<X448_LEN>,
        kem_shared: &Secret<32>,
        requester_x448: &[u8; X448_LEN],
        responder_x448: &[u8; X448_LEN],
        kem_public: &[u8],
        kem_ciphertext: &[u8],
    ) -> Secret<HASH_LEN> {
        let ikm = Secret::new(hash(&[
            b"jadeite/v1/rekey-ikm",
            self.suite.name().as_bytes(),
            &target.to_be_bytes(),
            x448_shared.expose(),
            kem_shared.expose(),
            requester_x448,
            responder_x448,
            kem_public,
            kem_ciphertext,
        ]));
        mac(
            self.rekey_secret.expose(),
            &[b"jadeite/v1/rekey-extract", ikm.expose()],
        )
    }
}

fn header_bytes(kind: PacketType, epoch: u32, counter: u64) -> [u8; DATA_HEADER_LEN] {
    let mut header = [0u8; DATA_HEADER_LEN];
    header[0] = kind as u8;
    header[1..5].copy_from_slice(&epoch.to_be_bytes());
    header[5..].copy_from_slice(&counter.to_be_bytes());
    header
}

/// Header and routing header side by side on the stack: no allocation per message.
fn associated_data(
    header: &[u8; DATA_HEADER_LEN],
    routing_header: &[u8],
) -> Result<([u8; DATA_HEADER_LEN + MAX_ROUTING_HEADER_LEN], usize), ChannelError> {
    if routing_header.len() > MAX_ROUTING_HEADER_LEN {
        return Err(ChannelError::Decode(DecodeError::BadLength {
            field: "routing header",
            len: routing_header.len(),
            min: 0,
            max: MAX_ROUTING_HEADER_LEN,
        }));
    }
    let mut aad = [0u8; DATA_HEADER_LEN + MAX_ROUTING_HEADER_LEN];
    aad[..DATA_HEADER_LEN].copy_from_slice(header);
    aad[DATA_HEADER_LEN..DATA_HEADER_LEN + routing_header.len()].copy_from_slice(routing_header);
    Ok((aad, DATA_HEADER_LEN + routing_header.len()))
}

/// 32 zero bits then the 64-bit counter, little-endian (as WireGuard). The
/// epoch is not in the nonce because every epoch has its own key.
fn nonce(counter: u64) -> [u8; AEAD_NONCE_LEN] {
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

fn replay_error(error: ReplayError) -> ChannelError {
    match error {
        ReplayError::Duplicate => ChannelError::Replay,
        ReplayError::TooOld => ChannelError::TooOld,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(config: ChannelConfig, now: Instant) -> (SecureSession, SecureSession) {
        let prk = Secret::new([7u8; HASH_LEN]);
        let suite = CipherSuite::ALL[1];
        (
            SecureSession::new(
                suite,
                Side::Initiator,
                config.clone(),
                EpochSecrets::expand(&prk),
                now,
            ),
            SecureSession::new(
                suite,
                Side::Responder,
                config,
                EpochSecrets::expand(&prk),
                now,
            ),
        )
    }

    fn deliver(from: &mut SecureSession, to: &mut SecureSession, now: Instant) -> Option<Vec<u8>> {
        let mut packet = from.poll_transmit(b"", now).expect("poll")?;
        to.open(b"", &mut packet, now)
            .expect("control packet opens");
        Some(packet)
    }

    /// If the rekey confirmation is lost and the peer keeps sending under the
    /// old epoch, the confirmation is repeated, so the peer switches before
    /// the grace period would reject its messages.
    #[test]
    fn lost_confirm_is_repeated() {
        let t0 = Instant::now();
        let config = ChannelConfig::default();
        let (mut a, mut b) = pair(config.clone(), t0);
        a.force_rekey(t0).expect("rekey");
        deliver(&mut a, &mut b, t0).expect("request");
        deliver(&mut b, &mut a, t0).expect("response");
        assert_eq!(a.send_epoch(), 1);
        let lost = a.poll_transmit(b"", t0).expect("poll");
        assert_eq!(
            lost.as_deref().and_then(PacketType::of),
            Some(PacketType::RekeyConfirm)
        );
        assert_eq!(b.send_epoch(), 0, "b waits for a new-epoch message");

        // b keeps talking under epoch 0; after the retry interval a repeats its confirmation.
        let t1 = t0 + config.rekey_retry;
        let mut old = b.seal(b"", b"still epoch 0", t1).expect("seal");
        assert!(matches!(
            a.open(b"", &mut old, t1),
            Ok(Received::Application(_))
        ));
        deliver(&mut a, &mut b, t1).expect("repeated confirmation");
        assert_eq!(b.send_epoch(), 1);
        let mut new = b.seal(b"", b"epoch 1", t1).expect("seal");
        assert!(matches!(
            a.open(b"", &mut new, t1),
            Ok(Received::Application(_))
        ));
    }
}
