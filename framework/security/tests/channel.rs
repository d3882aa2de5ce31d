//! The secure channel under attack and under load: replay and reordering,
//! tampering with every bit, reflection, truncation, key-usage limits and the
//! rekey protocol (lost, delayed, simultaneous and in-flight messages).
//!
//! Sessions come from a real in-process handshake. Time is simulated: every
//! test takes one base `Instant` and adds durations to it, never sleeping.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jadeite_security::channel::{DATA_HEADER_LEN, MAX_ROUTING_HEADER_LEN};
use jadeite_security::primitives::{AEAD_TAG_LEN, HASH_LEN, Secret, X448_LEN};
use jadeite_security::replay::ReplayWindow;
use jadeite_security::{
    ChannelConfig, ChannelError, Credentials, DecodeError, Handshake, HandshakeConfig, PacketType,
    PlatformId, Received, SecureSession,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use support::*;

const RH: &[u8] = b"route:platform-a/inventory";

fn creds() -> Credentials {
    Credentials::new().with_shared_key(role("link"), shared_key(42))
}

/// A configuration with the default channel settings changed by `edit`.
fn config_where(edit: &dyn Fn(&mut ChannelConfig)) -> Arc<HandshakeConfig> {
    let mut config = HandshakeConfig::new(PlatformId::random().expect("rng"), creds());
    edit(&mut config.channel);
    config.validate().expect("valid channel config");
    Arc::new(config)
}

/// An established pair: (handshake initiator's session, responder's session).
fn pair_where(edit: &dyn Fn(&mut ChannelConfig)) -> (SecureSession, SecureSession) {
    let (i, r) = run(&config_where(edit), &config_where(edit)).both();
    (i.session, r.session)
}

fn pair() -> (SecureSession, SecureSession) {
    pair_where(&|_| {})
}

/// Opens a copy of `packet`: `Some(plaintext)` for application data, `None`
/// for a control (rekey) message.
fn open(
    session: &mut SecureSession,
    routing_header: &[u8],
    packet: &[u8],
    now: Instant,
) -> Result<Option<Vec<u8>>, ChannelError> {
    let mut buffer = packet.to_vec();
    Ok(match session.open(routing_header, &mut buffer, now)? {
        Received::Application(plaintext) => Some(plaintext.to_vec()),
        Received::Control => None,
    })
}

fn open_app(
    session: &mut SecureSession,
    packet: &[u8],
    now: Instant,
) -> Result<Vec<u8>, ChannelError> {
    open(session, RH, packet, now)
        .map(|received| received.expect("application data, not a control message"))
}

fn open_control(session: &mut SecureSession, packet: &[u8], now: Instant) {
    let received = open(session, RH, packet, now).expect("control message opens");
    assert_eq!(received, None, "expected a control message");
}

fn seal(session: &mut SecureSession, plaintext: &[u8], now: Instant) -> Vec<u8> {
    session.seal(RH, plaintext, now).expect("seal")
}

fn poll(session: &mut SecureSession, now: Instant) -> Option<Vec<u8>> {
    session.poll_transmit(RH, now).expect("poll_transmit")
}

/// Polls one control packet and checks its type.
fn poll_kind(session: &mut SecureSession, kind: PacketType, now: Instant) -> Vec<u8> {
    let packet = poll(session, now).unwrap_or_else(|| panic!("expected a {kind:?}"));
    assert_eq!(PacketType::of(&packet), Some(kind));
    packet
}

fn epoch_of(packet: &[u8]) -> u32 {
    u32::from_be_bytes(packet[1..5].try_into().expect("4 bytes"))
}

fn counter_of(packet: &[u8]) -> u64 {
    u64::from_be_bytes(packet[5..13].try_into().expect("8 bytes"))
}

/// Exchanges control packets both ways until neither side has one to send.
fn settle(a: &mut SecureSession, b: &mut SecureSession, now: Instant) {
    for _ in 0..16 {
        let mut moved = false;
        if let Some(packet) = poll(a, now) {
            open_control(b, &packet, now);
            moved = true;
        }
        if let Some(packet) = poll(b, now) {
            open_control(a, &packet, now);
            moved = true;
        }
        if !moved {
            return;
        }
    }
    panic!("the rekey exchange did not settle");
}

/// A message gets through in each direction, at `now`.
fn assert_talk_both_ways(a: &mut SecureSession, b: &mut SecureSession, now: Instant) {
    let packet = seal(a, b"a to b", now);
    assert_eq!(open_app(b, &packet, now), Ok(b"a to b".to_vec()));
    let packet = seal(b, b"b to a", now);
    assert_eq!(open_app(a, &packet, now), Ok(b"b to a".to_vec()));
}

/// Runs one complete rekey started by `requester` at `now`, leaving nothing
/// in flight, and checks that both sides moved to the next epoch.
fn rekey(requester: &mut SecureSession, responder: &mut SecureSession, now: Instant) {
    let before = requester.send_epoch();
    requester.force_rekey(now).expect("force_rekey");
    let request = poll_kind(requester, PacketType::RekeyRequest, now);
    open_control(responder, &request, now);
    let response = poll_kind(responder, PacketType::RekeyResponse, now);
    open_control(requester, &response, now);
    let confirm = poll_kind(requester, PacketType::RekeyConfirm, now);
    open_control(responder, &confirm, now);
    assert_eq!(requester.send_epoch(), before + 1);
    assert_eq!(responder.send_epoch(), before + 1);
}

// ---------------------------------------------------------------- replay ---

#[test]
fn replay_exact() {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    let first = seal(&mut a, b"once", t);
    assert_eq!(open_app(&mut b, &first, t), Ok(b"once".to_vec()));
    assert_eq!(open_app(&mut b, &first, t), Err(ChannelError::Replay));

    // Still a replay after later messages moved the window, in both directions.
    let second = seal(&mut a, b"twice", t);
    assert_eq!(open_app(&mut b, &second, t), Ok(b"twice".to_vec()));
    assert_eq!(open_app(&mut b, &first, t), Err(ChannelError::Replay));
    assert_eq!(open_app(&mut b, &second, t), Err(ChannelError::Replay));
    let back = seal(&mut b, b"back", t);
    assert_eq!(open_app(&mut a, &back, t), Ok(b"back".to_vec()));
    assert_eq!(open_app(&mut a, &back, t), Err(ChannelError::Replay));
}

const SMALL_WINDOW_BITS: usize = 256;

fn small_window(c: &mut ChannelConfig) {
    c.replay_window_bits = SMALL_WINDOW_BITS;
}

/// Packet count, then the order packets are delivered in (indices into the
/// sealed packets; an index appearing twice is a duplicate).
fn reorder_case() -> impl Strategy<Value = (usize, Vec<usize>)> {
    let window = ReplayWindow::new(SMALL_WINDOW_BITS).window_size() as usize;
    // Counters 0..n all stay in the window while n - 1 <= window.
    (1..=window + 1)
        .prop_flat_map(|n| (Just(n), prop::collection::vec(0..n, 0..=n / 2)))
        .prop_flat_map(|(n, duplicates)| {
            let order: Vec<usize> = (0..n).chain(duplicates).collect();
            (Just(n), Just(order).prop_shuffle())
        })
}

#[test]
fn reorder_within_window() {
    // One session pair for all cases: each case seals fresh counters, so the
    // window model (fresh counters in window => accepted once) holds per case.
    let (a, b) = pair_where(&small_window);
    let sessions = RefCell::new((a, b));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(96));
    runner
        .run(&reorder_case(), |(n, order)| {
            let (a, b) = &mut *sessions.borrow_mut();
            let t = Instant::now();
            let packets: Vec<Vec<u8>> = (0..n)
                .map(|i| seal(a, &(i as u64).to_be_bytes(), t))
                .collect();
            let mut accepted = BTreeSet::new();
            for index in order {
                let result = open_app(b, &packets[index], t);
                if accepted.insert(index) {
                    prop_assert_eq!(result, Ok((index as u64).to_be_bytes().to_vec()));
                } else {
                    prop_assert_eq!(result, Err(ChannelError::Replay), "duplicate {}", index);
                }
            }
            prop_assert_eq!(accepted.len(), n);
            Ok(())
        })
        .expect("every packet accepted exactly once, every duplicate rejected");
}

