//! Hostile bytes against every decoder: the four handshake messages, the
//! handshake state machine and the data path. Whatever arrives, the result is
//! an error value (never a panic), the bytes a peer declares are bounded
//! before anything is parsed, and a tampered handshake never completes.
//!
//! Real messages come from a recorded handshake using all three role kinds
//! (password, shared key, certificate), so every field type is present.

mod support;

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use jadeite_security::handshake::MAX_HANDSHAKE_MESSAGE_LEN;
use jadeite_security::{
    ChannelError, Credentials, DecodeError, Handshake, HandshakeConfig, HandshakeError, PacketType,
    Received,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use support::wire::*;
use support::*;

const OFFER: usize = 0;
const ACCEPT: usize = 1;
const FINISH: usize = 2;
const CONFIRM: usize = 3;
const NAMES: [&str; 4] = ["Offer", "Accept", "Finish", "Confirm"];

fn full_credentials(ca: &test_pki::TestCa, name: &str) -> Credentials {
    Credentials::new()
        .with_shared_key(role("inventory"), shared_key(1))
        .with_password(role("logistics"), password("pw-logistics"))
        .with_certificate(role("checkout"), certificate(ca, name))
        .with_trust_anchor(role("checkout"), anchor(ca))
}

/// Offer, Accept, Finish and Confirm of one successful handshake in which
/// both sides prove a password, a shared-key and a certificate role.
fn recorded() -> &'static [Vec<u8>] {
    static RECORDED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let ca = ca("checkout CA");
        let outcome = run(
            &config(full_credentials(&ca, "a")),
            &config(full_credentials(&ca, "b")),
        );
        let messages = outcome.messages.clone();
        let (i, r) = outcome.both();
        assert_eq!(i.peer_roles, roles(&["checkout", "inventory", "logistics"]));
        assert_eq!(r.peer_roles, i.peer_roles);
        assert_eq!(messages.len(), 4);
        for (kind, message) in messages.iter().enumerate() {
            assert_eq!(usize::from(message[0]), kind + 1, "{}", NAMES[kind]);
        }
        messages
    })
}

/// A configuration whose handshakes are cheap: one shared-key role, no
/// password runs, no signatures. Decoding is stateless, so a cheap state
/// decodes a message exactly as the state of the recorded run would.
fn cheap() -> Arc<HandshakeConfig> {
    config(Credentials::new().with_shared_key(role("inventory"), shared_key(1)))
}

/// An Accept with no J-PAKE rounds that any cheap initiator takes.
fn cheap_accept() -> &'static [u8] {
    static ACCEPT_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    ACCEPT_BYTES.get_or_init(|| {
        let (_, offer) = Handshake::initiate(cheap(), None).expect("initiate");
        Handshake::respond(cheap())
            .receive(&offer, now())
            .expect("cheap offer")
            .reply
            .expect("accept")
    })
}

/// A handshake waiting for message `kind` (0 = Offer .. 3 = Confirm).
fn waiting_for(kind: usize) -> Handshake {
    match kind {
        OFFER => Handshake::respond(cheap()),
        ACCEPT => Handshake::initiate(cheap(), None).expect("initiate").0,
        FINISH => {
            let mut responder = Handshake::respond(cheap());
            responder
                .receive(&recorded()[OFFER], now())
                .expect("recorded offer");
            responder
        }
        CONFIRM => {
            let (mut initiator, _) = Handshake::initiate(cheap(), None).expect("initiate");
            initiator
                .receive(cheap_accept(), now())
                .expect("cheap accept");
            initiator
        }
        _ => unreachable!("four message kinds"),
    }
}

/// Feeds `message` to a fresh handshake waiting for `kind`; checks that an
/// error closes the handshake.
fn feed(kind: usize, message: &[u8]) -> Result<(), HandshakeError> {
    let mut handshake = waiting_for(kind);
    let result = handshake.receive(message, now()).map(|_| ());
    if result.is_err() {
        assert!(handshake.is_closed(), "an error closes the handshake");
    }
    result
}

