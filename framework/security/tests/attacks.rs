//! Active attacks on the handshake, one named test each (see
//! SECURITY-TESTS.md, "Negotiation and handshake", "J-PAKE", "Key exchange").
//! A man in the middle is simulated by rewriting messages in flight.

mod support;

use std::sync::Arc;

use jadeite_security::{
    CipherSuite, Credentials, Handshake, HandshakeConfig, HandshakeError, SecurityEvent,
    UnauthenticatedPolicy,
};
use support::test_pki::{self, KeyAlg};
use support::wire::*;
use support::*;

fn key_creds() -> Credentials {
    Credentials::new().with_shared_key(role("inventory"), shared_key(5))
}

fn password_creds(pw: &str) -> Credentials {
    Credentials::new().with_password(role("logistics"), password(pw))
}

#[test]
fn strip_strong_suite() {
    let initiator = config(key_creds());
    let responder = config(key_creds());
    // The MITM removes the first (preferred) suite, leaving only the second.
    let weaker = CipherSuite::ALL[1].name().as_bytes();
    let outcome = run_with(&initiator, &responder, |step, msg| {
        if step == 1 {
            *msg = with_suites(msg, &[weaker]);
        }
    });
    // Both accept the weaker suite on its face, but the transcripts differ.
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::KeyConfirmation
    );
    assert!(
        outcome.initiator.is_err(),
        "the initiator must not get a session"
    );
}

#[test]
fn pick_unoffered_suite() {
    let offered = CipherSuite::ALL[0];
    let other = CipherSuite::ALL[1];
    let initiator = config_with(key_creds(), &[offered], UnauthenticatedPolicy::Refuse);
    let responder = config(key_creds());
    let outcome = run_with(&initiator, &responder, |step, msg| {
        if step == 2 {
            let end = accept_suite_end(msg);
            let mut forged = msg[..ACCEPT_SUITE].to_vec();
            forged.push(other.name().len() as u8);
            forged.extend_from_slice(other.name().as_bytes());
            forged.extend_from_slice(&msg[end..]);
            *msg = forged;
        }
    });
    assert_eq!(
        outcome.initiator.unwrap_err(),
        HandshakeError::UnofferedSuite
    );
}

#[test]
fn unknown_suite_names_are_skipped_but_covered() {
    // An offer may carry names this build does not know; they are ignored for
    // selection but remain in the transcript (the handshake still completes).
    let initiator = config(key_creds());
    let responder = config(key_creds());
    let mut forwarded = Vec::new();
    let outcome = run_with(&initiator, &responder, |step, msg| {
        if step == 1 {
            forwarded = msg.clone();
        }
    });
    outcome.both();
    let padded = with_suites(
        &forwarded,
        &[b"FUTURE_SUITE", CipherSuite::ALL[0].name().as_bytes()],
    );
    let mut fresh = Handshake::respond(responder);
    assert!(
        fresh.receive(&padded, now()).is_ok(),
        "unknown names must not break decoding"
    );
}