#[test]
fn far_behind() {
    let (mut a, mut b) = pair_where(&|c| c.replay_window_bits = 128);
    let window = ReplayWindow::new(128).window_size() as usize;
    let t = Instant::now();
    let packets: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| seal(&mut a, &i.to_be_bytes(), t))
        .collect();
    let last = packets.len() - 1;
    assert_eq!(
        open_app(&mut b, &packets[last], t),
        Ok(999u32.to_be_bytes().to_vec())
    );
    assert_eq!(open_app(&mut b, &packets[0], t), Err(ChannelError::TooOld));
    assert_eq!(
        open_app(&mut b, &packets[last - window - 1], t),
        Err(ChannelError::TooOld)
    );
    // The oldest counter still tracked opens, once.
    assert!(open_app(&mut b, &packets[last - window], t).is_ok());
    assert_eq!(
        open_app(&mut b, &packets[last - window], t),
        Err(ChannelError::Replay)
    );
    assert!(open_app(&mut b, &packets[last - 1], t).is_ok());
}

#[test]
fn far_ahead_jump() {
    let (mut a, mut b) = pair_where(&|c| c.replay_window_bits = 128);
    let window = ReplayWindow::new(128).window_size() as usize;
    let t = Instant::now();
    let packets: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| seal(&mut a, &i.to_be_bytes(), t))
        .collect();
    for packet in &packets[..10] {
        assert!(open_app(&mut b, packet, t).is_ok());
    }
    let top = packets.len() - 1;
    assert_eq!(
        open_app(&mut b, &packets[top], t),
        Ok((top as u32).to_be_bytes().to_vec())
    );
    // The window slid: what it left behind is too old, what it covers opens.
    assert_eq!(open_app(&mut b, &packets[10], t), Err(ChannelError::TooOld));
    assert_eq!(open_app(&mut b, &packets[9], t), Err(ChannelError::TooOld));
    assert_eq!(
        open_app(&mut b, &packets[top - window - 1], t),
        Err(ChannelError::TooOld)
    );
    assert!(open_app(&mut b, &packets[top - window], t).is_ok());
    assert!(open_app(&mut b, &packets[top - 1], t).is_ok());
    assert_eq!(
        open_app(&mut b, &packets[top], t),
        Err(ChannelError::Replay)
    );
    let next = seal(&mut a, b"next", t);
    assert_eq!(open_app(&mut b, &next, t), Ok(b"next".to_vec()));
}