// ------------------------------------------------------------ truncation ---

fn assert_every_truncation_rejected(kind: usize) {
    let message = &recorded()[kind];
    for len in 0..message.len() {
        let result = feed(kind, &message[..len]);
        if len == 0 {
            assert!(
                matches!(
                    result,
                    Err(HandshakeError::UnexpectedMessage { received: 0, .. })
                ),
                "{}: empty message gave {result:?}",
                NAMES[kind]
            );
        } else {
            assert!(
                matches!(
                    result,
                    Err(HandshakeError::Decode(DecodeError::Truncated { .. }))
                ),
                "{} cut to {len} of {} bytes gave {result:?}",
                NAMES[kind],
                message.len()
            );
        }
    }
    // The untruncated message decodes (it then fails or succeeds on content).
    assert!(!matches!(
        feed(kind, message),
        Err(HandshakeError::Decode(_) | HandshakeError::UnexpectedMessage { .. })
    ));
}

#[test]
fn truncated_offer() {
    assert_every_truncation_rejected(OFFER);
}

#[test]
fn truncated_accept() {
    assert_every_truncation_rejected(ACCEPT);
}

#[test]
fn truncated_finish() {
    assert_every_truncation_rejected(FINISH);
}

#[test]
fn truncated_confirm() {
    assert_every_truncation_rejected(CONFIRM);
}

#[test]
fn trailing_bytes_are_rejected() {
    for (kind, message) in recorded().iter().enumerate() {
        for extra in [vec![0u8], vec![0xff; 7], message.clone()] {
            let mut longer = message.clone();
            longer.extend_from_slice(&extra);
            assert_eq!(
                feed(kind, &longer),
                Err(HandshakeError::Decode(DecodeError::TrailingBytes {
                    extra: extra.len()
                })),
                "{} + {} bytes",
                NAMES[kind],
                extra.len()
            );
        }
    }
}

// -------------------------------------------------------------- bit flips ---

/// Changes one byte of message `kind` in flight (XOR with a non-zero mask)
/// during a complete handshake between the full-role configurations. Nothing
/// may panic, and no side that receives the tampered message, or anything
/// after it, may complete: every byte is covered by the transcript.
fn tampered_handshake_never_completes(kind: usize, cases: u32) {
    let ca = ca("checkout CA");
    let initiator = config(full_credentials(&ca, "a"));
    let responder = config(full_credentials(&ca, "b"));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(&(any::<Index>(), 1u8..=255), |(at, mask)| {
            let mut flipped = None;
            let outcome = run_with(&initiator, &responder, |step, message| {
                if step == kind + 1 {
                    let byte = at.index(message.len());
                    message[byte] ^= mask;
                    flipped = Some(byte);
                }
            });
            let byte = flipped.expect("the message was sent");
            prop_assert!(
                outcome.initiator.is_err(),
                "initiator completed after {} byte {} ^= {:#04x}",
                NAMES[kind],
                byte,
                mask
            );
            if kind == CONFIRM {
                // The responder finished before it sent the Confirm.
                prop_assert!(outcome.responder.is_ok());
            } else {
                prop_assert!(
                    outcome.responder.is_err(),
                    "responder completed after {} byte {} ^= {:#04x}",
                    NAMES[kind],
                    byte,
                    mask
                );
            }
            Ok(())
        })
        .expect("no tampered handshake completes");
}

#[test]
fn bitflips_in_offer() {
    tampered_handshake_never_completes(OFFER, 48);
}

#[test]
fn bitflips_in_accept() {
    tampered_handshake_never_completes(ACCEPT, 48);
}

#[test]
fn bitflips_in_finish() {
    tampered_handshake_never_completes(FINISH, 48);
}

#[test]
fn bitflips_in_confirm() {
    tampered_handshake_never_completes(CONFIRM, 48);
}