#[test]
fn substitute_x448() {
    let attacker = jadeite_security::primitives::X448Secret::generate()
        .expect("rng")
        .public_key();
    let outcome = run_with(&config(key_creds()), &config(key_creds()), |step, msg| {
        if step == 1 {
            let range = offer_x448(msg);
            msg[range].copy_from_slice(&attacker);
        }
    });
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

#[test]
fn substitute_kem() {
    let suite = CipherSuite::ALL[1];
    let (_attacker_key, attacker_public) = suite.kem().generate().expect("rng");
    let cfg = || config_with(key_creds(), &[suite], UnauthenticatedPolicy::Refuse);
    let outcome = run_with(&cfg(), &cfg(), |step, msg| {
        if step == 2 {
            let start = accept_suite_end(msg) + 56 + 2;
            msg[start..start + attacker_public.len()].copy_from_slice(&attacker_public);
        }
    });
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

/// A full man in the middle that holds no role secret completes the key
/// exchange with each side, but no role verifies: both sides refuse.
#[test]
fn mitm_without_role_secrets_verifies_no_role() {
    let creds = || {
        Credentials::new()
            .with_shared_key(role("inventory"), shared_key(5))
            .with_password(role("logistics"), password("pw"))
    };
    let mallory = config_with(
        Credentials::new(),
        &CipherSuite::ALL,
        UnauthenticatedPolicy::Accept,
    );
    let to_responder = run(&mallory, &config(creds()));
    assert_eq!(
        to_responder.responder.unwrap_err(),
        HandshakeError::NoVerifiedRole
    );
    let to_initiator = run(&config(creds()), &mallory);
    assert_eq!(
        to_initiator.initiator.unwrap_err(),
        HandshakeError::NoVerifiedRole
    );
    assert!(
        to_initiator
            .responder
            .expect("mallory itself completes")
            .peer_roles
            .is_empty()
    );
}

#[test]
fn substitute_jpake_round1() {
    // Mallory's own, valid, J-PAKE round 1 for the same role, spliced into the
    // initiator's Offer: its proofs are bound to another transcript.
    let (_, mallory_offer) =
        Handshake::initiate(config(password_creds("guess")), None).expect("initiate");
    let outcome = run_with(
        &config(password_creds("pw")),
        &config(password_creds("pw")),
        |step, msg| {
            if step == 1 {
                let head = offer_x448(msg).end;
                let mallory_head = offer_x448(&mallory_offer).end;
                msg.truncate(head);
                msg.extend_from_slice(&mallory_offer[mallory_head..]);
            }
        },
    );
    assert!(matches!(
        outcome.responder.unwrap_err(),
        HandshakeError::Jpake { .. }
    ));
}

#[test]
fn zkp_replayed_other_session_or_role() {
    let creds = || password_creds("pw").with_password(role("logistict"), password("pw2"));
    let initiator = config(creds());
    let (_, earlier) = Handshake::initiate(Arc::clone(&initiator), None).expect("initiate");
    // Proofs from an earlier Offer of the same platform.
    let outcome = run_with(&initiator, &config(creds()), |step, msg| {
        if step == 1 {
            let head = offer_x448(msg).end;
            msg.truncate(head);
            msg.extend_from_slice(&earlier[offer_x448(&earlier).end..]);
        }
    });
    assert!(matches!(
        outcome.responder.unwrap_err(),
        HandshakeError::Jpake { .. }
    ));
    // Proofs moved to another role the responder also holds.
    let single = config(password_creds("pw"));
    let outcome = run_with(&single, &config(creds()), |step, msg| {
        if step == 1 {
            let at = offer_x448(msg).end + 1; // count, then first role name
            let len = usize::from(msg[at]);
            let name = &mut msg[at + 1..at + 1 + len];
            name[len - 1] = b't';
        }
    });
    assert!(matches!(
        outcome.responder.unwrap_err(),
        HandshakeError::Jpake { .. }
    ));
}

#[test]
fn wrong_password_fails_that_role_alone_and_counts_each_guess() {
    let honest = config(password_creds("secret").with_shared_key(role("inventory"), shared_key(5)));
    for guess in 1..=3 {
        let guesser = config(
            password_creds(&format!("guess-{guess}"))
                .with_shared_key(role("inventory"), shared_key(5)),
        );
        let outcome = run(&guesser, &honest);
        assert_eq!(
            outcome.responder_events,
            vec![SecurityEvent::PasswordRoleFailed {
                role: role("logistics")
            }]
        );
        let (_, responder) = outcome.both();
        assert_eq!(
            responder.peer_roles,
            roles(&["inventory"]),
            "other roles still verify"
        );
    }
}

#[test]
fn wrong_password_alone_is_refused_but_still_reported() {
    let outcome = run(
        &config(password_creds("guess")),
        &config(password_creds("secret")),
    );
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::NoVerifiedRole
    );
    assert_eq!(
        outcome.responder_events,
        vec![SecurityEvent::PasswordRoleFailed {
            role: role("logistics")
        }]
    );
}

#[test]
fn replay_first_message_later() {
    let initiator = config(key_creds());
    let responder = config(key_creds());
    let first = run(&initiator, &responder);
    first.initiator.as_ref().expect("first session");
    // Replaying the old Offer costs the responder one Accept, nothing more:
    // the old Finish does not complete the new handshake.
    let mut replayed = Handshake::respond(Arc::clone(&responder));
    replayed
        .receive(&first.messages[0], now())
        .expect("offers look fresh");
    assert_eq!(
        replayed.receive(&first.messages[2], now()).unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

#[test]
fn replay_confirmation_other_session() {
    let initiator = config(key_creds());
    let responder = config(key_creds());
    let old = run(&initiator, &responder);
    let (mut live, offer) = Handshake::initiate(Arc::clone(&initiator), None).expect("initiate");
    let mut peer = Handshake::respond(Arc::clone(&responder));
    let accept = peer
        .receive(&offer, now())
        .expect("accept")
        .reply
        .expect("reply");
    live.receive(&accept, now()).expect("finish");
    assert_eq!(
        live.receive(&old.messages[3], now()).unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

#[test]
fn splice_concurrent_sessions() {
    let initiator = config(key_creds());
    let responder = config(key_creds());
    let (mut i1, offer1) = Handshake::initiate(Arc::clone(&initiator), None).expect("initiate");
    let (mut i2, offer2) = Handshake::initiate(Arc::clone(&initiator), None).expect("initiate");
    let mut r1 = Handshake::respond(Arc::clone(&responder));
    let mut r2 = Handshake::respond(Arc::clone(&responder));
    let accept1 = r1
        .receive(&offer1, now())
        .expect("accept")
        .reply
        .expect("reply");
    let accept2 = r2
        .receive(&offer2, now())
        .expect("accept")
        .reply
        .expect("reply");
    // Accepts swapped between the two handshakes.
    let finish1 = i1
        .receive(&accept2, now())
        .expect("looks valid")
        .reply
        .expect("reply");
    let finish2 = i2
        .receive(&accept1, now())
        .expect("looks valid")
        .reply
        .expect("reply");
    assert_eq!(
        r1.receive(&finish1, now()).unwrap_err(),
        HandshakeError::KeyConfirmation
    );
    assert_eq!(
        r2.receive(&finish2, now()).unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

#[test]
fn reflection_self() {
    let own = config(password_creds("pw"));
    // The initiator's Offer echoed back to the initiator.
    let (mut initiator, offer) = Handshake::initiate(Arc::clone(&own), None).expect("initiate");
    assert!(matches!(
        initiator.receive(&offer, now()).unwrap_err(),
        HandshakeError::UnexpectedMessage { .. }
    ));
    // The same platform answering its own Offer (same role, same password).
    let mut same_platform = Handshake::respond(Arc::clone(&own));
    assert_eq!(
        same_platform.receive(&offer, now()).unwrap_err(),
        HandshakeError::Reflection
    );
    // Its own Accept reflected back at a responder of that platform.
    let peer = config(password_creds("pw"));
    let mut responder = Handshake::respond(Arc::clone(&peer));
    let accept = responder
        .receive(&offer, now())
        .expect("accept")
        .reply
        .expect("reply");
    let mut reflected = Handshake::initiate(Arc::clone(&peer), None)
        .expect("initiate")
        .0;
    assert_eq!(
        reflected.receive(&accept, now()).unwrap_err(),
        HandshakeError::Reflection
    );
}

#[test]
fn identity_swap_relay() {
    let mallory = jadeite_security::PlatformId::random().expect("rng");
    // A relay presents the initiator's handshake under its own platform id.
    let outcome = run_with(&config(key_creds()), &config(key_creds()), |step, msg| {
        if step == 1 {
            msg[OFFER_PLATFORM].copy_from_slice(&mallory.0);
        }
    });
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::KeyConfirmation
    );
    // An initiator that expects a particular platform refuses any other.
    let (mut initiator, offer) =
        Handshake::initiate(config(key_creds()), Some(mallory)).expect("initiate");
    let accept = Handshake::respond(config(key_creds()))
        .receive(&offer, now())
        .expect("accept")
        .reply
        .expect("reply");
    assert_eq!(
        initiator.receive(&accept, now()).unwrap_err(),
        HandshakeError::PeerMismatch
    );
}

#[test]
fn x448_low_order_share_is_rejected() {
    // u = 0 and u = 1 are low-order points: X448 output would be all zero.
    for low_order in [[0u8; 56], {
        let mut one = [0u8; 56];
        one[0] = 1;
        one
    }] {
        let outcome = run_with(&config(key_creds()), &config(key_creds()), |step, msg| {
            if step == 1 {
                let range = offer_x448(msg);
                msg[range].copy_from_slice(&low_order);
            }
        });
        assert_eq!(
            outcome.responder.unwrap_err(),
            HandshakeError::InvalidKeyShare("X448 share")
        );
    }
}

#[test]
fn kem_bad_ciphertext_length() {
    for suite in CipherSuite::ALL {
        let cfg = || config_with(key_creds(), &[suite], UnauthenticatedPolicy::Refuse);
        let outcome = run_with(&cfg(), &cfg(), |step, msg| {
            if step == 3 {
                let len = u16::from_be_bytes([msg[1], msg[2]]) - 1;
                msg[1..3].copy_from_slice(&len.to_be_bytes());
                msg.remove(3);
            }
        });
        assert_eq!(
            outcome.responder.unwrap_err(),
            HandshakeError::InvalidKeyShare("KEM ciphertext")
        );
    }
}

fn certificate_outcome(prover: Credentials, anchor_ca: &test_pki::TestCa) -> Outcome {
    let verifier = Credentials::new().with_trust_anchor(role("checkout"), anchor(anchor_ca));
    let policy = UnauthenticatedPolicy::Accept;
    run(
        &config_with(prover, &CipherSuite::ALL, policy),
        &config_with(verifier, &CipherSuite::ALL, policy),
    )
}

fn rejected_certificate(outcome: Outcome) {
    assert!(matches!(
        outcome.responder_events.as_slice(),
        [SecurityEvent::RoleRejected {
            kind: jadeite_security::RoleKind::Certificate,
            ..
        }]
    ));
    let (_, responder) = outcome.both();
    assert!(responder.peer_roles.is_empty(), "role must not verify");
}

#[test]
fn certificate_expired() {
    let ca = ca("checkout CA");
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let leaf = test_pki::leaf(&ca, "api", KeyAlg::EcdsaP256, now - 10 * day, now - day);
    let identity =
        jadeite_security::CertificateIdentity::from_der(vec![leaf.cert_der], &leaf.pkcs8_der)
            .expect("identity");
    rejected_certificate(certificate_outcome(
        Credentials::new().with_certificate(role("checkout"), identity),
        &ca,
    ));
}

#[test]
fn certificate_other_anchor() {
    let ca = ca("checkout CA");
    let other = support::ca("someone else's CA");
    let prover = Credentials::new().with_certificate(role("checkout"), certificate(&other, "api"));
    rejected_certificate(certificate_outcome(prover, &ca));
}

#[test]
fn certificate_chain_broken() {
    let root = ca("root");
    let intermediate = test_pki::intermediate(&root, "intermediate", KeyAlg::EcdsaP256);
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let leaf = test_pki::leaf(
        &intermediate,
        "api",
        KeyAlg::EcdsaP256,
        now - day,
        now + day,
    );
    // With the intermediate the chain verifies; without it, it does not.
    let complete = jadeite_security::CertificateIdentity::from_der(
        vec![leaf.cert_der.clone(), intermediate.cert_der.clone()],
        &leaf.pkcs8_der,
    )
    .expect("identity");
    let outcome = certificate_outcome(
        Credentials::new().with_certificate(role("checkout"), complete),
        &root,
    );
    assert_eq!(outcome.both().1.peer_roles, roles(&["checkout"]));
    let broken =
        jadeite_security::CertificateIdentity::from_der(vec![leaf.cert_der], &leaf.pkcs8_der)
            .expect("identity");
    rejected_certificate(certificate_outcome(
        Credentials::new().with_certificate(role("checkout"), broken),
        &root,
    ));
}

#[test]
fn tampered_authenticator_aborts() {
    // Authenticators are covered by the finished MAC: flipping one byte of the
    // Finish after the key material kills the handshake, not just the role.
    let outcome = run_with(&config(key_creds()), &config(key_creds()), |step, msg| {
        if step == 3 {
            let at = msg.len() - 40; // inside the last authenticator's MAC
            msg[at] ^= 1;
        }
    });
    assert_eq!(
        outcome.responder.unwrap_err(),
        HandshakeError::KeyConfirmation
    );
}

#[test]
fn handshake_config_rejects_bad_suite_lists() {
    let mut cfg = HandshakeConfig::new(
        jadeite_security::PlatformId::random().expect("rng"),
        Credentials::new(),
    );
    cfg.suites.clear();
    assert!(cfg.validate().is_err());
    cfg.suites = vec![CipherSuite::ALL[0], CipherSuite::ALL[0]];
    assert!(cfg.validate().is_err());
}