// ------------------------------------------------------------- tampering ---

/// Seals p0, p1, p2 and opens p0 and p2, so the window holds state on both
/// sides of p1. Then flipping any single bit of the bytes `region` selects
/// (in p1, or in the routing header given to `open` if `in_routing_header`)
/// must be rejected with an error that `expected` accepts,
/// and afterwards the untampered p1 must still open exactly once while p0 and
/// p2 stay replays: no forgery moved or marked the window.
fn assert_every_bitflip_rejected(
    region: impl Fn(&[u8]) -> Range<usize>,
    in_routing_header: bool,
    expected: impl Fn(&[u8], &ChannelError) -> bool,
) {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    let p0 = seal(&mut a, b"zero", t);
    let p1 = seal(&mut a, b"one!", t);
    let p2 = seal(&mut a, b"two.", t);
    assert_eq!(counter_of(&p1), 1);
    assert!(open_app(&mut b, &p0, t).is_ok());
    assert!(open_app(&mut b, &p2, t).is_ok());

    let target = if in_routing_header { RH } else { &p1[..] };
    let bytes = region(target);
    assert!(!bytes.is_empty());
    let mut flips = 0;
    for byte in bytes {
        for bit in 0..8 {
            let mut packet = p1.clone();
            let mut routing = RH.to_vec();
            let tampered = if in_routing_header {
                &mut routing
            } else {
                &mut packet
            };
            tampered[byte] ^= 1 << bit;
            let result = open(&mut b, &routing, &packet, t);
            match result {
                Err(ref error) if expected(&packet, error) => {}
                other => panic!("flip of byte {byte} bit {bit}: {other:?}"),
            }
            flips += 1;
        }
    }
    assert!(flips >= 8);
    assert_eq!(open_app(&mut b, &p1, t), Ok(b"one!".to_vec()));
    assert_eq!(open_app(&mut b, &p1, t), Err(ChannelError::Replay));
    assert_eq!(open_app(&mut b, &p0, t), Err(ChannelError::Replay));
    assert_eq!(open_app(&mut b, &p2, t), Err(ChannelError::Replay));
}

#[test]
fn bitflip_ciphertext() {
    assert_every_bitflip_rejected(
        |p| DATA_HEADER_LEN..p.len() - AEAD_TAG_LEN,
        false,
        |_, e| *e == ChannelError::BadTag,
    );
}

#[test]
fn bitflip_tag() {
    assert_every_bitflip_rejected(
        |p| p.len() - AEAD_TAG_LEN..p.len(),
        false,
        |_, e| *e == ChannelError::BadTag,
    );
}

#[test]
fn bitflip_header() {
    // Type byte and epoch; the counter has its own test below.
    assert_every_bitflip_rejected(
        |_| 0..5,
        false,
        |p, e| match e {
            // 0x10 -> 0x11 / 0x12 are channel types: the tag covers the type.
            ChannelError::BadTag => matches!(p[0], 0x11 | 0x12),
            ChannelError::Decode(DecodeError::UnknownType(t)) => *t == p[0],
            ChannelError::UnknownEpoch(epoch) => *epoch == epoch_of(p) && *epoch != 0,
            _ => false,
        },
    );
}