// ----------------------------------------------------------- random bytes ---

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes to a handshake in any state, half of them carrying the
    /// type byte that state expects so they reach the decoder.
    #[test]
    fn random_bytes_are_rejected(
        kind in 0..4usize,
        typed in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut bytes = bytes;
        if typed && !bytes.is_empty() {
            bytes[0] = kind as u8 + 1;
        }
        prop_assert!(feed(kind, &bytes).is_err());
    }
}

#[test]
fn oversized_message_is_rejected_before_parsing() {
    for (kind, message) in recorded().iter().enumerate() {
        // Exactly the limit: parsed, and rejected for its padding.
        let mut at_limit = message.clone();
        at_limit.resize(MAX_HANDSHAKE_MESSAGE_LEN, 0);
        assert_eq!(
            feed(kind, &at_limit),
            Err(HandshakeError::Decode(DecodeError::TrailingBytes {
                extra: MAX_HANDSHAKE_MESSAGE_LEN - message.len()
            }))
        );
        // One byte more: refused on its length alone, before any field is read
        // (so before anything is allocated for one). The allocation itself is
        // not measured: a counting allocator needs `unsafe`, which the
        // workspace forbids.
        let mut over = message.clone();
        over.resize(MAX_HANDSHAKE_MESSAGE_LEN + 1, 0);
        assert_eq!(
            feed(kind, &over),
            Err(HandshakeError::Decode(DecodeError::BadLength {
                field: "handshake message",
                len: MAX_HANDSHAKE_MESSAGE_LEN + 1,
                min: 1,
                max: MAX_HANDSHAKE_MESSAGE_LEN,
            })),
            "{}",
            NAMES[kind]
        );
    }
    let huge = vec![PacketType::Offer as u8; 4 * MAX_HANDSHAKE_MESSAGE_LEN];
    assert!(matches!(
        feed(OFFER, &huge),
        Err(HandshakeError::Decode(DecodeError::BadLength { .. }))
    ));
}

/// Counts and lengths a peer declares are checked against their bounds before
/// the decoder reserves memory or reads on.
#[test]
fn declared_lengths_are_bounded() {
    let messages = recorded();
    let edited = |kind: usize, at: usize, bytes: &[u8]| {
        let mut message = messages[kind].clone();
        message[at..at + bytes.len()].copy_from_slice(bytes);
        feed(kind, &message)
    };
    assert_eq!(
        edited(OFFER, OFFER_SUITE_COUNT, &[255]),
        Err(HandshakeError::Decode(DecodeError::TooMany {
            field: "suite list",
            max: 8
        }))
    );
    // Finish: type, then the KEM ciphertext behind a u16 length.
    assert!(matches!(
        edited(FINISH, 1, &[0xff, 0xff]),
        Err(HandshakeError::Decode(DecodeError::BadLength {
            field: "kem ciphertext",
            len: 0xffff,
            ..
        }))
    ));
    // Confirm: type, then the authenticator count.
    assert!(matches!(
        edited(CONFIRM, 1, &[255]),
        Err(HandshakeError::Decode(DecodeError::TooMany {
            field: "authenticators",
            ..
        }))
    ));
    // Accept: type, nonce, platform, suite name, X448 share, KEM key length.
    let accept = &messages[ACCEPT];
    let kem_len_at = 1 + 32 + 16 + 1 + usize::from(accept[49]) + 56;
    assert!(matches!(
        edited(ACCEPT, kem_len_at, &[0xff, 0xff]),
        Err(HandshakeError::Decode(DecodeError::BadLength {
            field: "kem public key",
            len: 0xffff,
            ..
        }))
    ));
}

// --------------------------------------------------------- state machine ---

fn assert_unexpected(result: Result<(), HandshakeError>, waiting: &'static str, received: u8) {
    assert_eq!(
        result,
        Err(HandshakeError::UnexpectedMessage {
            expected: waiting,
            received
        })
    );
}

