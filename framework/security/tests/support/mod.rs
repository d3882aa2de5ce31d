//! Shared test helpers: configurations, an in-process handshake driver with a
//! man-in-the-middle hook, and a throwaway PKI made at test time.
#![allow(dead_code)] // each test binary uses a different subset

pub mod test_pki;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jadeite_security::{
    CertificateIdentity, CipherSuite, Credentials, Established, Handshake, HandshakeConfig,
    HandshakeError, Now, Password, PlatformId, RoleName, RoleTrustAnchor, SecurityEvent, SharedKey,
    UnauthenticatedPolicy,
};
use test_pki::{KeyAlg, TestCa};

pub fn role(name: &str) -> RoleName {
    RoleName::new(name).expect("valid role name")
}

pub fn roles(names: &[&str]) -> std::collections::BTreeSet<RoleName> {
    names.iter().map(|n| role(n)).collect()
}

pub fn shared_key(byte: u8) -> SharedKey {
    SharedKey::new(&[byte; 32]).expect("32-byte key")
}

pub fn password(text: &str) -> Password {
    Password::new(text).expect("valid password")
}

pub fn now() -> Now {
    Now::system()
}

/// A leaf certificate under `ca`, valid from yesterday to tomorrow.
pub fn certificate(ca: &TestCa, name: &str) -> CertificateIdentity {
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let leaf = test_pki::leaf(ca, name, KeyAlg::EcdsaP256, now - day, now + day);
    CertificateIdentity::from_der(vec![leaf.cert_der], &leaf.pkcs8_der).expect("valid identity")
}

pub fn anchor(ca: &TestCa) -> RoleTrustAnchor {
    RoleTrustAnchor::from_der(ca.cert_der.clone()).expect("valid anchor")
}

pub fn ca(name: &str) -> TestCa {
    test_pki::ca(name, KeyAlg::EcdsaP256)
}

/// A configuration with a fresh platform id and the given suites, most preferred first.
pub fn config_with(
    credentials: Credentials,
    suites: &[CipherSuite],
    policy: UnauthenticatedPolicy,
) -> Arc<HandshakeConfig> {
    let mut config = HandshakeConfig::new(PlatformId::random().expect("rng"), credentials);
    config.suites = suites.to_vec();
    config.unauthenticated = policy;
    config.validate().expect("valid config");
    Arc::new(config)
}

pub fn config(credentials: Credentials) -> Arc<HandshakeConfig> {
    config_with(
        credentials,
        &CipherSuite::ALL,
        UnauthenticatedPolicy::Refuse,
    )
}

/// Which message a tamper hook sees: 1 = Offer, 2 = Accept, 3 = Finish, 4 = Confirm.
pub type Step = usize;

#[derive(Debug)]
pub struct Outcome {
    pub initiator: Result<Established, HandshakeError>,
    pub responder: Result<Established, HandshakeError>,
    pub initiator_events: Vec<SecurityEvent>,
    pub responder_events: Vec<SecurityEvent>,
    /// Every message as it was sent (before tampering), in order.
    pub messages: Vec<Vec<u8>>,
}

impl Outcome {
    pub fn both(self) -> (Established, Established) {
        (
            self.initiator.expect("initiator established"),
            self.responder.expect("responder established"),
        )
    }
}

pub fn run(initiator: &Arc<HandshakeConfig>, responder: &Arc<HandshakeConfig>) -> Outcome {
    run_with(initiator, responder, |_, _| {})
}

/// Runs a handshake in process; `tamper` may rewrite each message in flight.
/// A side that fails stops the exchange; the other side reports `Closed` if
/// it never got to finish.
pub fn run_with(
    initiator_config: &Arc<HandshakeConfig>,
    responder_config: &Arc<HandshakeConfig>,
    mut tamper: impl FnMut(Step, &mut Vec<u8>),
) -> Outcome {
    let mut messages = Vec::new();
    let (mut initiator, offer) =
        Handshake::initiate(Arc::clone(initiator_config), None).expect("initiate");
    let mut responder = Handshake::respond(Arc::clone(responder_config));
    let mut initiator_result = Err(HandshakeError::Closed);
    let mut responder_result = Err(HandshakeError::Closed);

    let mut in_flight = offer;
    for step in 1..=4 {
        messages.push(in_flight.clone());
        tamper(step, &mut in_flight);
        let to_responder = step % 2 == 1;
        let (side, result) = if to_responder {
            (&mut responder, &mut responder_result)
        } else {
            (&mut initiator, &mut initiator_result)
        };
        match side.receive(&in_flight, now()) {
            Ok(progress) => {
                if let Some(established) = progress.established {
                    *result = Ok(established);
                }
                match progress.reply {
                    Some(reply) => in_flight = reply,
                    None => break,
                }
            }
            Err(error) => {
                *result = Err(error);
                break;
            }
        }
    }
    Outcome {
        initiator: initiator_result,
        responder: responder_result,
        initiator_events: initiator.take_events(),
        responder_events: responder.take_events(),
        messages,
    }
}

/// Byte layout of handshake messages, for tests that play man in the middle
/// (docs/protocol.md has the tables).
pub mod wire {
    use std::ops::Range;

    /// Offer: type, version, nonce (32), platform id (16), then the suite count.
    pub const OFFER_PLATFORM: Range<usize> = 34..50;
    pub const OFFER_SUITE_COUNT: usize = 50;
    /// Accept: type, nonce (32), platform id (16), then the suite name's length.
    pub const ACCEPT_SUITE: usize = 49;

    /// Byte offset just past the suite list of an Offer (start of its X448 share).
    pub fn offer_suites_end(offer: &[u8]) -> usize {
        let mut at = OFFER_SUITE_COUNT + 1;
        for _ in 0..offer[OFFER_SUITE_COUNT] {
            at += 1 + usize::from(offer[at]);
        }
        at
    }

    /// The Offer with its suite list replaced (the rest kept byte for byte).
    pub fn with_suites(offer: &[u8], names: &[&[u8]]) -> Vec<u8> {
        let mut out = offer[..OFFER_SUITE_COUNT].to_vec();
        out.push(u8::try_from(names.len()).expect("at most 255 names"));
        for name in names {
            out.push(u8::try_from(name.len()).expect("short name"));
            out.extend_from_slice(name);
        }
        out.extend_from_slice(&offer[offer_suites_end(offer)..]);
        out
    }

    /// Where the Offer's X448 share sits.
    pub fn offer_x448(offer: &[u8]) -> Range<usize> {
        let start = offer_suites_end(offer);
        start..start + 56
    }

    /// Byte offset just past the chosen suite's name in an Accept.
    pub fn accept_suite_end(accept: &[u8]) -> usize {
        ACCEPT_SUITE + 1 + usize::from(accept[ACCEPT_SUITE])
    }
}