#[test]
fn bitflip_nonce() {
    // The counter bytes of the header are the nonce.
    assert_every_bitflip_rejected(
        |_| 5..DATA_HEADER_LEN,
        false,
        |p, e| match e {
            // 1 ^ 1 = 0 names an accepted counter: a replay, caught before the tag.
            ChannelError::Replay => counter_of(p) == 0,
            ChannelError::BadTag => counter_of(p) != 0,
            _ => false,
        },
    );
}

#[test]
fn bitflip_routing_header() {
    assert_every_bitflip_rejected(|rh| 0..rh.len(), true, |_, e| *e == ChannelError::BadTag);
}

#[test]
fn reflect_to_sender() {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    let from_a = seal(&mut a, b"to b", t);
    assert_eq!(open_app(&mut a, &from_a, t), Err(ChannelError::BadTag));
    let from_b = seal(&mut b, b"to a", t);
    assert_eq!(open_app(&mut b, &from_b, t), Err(ChannelError::BadTag));
    // The reflections did not consume anything on the real receivers.
    assert_eq!(open_app(&mut b, &from_a, t), Ok(b"to b".to_vec()));
    assert_eq!(open_app(&mut a, &from_b, t), Ok(b"to a".to_vec()));
}

#[test]
fn wrong_routing_header() {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    let packet = seal(&mut a, b"routed", t);
    let mut longer = RH.to_vec();
    longer.push(b'x');
    for wrong in [
        &b"route:platform-b/inventory"[..],
        &RH[..RH.len() - 1],
        &longer,
        b"",
    ] {
        assert_eq!(
            open(&mut b, wrong, &packet, t),
            Err(ChannelError::BadTag),
            "routing header {wrong:?}"
        );
    }
    let oversized = vec![0u8; MAX_ROUTING_HEADER_LEN + 1];
    assert!(matches!(
        open(&mut b, &oversized, &packet, t),
        Err(ChannelError::Decode(DecodeError::BadLength { .. }))
    ));
    assert!(matches!(
        a.seal(&oversized, b"x", t),
        Err(ChannelError::Decode(DecodeError::BadLength { .. }))
    ));
    assert_eq!(open(&mut b, RH, &packet, t), Ok(Some(b"routed".to_vec())));

    // The longest allowed routing header works end to end.
    let longest = vec![7u8; MAX_ROUTING_HEADER_LEN];
    let packet = a.seal(&longest, b"long", t).expect("seal");
    assert_eq!(
        open(&mut b, &longest, &packet, t),
        Ok(Some(b"long".to_vec()))
    );
}

#[test]
fn truncated_packets() {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    let packet = seal(&mut a, b"some plaintext", t);
    for len in 0..packet.len() {
        let result = open(&mut b, RH, &packet[..len], t);
        assert!(
            matches!(
                result,
                Err(ChannelError::Decode(DecodeError::Truncated { .. }) | ChannelError::BadTag)
            ),
            "length {len}: {result:?}"
        );
    }
    assert_eq!(open_app(&mut b, &packet, t), Ok(b"some plaintext".to_vec()));
}

// ---------------------------------------------------- limits and rekeying ---

fn limits(c: &mut ChannelConfig) {
    c.rekey_after_messages = 4;
    c.reject_after_messages = 8;
}

#[test]
fn counter_reject_limit() {
    let (mut a, mut b) = pair_where(&limits);
    let t = Instant::now();
    let mut sealed = Vec::new();
    for i in 0..8u8 {
        if i < 4 {
            assert_eq!(poll(&mut a, t), None, "no rekey due at counter {i}");
        }
        sealed.push(a.seal(RH, &[i], t).expect("below the reject limit"));
    }
    assert_eq!(a.seal(RH, b"ninth", t), Err(ChannelError::KeyExhausted));
    assert_eq!(a.next_send_counter(), 8);
    for (i, packet) in sealed.iter().enumerate() {
        assert_eq!(open_app(&mut b, packet, t), Ok(vec![i as u8]));
    }

    // Counter >= rekey_after_messages: the next poll starts the rekey. Control
    // messages may use the counters above the reject limit.
    let request = poll_kind(&mut a, PacketType::RekeyRequest, t);
    assert_eq!((epoch_of(&request), counter_of(&request)), (0, 8));
    assert_eq!(poll(&mut a, t), None, "one request until the retry timer");
    assert_eq!(a.seal(RH, b"still", t), Err(ChannelError::KeyExhausted));

    open_control(&mut b, &request, t);
    let response = poll_kind(&mut b, PacketType::RekeyResponse, t);
    open_control(&mut a, &response, t);
    assert_eq!(a.send_epoch(), 1);
    let confirm = poll_kind(&mut a, PacketType::RekeyConfirm, t);
    assert_eq!(epoch_of(&confirm), 1);
    assert_eq!(b.send_epoch(), 0, "the peer waits for the confirmation");
    open_control(&mut b, &confirm, t);
    assert_eq!((a.send_epoch(), b.send_epoch()), (1, 1));

    let packet = a.seal(RH, b"fresh key", t).expect("sealing works again");
    assert_eq!(epoch_of(&packet), 1);
    assert_eq!(open_app(&mut b, &packet, t), Ok(b"fresh key".to_vec()));
    assert_talk_both_ways(&mut a, &mut b, t);
}