const STATE_NAMES: [&str; 4] = [
    "await offer",
    "await accept",
    "await finish",
    "await confirm",
];

#[test]
fn out_of_order_message() {
    let messages = recorded();
    for (state, waiting) in STATE_NAMES.into_iter().enumerate() {
        for (kind, message) in messages.iter().enumerate() {
            if kind == state {
                continue;
            }
            let mut handshake = waiting_for(state);
            let result = handshake.receive(message, now()).map(|_| ());
            assert_unexpected(result, waiting, message[0]);
            // The handshake is dead: even the right message is refused now.
            assert!(handshake.is_closed());
            assert!(matches!(
                handshake.receive(&messages[state], now()),
                Err(HandshakeError::Closed)
            ));
        }
    }
}

#[test]
fn duplicate_message() {
    // The Offer twice to one responder.
    let (_, offer) = Handshake::initiate(cheap(), None).expect("initiate");
    let mut responder = Handshake::respond(cheap());
    assert!(responder.receive(&offer, now()).is_ok());
    assert_unexpected(
        responder.receive(&offer, now()).map(|_| ()),
        "await finish",
        PacketType::Offer as u8,
    );

    // The Accept twice to one initiator.
    let (mut initiator, offer) = Handshake::initiate(cheap(), None).expect("initiate");
    let accept = Handshake::respond(cheap())
        .receive(&offer, now())
        .expect("offer")
        .reply
        .expect("accept");
    assert!(initiator.receive(&accept, now()).is_ok());
    assert_unexpected(
        initiator.receive(&accept, now()).map(|_| ()),
        "await confirm",
        PacketType::Accept as u8,
    );

    // Once both sides finished, any message delivered again is refused.
    let (mut initiator, offer) = Handshake::initiate(cheap(), None).expect("initiate");
    let mut responder = Handshake::respond(cheap());
    let accept = responder
        .receive(&offer, now())
        .expect("offer")
        .reply
        .expect("accept");
    let finish = initiator
        .receive(&accept, now())
        .expect("accept")
        .reply
        .expect("finish");
    let progress = responder.receive(&finish, now()).expect("finish");
    assert!(progress.established.is_some());
    let confirm = progress.reply.expect("confirm");
    let progress = initiator.receive(&confirm, now()).expect("confirm");
    assert!(progress.established.is_some());
    for message in [&offer, &finish] {
        assert_eq!(
            responder.receive(message, now()).map(|_| ()),
            Err(HandshakeError::Closed)
        );
    }
    for message in [&accept, &confirm] {
        assert_eq!(
            initiator.receive(message, now()).map(|_| ()),
            Err(HandshakeError::Closed)
        );
    }
}

#[test]
fn data_before_handshake_done() {
    let (mut i, mut r) = run(&cheap(), &cheap()).both();
    let t = Instant::now();
    let data = i.session.seal(b"", b"too early", t).expect("seal");
    i.session.force_rekey(t).expect("force_rekey");
    let request = i
        .session
        .poll_transmit(b"", t)
        .expect("poll")
        .expect("request");
    let mut copy = request.clone();
    assert_eq!(r.session.open(b"", &mut copy, t), Ok(Received::Control));
    let response = r
        .session
        .poll_transmit(b"", t)
        .expect("poll")
        .expect("response");
    for packet in [&data, &request, &response] {
        assert!(!PacketType::of(packet).expect("known type").is_handshake());
        for (state, waiting) in STATE_NAMES.into_iter().enumerate() {
            assert_unexpected(feed(state, packet), waiting, packet[0]);
        }
    }
}

// ------------------------------------------------------------ suite lists ---