#[test]
fn rekey_requested_once_counter_reaches_rekey_after_messages() {
    let (mut a, mut b) = pair_where(&limits);
    let t = Instant::now();
    for i in 0..4u8 {
        assert_eq!(poll(&mut a, t), None, "counter {i}");
        let packet = seal(&mut a, &[i], t);
        assert!(open_app(&mut b, &packet, t).is_ok());
    }
    let request = poll_kind(&mut a, PacketType::RekeyRequest, t);
    assert_eq!(counter_of(&request), 4);
    open_control(&mut b, &request, t);
    settle(&mut a, &mut b, t);
    assert_eq!((a.send_epoch(), b.send_epoch()), (1, 1));
    assert_eq!(a.next_send_counter(), 1, "the confirmation used counter 0");
    assert_talk_both_ways(&mut a, &mut b, t);
}

const GRACE: Duration = Duration::from_secs(10);

fn short_grace(c: &mut ChannelConfig) {
    c.previous_epoch_grace = GRACE;
}

#[test]
fn rekey_under_stream() {
    let (mut a, mut b) = pair_where(&short_grace);
    let t0 = Instant::now();
    // Epoch-0 messages still in flight, both ways, when the rekey completes.
    let a_old: Vec<Vec<u8>> = (0..4u8).map(|i| seal(&mut a, &[i], t0)).collect();
    let b_old: Vec<Vec<u8>> = (0..4u8).map(|i| seal(&mut b, &[i], t0)).collect();
    let switched = t0 + Duration::from_secs(1);
    rekey(&mut a, &mut b, switched);
    assert!(a.holds_previous_epoch() && b.holds_previous_epoch());

    // Part 1: during the grace period the old epoch still opens, out of order
    // and interleaved with new-epoch messages, and replays are still caught.
    let during = switched + GRACE / 2;
    let a_new = seal(&mut a, b"new a", during);
    assert_eq!(epoch_of(&a_new), 1);
    assert_eq!(open_app(&mut b, &a_old[2], during), Ok(vec![2]));
    assert_eq!(open_app(&mut b, &a_new, during), Ok(b"new a".to_vec()));
    assert_eq!(open_app(&mut b, &a_old[0], during), Ok(vec![0]));
    assert_eq!(
        open_app(&mut b, &a_old[0], during),
        Err(ChannelError::Replay)
    );
    assert_eq!(open_app(&mut a, &b_old[1], during), Ok(vec![1]));
    let b_new = seal(&mut b, b"new b", during);
    assert_eq!(epoch_of(&b_new), 1);
    assert_eq!(open_app(&mut a, &b_new, during), Ok(b"new b".to_vec()));
    let last_moment = switched + GRACE - Duration::from_millis(1);
    assert_eq!(open_app(&mut b, &a_old[1], last_moment), Ok(vec![1]));

    // Part 2: once the grace period has passed, the old epoch is gone.
    let after = switched + GRACE;
    assert_eq!(
        open_app(&mut b, &a_old[3], after),
        Err(ChannelError::UnknownEpoch(0))
    );
    assert_eq!(
        open_app(&mut a, &b_old[2], after),
        Err(ChannelError::UnknownEpoch(0))
    );
    assert!(!a.holds_previous_epoch() && !b.holds_previous_epoch());

    // New-epoch messages keep opening, whenever they arrive.
    let late = seal(&mut a, b"late", during);
    assert_eq!(
        open_app(&mut b, &late, after + GRACE * 5),
        Ok(b"late".to_vec())
    );
    assert_talk_both_ways(&mut a, &mut b, after + GRACE * 6);
}

#[test]
fn simultaneous_rekey() {
    for initiator_first in [true, false] {
        let (mut a, mut b) = pair();
        let t = Instant::now();
        let mut to_b: VecDeque<Vec<u8>> = VecDeque::new();
        let mut to_a: VecDeque<Vec<u8>> = VecDeque::new();
        let (mut sent_ab, mut sent_ba) = (0u32, 0u32);
        let (mut got_ab, mut got_ba) = (BTreeSet::new(), BTreeSet::new());

        // Data before, during and after; both sides ask for a rekey at once.
        to_b.push_back(seal(&mut a, &sent_ab.to_be_bytes(), t));
        sent_ab += 1;
        to_a.push_back(seal(&mut b, &sent_ba.to_be_bytes(), t));
        sent_ba += 1;
        a.force_rekey(t).expect("force_rekey");
        b.force_rekey(t).expect("force_rekey");
        let a_request = poll_kind(&mut a, PacketType::RekeyRequest, t);
        let b_request = poll_kind(&mut b, PacketType::RekeyRequest, t);
        // The requests cross in flight; which arrives first varies.
        if initiator_first {
            to_b.push_back(a_request);
            to_a.push_back(b_request);
        } else {
            to_a.push_back(b_request);
            to_b.push_back(a_request);
        }

        for _ in 0..10 {
            to_b.push_back(seal(&mut a, &sent_ab.to_be_bytes(), t));
            sent_ab += 1;
            to_a.push_back(seal(&mut b, &sent_ba.to_be_bytes(), t));
            sent_ba += 1;
            let deliver =
                |to: &mut SecureSession, queue: &mut VecDeque<Vec<u8>>, got: &mut BTreeSet<u32>| {
                    while let Some(packet) = queue.pop_front() {
                        let received = open(to, RH, &packet, t).expect("every packet opens");
                        if let Some(data) = received {
                            let n = u32::from_be_bytes(data.try_into().expect("4 bytes"));
                            assert!(got.insert(n), "message {n} delivered twice");
                        }
                    }
                };
            if initiator_first {
                deliver(&mut b, &mut to_b, &mut got_ab);
                deliver(&mut a, &mut to_a, &mut got_ba);
            } else {
                deliver(&mut a, &mut to_a, &mut got_ba);
                deliver(&mut b, &mut to_b, &mut got_ab);
            }
            to_b.extend(poll(&mut a, t));
            to_a.extend(poll(&mut b, t));
        }
        assert!(to_a.is_empty() && to_b.is_empty());
        assert_eq!(
            (a.send_epoch(), b.send_epoch()),
            (1, 1),
            "{initiator_first}"
        );
        assert_eq!(got_ab, (0..sent_ab).collect(), "no message from A lost");
        assert_eq!(got_ba, (0..sent_ba).collect(), "no message from B lost");
        assert_talk_both_ways(&mut a, &mut b, t);
    }
}

fn retry_timer(c: &mut ChannelConfig) {
    c.rekey_retry = Duration::from_secs(5);
}

#[test]
fn lost_rekey_request_is_retried() {
    let (mut a, mut b) = pair_where(&retry_timer);
    let t0 = Instant::now();
    a.force_rekey(t0).expect("force_rekey");
    let lost = poll_kind(&mut a, PacketType::RekeyRequest, t0);
    drop(lost);
    assert_eq!(a.next_timeout(), Some(t0 + Duration::from_secs(5)));
    let early = t0 + Duration::from_secs(5) - Duration::from_millis(1);
    assert_eq!(poll(&mut a, early), None, "no retry before rekey_retry");

    let retry_at = t0 + Duration::from_secs(5);
    let request = poll_kind(&mut a, PacketType::RekeyRequest, retry_at);
    open_control(&mut b, &request, retry_at);
    let response = poll_kind(&mut b, PacketType::RekeyResponse, retry_at);
    open_control(&mut a, &response, retry_at);
    let confirm = poll_kind(&mut a, PacketType::RekeyConfirm, retry_at);
    open_control(&mut b, &confirm, retry_at);
    assert_eq!((a.send_epoch(), b.send_epoch()), (1, 1));
    assert_talk_both_ways(&mut a, &mut b, retry_at);
}