#[test]
fn malformed_suite_list() {
    let offer = &recorded()[OFFER];
    assert!(
        offer_suites_end(offer) + 56 < offer.len(),
        "a J-PAKE list follows"
    );
    let known = jadeite_security::CipherSuite::ALL.map(|s| s.name().as_bytes());
    let unknown: Vec<Vec<u8>> = (0..9)
        .map(|i| format!("UNKNOWN_SUITE_{i}").into_bytes())
        .collect();
    let unknown: Vec<&[u8]> = unknown.iter().map(Vec::as_slice).collect();
    let decode_error = |names: &[&[u8]]| match feed(OFFER, &with_suites(offer, names)) {
        Err(HandshakeError::Decode(error)) => error,
        other => panic!("suite list {names:?}: {other:?}"),
    };

    assert_eq!(
        decode_error(&[]),
        DecodeError::BadLength {
            field: "suite list",
            len: 0,
            min: 1,
            max: 8
        }
    );
    for duplicated in [
        vec![known[0], known[0]],
        vec![known[0], known[1], known[0]],
        vec![unknown[0], known[1], unknown[0]],
    ] {
        assert_eq!(
            decode_error(&duplicated),
            DecodeError::Duplicate {
                field: "suite list"
            }
        );
    }
    let mut nine = unknown[..8].to_vec();
    nine.push(known[0]);
    assert_eq!(
        decode_error(&nine),
        DecodeError::TooMany {
            field: "suite list",
            max: 8
        }
    );
    let empty_name: &[u8] = b"";
    let long_name = vec![b'A'; 65];
    for bad in [empty_name, &long_name] {
        assert!(matches!(
            decode_error(&[known[0], bad]),
            DecodeError::BadLength {
                field: "suite name",
                ..
            }
        ));
    }

    // The boundary: eight distinct names, one of them known, are accepted
    // (an Offer without J-PAKE runs, so nothing else depends on the head).
    let (_, cheap_offer) = Handshake::initiate(cheap(), None).expect("initiate");
    let mut eight = unknown[..7].to_vec();
    eight.push(known[1]);
    let reply = Handshake::respond(cheap())
        .receive(&with_suites(&cheap_offer, &eight), now())
        .expect("eight suite names are allowed")
        .reply;
    assert!(reply.is_some());
}

// ------------------------------------------------------------- data path ---

#[test]
fn random_bytes_to_open() {
    let (i, r) = run(&cheap(), &cheap()).both();
    let (mut sender, receiver) = (i.session, r.session);
    let t = Instant::now();
    // Sealed first, so it has counter 0: any forged packet that moved the
    // window would make it too old, any that marked it would make it a replay.
    let genuine = sender.seal(b"rh", b"genuine", t).expect("seal");
    let receiver = RefCell::new(receiver);

    let header_shaped = (
        0x10u8..=0x13,
        0u32..=2,
        prop_oneof![0u64..16, any::<u64>()],
        prop::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(kind, epoch, counter, body)| {
            let mut packet = vec![kind];
            packet.extend_from_slice(&epoch.to_be_bytes());
            packet.extend_from_slice(&counter.to_be_bytes());
            packet.extend_from_slice(&body);
            packet
        });
    let packets = prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), header_shaped,];
    let routing = prop_oneof![
        Just(b"rh".to_vec()),
        prop::collection::vec(any::<u8>(), 0..300)
    ];
    let mut runner = TestRunner::new(ProptestConfig::with_cases(512));
    runner
        .run(&(packets, routing), |(mut packet, routing)| {
            let result = receiver
                .borrow_mut()
                .open(&routing, &mut packet, t)
                .map(|_| ());
            prop_assert!(result.is_err(), "forged packet accepted");
            Ok(())
        })
        .expect("every random packet is rejected");

    let mut receiver = receiver.into_inner();
    let mut packet = genuine.clone();
    match receiver.open(b"rh", &mut packet, t) {
        Ok(Received::Application(plaintext)) => assert_eq!(plaintext, b"genuine"),
        other => panic!("the genuine packet no longer opens: {other:?}"),
    }
    let mut packet = genuine;
    assert_eq!(
        receiver.open(b"rh", &mut packet, t),
        Err(ChannelError::Replay)
    );
}