/// The first request was only delayed, not lost, so after the retry both
/// requests reach the peer. Messages of one session travel over several
/// transports, so either order is expected. Whatever the order, the two sides
/// must end in the same epoch with the same keys.
///
/// Requests and answers carry an attempt number: the requester ignores answers
/// to requests it has replaced (case 1, in order), and the peer never lets an
/// older request replace the answer to a newer one (case 2, the retry overtakes).
#[test]
fn delayed_rekey_request_and_its_retry_still_converge() {
    for retry_overtakes in [false, true] {
        let case = if retry_overtakes {
            "retry overtakes the first request"
        } else {
            "requests and answers in order"
        };
        let (mut a, mut b) = pair_where(&retry_timer);
        let t0 = Instant::now();
        a.force_rekey(t0).expect("force_rekey");
        let first = poll_kind(&mut a, PacketType::RekeyRequest, t0);
        let t = t0 + Duration::from_secs(5);
        let retry = poll_kind(&mut a, PacketType::RekeyRequest, t);
        let (earlier, later) = if retry_overtakes {
            (retry, first)
        } else {
            (first, retry)
        };
        open_control(&mut b, &earlier, t);
        let earlier_answer = poll_kind(&mut b, PacketType::RekeyResponse, t);
        open_control(&mut b, &later, t);
        let later_answer = poll(&mut b, t);
        if retry_overtakes {
            // The delayed first request was replaced by the retry: no answer.
            assert_eq!(later_answer, None, "{case}");
        }
        // The requester takes only the answer to its latest request.
        for answer in std::iter::once(earlier_answer).chain(later_answer) {
            open_control(&mut a, &answer, t);
        }
        assert_eq!(a.send_epoch(), 1, "{case}");

        let confirm = poll_kind(&mut a, PacketType::RekeyConfirm, t);
        assert_eq!(
            open(&mut b, RH, &confirm, t),
            Ok(None),
            "{case}: the peer opens the requester's new epoch"
        );
        settle(&mut a, &mut b, t);
        assert_eq!(a.send_epoch(), b.send_epoch(), "{case}");
        assert_talk_both_ways(&mut a, &mut b, t);
    }
}

#[test]
fn responder_switches_send_epoch_only_after_first_new_epoch_message() {
    let (mut a, mut b) = pair();
    let t = Instant::now();
    a.force_rekey(t).expect("force_rekey");
    let request = poll_kind(&mut a, PacketType::RekeyRequest, t);
    open_control(&mut b, &request, t);
    assert_eq!(b.send_epoch(), 0, "answering does not switch");
    let response = poll_kind(&mut b, PacketType::RekeyResponse, t);
    assert_eq!(epoch_of(&response), 0);
    assert_eq!(b.send_epoch(), 0);

    open_control(&mut a, &response, t);
    assert_eq!(a.send_epoch(), 1, "the requester switches on the response");
    assert_eq!(b.send_epoch(), 0);
    // The responder keeps sealing under epoch 0, which the requester still opens.
    let old = seal(&mut b, b"still epoch 0", t);
    assert_eq!(epoch_of(&old), 0);
    assert_eq!(open_app(&mut a, &old, t), Ok(b"still epoch 0".to_vec()));

    // The confirmation is lost; the first new-epoch message is data.
    let confirm = poll_kind(&mut a, PacketType::RekeyConfirm, t);
    drop(confirm);
    assert_eq!(b.send_epoch(), 0);
    let new = seal(&mut a, b"epoch 1", t);
    assert_eq!(epoch_of(&new), 1);
    assert_eq!(open_app(&mut b, &new, t), Ok(b"epoch 1".to_vec()));
    assert_eq!(b.send_epoch(), 1, "switched on the first new-epoch message");
    let reply = seal(&mut b, b"epoch 1 too", t);
    assert_eq!(epoch_of(&reply), 1);
    assert_eq!(open_app(&mut a, &reply, t), Ok(b"epoch 1 too".to_vec()));
}

/// The requester's confirmation is lost and it has no data to send (traffic
/// flows only from the responder): the responder must not keep sealing under
/// an epoch the requester drops when the grace period ends.
#[test]
fn lost_rekey_confirm_does_not_strand_the_responder() {
    let (mut a, mut b) = pair_where(&short_grace);
    let t0 = Instant::now();
    a.force_rekey(t0).expect("force_rekey");
    let request = poll_kind(&mut a, PacketType::RekeyRequest, t0);
    open_control(&mut b, &request, t0);
    let response = poll_kind(&mut b, PacketType::RekeyResponse, t0);
    open_control(&mut a, &response, t0);
    let confirm = poll_kind(&mut a, PacketType::RekeyConfirm, t0);
    drop(confirm);

    // Both sides follow the sans-IO contract: poll at every timeout.
    let mut now = t0;
    let end = t0 + GRACE * 3;
    while now < end {
        now += Duration::from_secs(1);
        while let Some(packet) = poll(&mut a, now) {
            let _ = open(&mut b, RH, &packet, now);
        }
        while let Some(packet) = poll(&mut b, now) {
            let _ = open(&mut a, RH, &packet, now);
        }
        let packet = seal(&mut b, b"one-way stream", now);
        assert_eq!(
            open_app(&mut a, &packet, now),
            Ok(b"one-way stream".to_vec()),
            "{:?} after the switch, epoch {}",
            now - t0,
            epoch_of(&packet)
        );
    }
}

#[test]
fn rekey_zeroizes_old_keys() {
    // Compile time: the types holding channel keys, rekey secrets and X448
    // shares wipe themselves when dropped.
    fn assert_zod<T: zeroize::ZeroizeOnDrop>() {}
    assert_zod::<Secret<32>>();
    assert_zod::<Secret<HASH_LEN>>();
    assert_zod::<Secret<X448_LEN>>();

    // Behaviour: after the grace period the previous epoch's key is dropped,
    // and nothing sealed under it opens any more.
    let (mut a, mut b) = pair_where(&short_grace);
    let t0 = Instant::now();
    let old = seal(&mut a, b"epoch 0", t0);
    let old_back = seal(&mut b, b"epoch 0 back", t0);
    assert!(!a.holds_previous_epoch() && !b.holds_previous_epoch());
    rekey(&mut a, &mut b, t0);
    assert!(a.holds_previous_epoch() && b.holds_previous_epoch());
    assert_eq!(
        a.next_timeout(),
        Some(t0 + GRACE),
        "retirement is scheduled"
    );

    let after = t0 + GRACE;
    // Any call with the later time retires the old key, even one that sends.
    assert_eq!(poll(&mut a, after), None);
    assert_eq!(poll(&mut b, after), None);
    assert!(!a.holds_previous_epoch() && !b.holds_previous_epoch());
    assert_eq!(
        open_app(&mut b, &old, after),
        Err(ChannelError::UnknownEpoch(0))
    );
    assert_eq!(
        open_app(&mut a, &old_back, after),
        Err(ChannelError::UnknownEpoch(0))
    );

    // A second rekey retires epoch 1 the same way.
    let one = seal(&mut a, b"epoch 1", after);
    rekey(&mut a, &mut b, after);
    let later = after + GRACE;
    assert_eq!(poll(&mut b, later), None);
    assert!(!b.holds_previous_epoch());
    assert_eq!(
        open_app(&mut b, &one, later),
        Err(ChannelError::UnknownEpoch(1))
    );
    assert_talk_both_ways(&mut a, &mut b, later);
}

/// What this shows: with every long-term secret (the same shared key, the same
/// platform ids) and every byte of a recorded session, running the protocol
/// again cannot reproduce that session's keys, because they depend on the
/// ephemeral X448 and KEM secrets of the original two handshake objects, which
/// were dropped. Replaying recorded messages into fresh handshakes fails key
/// confirmation, and fresh sessions made from the same credentials derive
/// different keys (their attempt to open the recorded packet fails its tag).
///
/// What this does not show: that an attacker who does not run our code could
/// not compute the keys (that rests on X448 and the KEMs, not on a test), that
/// ephemeral secrets are really erased from memory, or anything about password
/// roles (covered by J-PAKE's own tests).
#[test]
fn forward_secrecy() {
    let victim_i = config(creds());
    let victim_r = config(creds());
    let outcome = run(&victim_i, &victim_r);
    let recorded = outcome.messages.clone();
    assert_eq!(recorded.len(), 4);
    let (mut i, mut r) = outcome.both();
    let t = Instant::now();
    let to_r = seal(&mut i.session, b"secret for responder", t);
    let to_i = seal(&mut r.session, b"secret for initiator", t);
    drop((i, r));

    let same_secrets = |platform: PlatformId| {
        let mut config = HandshakeConfig::new(platform, creds());
        config.suites = victim_i.suites.clone();
        Arc::new(config)
    };

    // Responder role: replay the recorded Offer, then the recorded Finish.
    let mut responder = Handshake::respond(same_secrets(victim_r.platform));
    let accept = responder
        .receive(&recorded[0], now())
        .expect("an Offer alone proves nothing, so it is answered")
        .reply
        .expect("an Accept");
    assert_ne!(accept, recorded[1], "fresh ephemeral keys in the Accept");
    let finish = responder.receive(&recorded[2], now());
    assert!(finish.is_err(), "recorded Finish accepted: {finish:?}");

    // Initiator role: a fresh Offer, then the recorded Accept and Confirm.
    let (mut initiator, _offer) =
        Handshake::initiate(same_secrets(victim_i.platform), None).expect("initiate");
    let progress = initiator
        .receive(&recorded[1], now())
        .expect("Accept parses");
    assert!(progress.reply.is_some() && progress.established.is_none());
    let confirm = initiator.receive(&recorded[3], now());
    assert!(confirm.is_err(), "recorded Confirm accepted: {confirm:?}");

    // Complete sessions from the same secrets, both ways round: none opens
    // the recorded packets.
    for _ in 0..2 {
        let (mut i2, mut r2) = run(
            &same_secrets(victim_i.platform),
            &same_secrets(victim_r.platform),
        )
        .both();
        for session in [&mut i2.session, &mut r2.session] {
            for packet in [&to_r, &to_i] {
                assert_eq!(open(session, RH, packet, t), Err(ChannelError::BadTag));
            }
        }
    }
}
