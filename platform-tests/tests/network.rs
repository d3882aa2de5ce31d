//! Platforms over real TCP and WebSocket on 127.0.0.1: delivery, roles,
//! relays, lost links, hostile bytes, password guessing and rekeying.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use jadeite::security::{ChannelConfig, PlatformId};
use jadeite::transport::mem::{MemNetwork, MemTransport};
use jadeite::transport::{Transport, TransportAddress};
use jadeite::{GuessLimits, Limits, Platform};
use platform_tests::faults::{Faults, FaultyTransport};
use platform_tests::raw::{HalfOpen, RawTcp};
use platform_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

async fn send_numbered(
    from: &Platform,
    to: jadeite::security::PlatformId,
    range: std::ops::Range<u32>,
) {
    for n in range {
        from.send(to, n.to_be_bytes().to_vec()).await.expect("send");
    }
}

async fn receive_numbered(platform: &Platform, count: usize) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let delivery = next_delivery(platform).await;
        let n = u32::from_be_bytes(delivery.payload.try_into().expect("4 bytes"));
        assert!(seen.insert(n), "message {n} delivered twice");
    }
    seen
}

#[tokio::test]
async fn messages_over_tcp_and_websocket_at_once_arrive_exactly_once() {
    let creds = || shared_key("k", 4);
    let a = platform_on("a", creds(), network_transports(), &[]).await;
    let b = platform_on("b", creds(), network_transports(), &[TCP_ANY, WS_ANY]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("tcp link");
    assert_eq!(
        a.connect(&listening(&b, "ws")).await.expect("ws link"),
        b_id
    );
    send_numbered(&a, b_id, 0..1000).await;
    assert_eq!(receive_numbered(&b, 1000).await, (0..1000).collect());
}

#[tokio::test]
async fn each_transport_alone_carries_a_session() {
    for scheme in ["tcp", "ws"] {
        let a = platform_on("a", shared_key("k", 5), network_transports(), &[]).await;
        let b = platform_on(
            "b",
            shared_key("k", 5),
            network_transports(),
            &[TCP_ANY, WS_ANY],
        )
        .await;
        let b_id = a.connect(&listening(&b, scheme)).await.expect("link");
        send_numbered(&a, b_id, 0..100).await;
        assert_eq!(receive_numbered(&b, 100).await.len(), 100, "{scheme}");
    }
}

#[tokio::test]
async fn verified_roles_per_role_type_and_a_wrong_password() {
    let both = |pw: &str| {
        shared_key("inventory", 6).with_password(
            role("logistics"),
            jadeite::security::Password::new(pw).expect("pw"),
        )
    };
    let a = platform_on("a", both("right"), network_transports(), &[]).await;
    let b = platform_on("b", both("right"), network_transports(), &[TCP_ANY]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("link");
    a.send(b_id, b"x".to_vec()).await.expect("send");
    let roles = next_delivery(&b).await.roles;
    assert_eq!(
        *roles,
        BTreeSet::from([role("inventory"), role("logistics")])
    );

    // A wrong password: that role alone is missing.
    let c = platform_on("c", both("wrong"), network_transports(), &[]).await;
    c.connect(&listening(&b, "tcp")).await.expect("link");
    c.send(b.id(), b"y".to_vec()).await.expect("send");
    let delivery = next_delivery(&b).await;
    assert_eq!(delivery.from, c.id());
    assert_eq!(*delivery.roles, BTreeSet::from([role("inventory")]));
}

#[tokio::test]
async fn relay_delivers_and_a_byte_altered_at_the_relay_is_rejected() {
    let network = MemNetwork::new();
    let faults = Faults::new();
    let mem = || -> Arc<dyn Transport> { Arc::new(MemTransport::new(network.clone())) };
    let a = platform_on("a", shared_key("k", 7), vec![mem()], &["mem://a"]).await;
    // B's links to C corrupt frames on command: what B forwards can be altered.
    let b = platform_on(
        "b",
        shared_key("k", 7),
        vec![Arc::new(FaultyTransport::new(mem(), Arc::clone(&faults)))],
        &["mem://b"],
    )
    .await;
    let c = platform_on("c", shared_key("k", 7), vec![mem()], &["mem://c"]).await;
    let b_id = a.connect(&address("mem://b")).await.expect("a-b");
    let c_id = b.connect(&address("mem://c")).await.expect("b-c");
    a.route_via(c_id, b_id).await;
    a.send(c_id, 0u32.to_be_bytes().to_vec())
        .await
        .expect("first message");
    assert_eq!(receive_numbered(&c, 1).await, BTreeSet::from([0]));

    faults.corrupt_next_data_frames(1);
    send_numbered(&a, c_id, 1..11).await;
    let received = receive_numbered(&c, 9).await;
    assert_eq!(
        received.len(),
        9,
        "one altered message dropped, the rest delivered"
    );
    // B relayed everything but never received a message itself.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), b.receive())
            .await
            .is_err(),
        "B delivered a relayed message"
    );
}

#[tokio::test]
async fn dropped_connection_is_reestablished_and_later_messages_arrive() {
    let faults = Faults::new();
    let transports: Vec<Arc<dyn Transport>> = network_transports()
        .into_iter()
        .map(|t| Arc::new(FaultyTransport::new(t, Arc::clone(&faults))) as Arc<dyn Transport>)
        .collect();
    let a = platform_on("a", shared_key("k", 8), transports, &[]).await;
    let b = platform_on("b", shared_key("k", 8), network_transports(), &[TCP_ANY]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("link");
    send_numbered(&a, b_id, 0..50).await;
    assert_eq!(receive_numbered(&b, 50).await.len(), 50);
    faults.cut_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Sends wait in the queue until the link is redialed; the session is kept.
    send_numbered(&a, b_id, 50..100).await;
    assert_eq!(receive_numbered(&b, 50).await, (50..100).collect());
}

#[tokio::test]
async fn hostile_bytes_cost_only_their_own_connection() {
    let a = platform_on("a", shared_key("k", 9), network_transports(), &[]).await;
    let b = platform_on("b", shared_key("k", 9), network_transports(), &[TCP_ANY]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("link");
    let tcp = listening(&b, "tcp");
    let attacks: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n garbage".to_vec(),
        0xFFFF_FFFFu32.to_be_bytes().to_vec(), // a 4 GiB length prefix
        [100u32.to_be_bytes().as_slice(), &[1, 2, 3]].concat(), // stops mid-frame
    ];
    for bytes in attacks {
        let mut raw = TcpStream::connect(tcp.authority())
            .await
            .expect("raw connect");
        raw.write_all(&bytes).await.expect("write");
        drop(raw);
    }
    // A flood of idle connections that never say hello (the half-open
    // handshakes are in `half_open_handshakes_are_bounded_per_host_and_in_total`).
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(
            TcpStream::connect(tcp.authority())
                .await
                .expect("idle connect"),
        );
    }
    send_numbered(&a, b_id, 0..20).await;
    assert_eq!(
        receive_numbered(&b, 20).await.len(),
        20,
        "the good session is unaffected"
    );
}

/// Longest wait for something that must happen (a reply, a close); waits
/// end as soon as it does.
const PATIENT: Duration = Duration::from_secs(10);
/// How long an offer must go unanswered to count as refused. A refused offer
/// is never answered; an accepted one within milliseconds.
const SILENCE: Duration = Duration::from_millis(500);

/// 127.0.0.`last`: on Linux every 127/8 address is loopback, so one test
/// plays several remote hosts.
fn host(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// B with `limits`, listening on TCP and WebSocket; A connected to it over
/// TCP with a session already carrying messages.
async fn good_pair(key: u8, limits: Limits) -> (Platform, Platform, PlatformId) {
    let mut builder = Platform::builder("b")
        .credentials(shared_key("k", key))
        .limits(limits)
        .listen(address(TCP_ANY))
        .listen(address(WS_ANY));
    for transport in network_transports() {
        builder = builder.transport(transport);
    }
    let b = builder.start().await.expect("b starts");
    let a = platform_on("a", shared_key("k", key), network_transports(), &[]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("link");
    send_numbered(&a, b_id, 0..10).await;
    assert_eq!(receive_numbered(&b, 10).await, (0..10).collect());
    (a, b, b_id)
}

#[tokio::test]
async fn hostile_bytes_get_their_connection_closed() {
    let limits = Limits {
        hello_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (a, b, b_id) = good_pair(15, limits).await;
    let (tcp, ws) = (listening(&b, "tcp"), listening(&b, "ws"));
    let framed = |frame: &[u8]| [&(frame.len() as u32).to_be_bytes()[..], frame].concat();

    // Instead of a hello. The stalled frame is closed by the hello timeout.
    let before_hello: [(&str, Vec<u8>); 3] = [
        ("garbage", b"GET / HTTP/1.1\r\nHost: b\r\n\r\n".to_vec()),
        ("a 4 GiB length prefix", u32::MAX.to_be_bytes().to_vec()),
        (
            "3 bytes of a 100-byte frame, then silence",
            [&100u32.to_be_bytes()[..], &[1, 2, 3]].concat(),
        ),
    ];
    for (what, bytes) in before_hello {
        let mut raw = RawTcp::connect(host(1), &tcp).await.expect("connect");
        raw.write_raw(&bytes).await.expect("write");
        assert!(raw.closed_within(PATIENT).await, "{what}: still open");
    }

    // After a correct hello exchange, on a link handed to a peer actor.
    let routing_garbage = framed(&[9; 40]);
    let after_hello: [(&str, Vec<u8>); 3] = [
        ("a 4 GiB length prefix", u32::MAX.to_be_bytes().to_vec()),
        ("an unknown routing-header version", routing_garbage),
        ("a frame shorter than a routing header", framed(&[1, 2, 3])),
    ];
    for (what, bytes) in after_hello {
        let mut raw = RawTcp::connect(host(1), &tcp).await.expect("connect");
        let id = PlatformId::random().expect("rng");
        assert_eq!(raw.hello(id, PATIENT).await.expect("hello"), b_id);
        raw.write_raw(&bytes).await.expect("write");
        assert!(raw.closed_within(PATIENT).await, "{what}: still open");
    }

    // WebSocket: bytes that are no HTTP upgrade.
    let mut raw = RawTcp::connect(host(1), &ws).await.expect("connect");
    raw.write_raw(b"\x00\xffnot http\r\n\r\n")
        .await
        .expect("write");
    assert!(raw.closed_within(PATIENT).await, "ws garbage: still open");

    send_numbered(&a, b_id, 10..20).await;
    assert_eq!(
        receive_numbered(&b, 10).await,
        (10..20).collect(),
        "the good session is unaffected"
    );
}

/// `count` connections from `from` to `to`, each saying hello as a fresh
/// random platform id and sending a real handshake Offer, none ever finishing.
async fn offers(from: Ipv4Addr, to: &TransportAddress, count: usize) -> Vec<HalfOpen> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let to = to.clone();
        set.spawn(async move {
            HalfOpen::offer(from, &to, shared_key("k", 14), PATIENT)
                .await
                .expect("hello and offer")
        });
    }
    set.join_all().await
}

/// How many of `links` the platform answers: waits for the `expected`
/// answers however long they take (up to `PATIENT`), then `SILENCE` more for
/// any answer beyond. The returned set keeps every connection open.
async fn answers(links: Vec<HalfOpen>, expected: usize) -> (usize, JoinSet<()>) {
    let (answered, mut answers) = mpsc::unbounded_channel();
    let mut open = JoinSet::new();
    for mut link in links {
        let answered = answered.clone();
        open.spawn(async move {
            if link.answered_within(PATIENT).await {
                let _ = answered.send(());
            }
            // Half-open from here on: never another byte.
            std::future::pending::<()>().await;
            drop(link);
        });
    }
    let mut count = 0;
    while count < expected {
        match tokio::time::timeout(PATIENT, answers.recv()).await {
            Ok(Some(())) => count += 1,
            _ => break,
        }
    }
    while let Ok(Some(())) = tokio::time::timeout(SILENCE, answers.recv()).await {
        count += 1;
    }
    (count, open)
}

#[tokio::test]
async fn half_open_handshakes_are_bounded_per_host_and_in_total() {
    let limits = Limits {
        handshakes_per_host: 3,
        handshakes_total: 5,
        // Nothing expires during this test.
        handshake_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let mut builder = Platform::builder("b")
        .credentials(shared_key("k", 14))
        .limits(limits)
        .listen(address(TCP_ANY));
    for transport in network_transports() {
        builder = builder.transport(transport);
    }
    let b = builder.start().await.expect("b starts");
    let tcp = listening(&b, "tcp");

    // Host .2 opens 8 handshakes at once and finishes none: 3 are answered.
    let (answered, _host_2) = answers(offers(host(2), &tcp, 8).await, 3).await;
    assert_eq!(answered, 3, "per-host bound");

    // Meanwhile an honest peer on another host makes a session.
    let a = platform_on("a", shared_key("k", 14), network_transports(), &[]).await;
    let b_id = a.connect(&tcp).await.expect("link");
    send_numbered(&a, b_id, 0..10).await;
    assert_eq!(receive_numbered(&b, 10).await, (0..10).collect());

    // Host .3 fills the total: 3 + 2 = 5 in progress.
    let (answered, _host_3) = answers(offers(host(3), &tcp, 2).await, 2).await;
    assert_eq!(answered, 2);
    // Beyond the total nobody is answered, though .3 and .4 are each under
    // the per-host bound.
    let mut more = offers(host(3), &tcp, 1).await;
    more.extend(offers(host(4), &tcp, 1).await);
    let (answered, _more) = answers(more, 0).await;
    assert_eq!(answered, 0, "total bound");

    // A session is no handshake in progress: it keeps working.
    send_numbered(&a, b_id, 10..20).await;
    assert_eq!(receive_numbered(&b, 10).await, (10..20).collect());
}

#[tokio::test]
async fn half_open_handshakes_free_their_slots_at_the_handshake_timeout() {
    let timeout = Duration::from_secs(2);
    let limits = Limits {
        handshakes_per_host: 2,
        handshakes_total: 2,
        handshake_timeout: timeout,
        ..Limits::default()
    };
    let mut builder = Platform::builder("b")
        .credentials(shared_key("k", 16))
        .limits(limits)
        .listen(address(TCP_ANY));
    for transport in network_transports() {
        builder = builder.transport(transport);
    }
    let b = builder.start().await.expect("b starts");
    let tcp = listening(&b, "tcp");

    let (answered, _first) = answers(offers(host(2), &tcp, 3).await, 2).await;
    assert_eq!(answered, 2);
    // Both slots are taken: another host is not answered either.
    let (answered, _refused) = answers(offers(host(3), &tcp, 1).await, 0).await;
    assert_eq!(answered, 0, "full");

    // The abandoned handshakes end at their timeout and give their slots
    // back, though their connections stay open.
    tokio::time::sleep(timeout).await;
    let (answered, _again) = answers(offers(host(2), &tcp, 1).await, 1).await;
    assert_eq!(answered, 1, "a slot is free again");
    let a = platform_on("a", shared_key("k", 16), network_transports(), &[]).await;
    let b_id = a.connect(&tcp).await.expect("link");
    send_numbered(&a, b_id, 0..10).await;
    assert_eq!(receive_numbered(&b, 10).await, (0..10).collect());
}

#[tokio::test]
async fn password_guessing_is_throttled_while_a_correct_peer_connects() {
    let network = MemNetwork::new();
    let limits = Limits {
        guessing: GuessLimits {
            first_delay: Duration::from_secs(30),
            ..GuessLimits::default()
        },
        ..Limits::default()
    };
    // B is reachable in process (the guessers' host) and over TCP (the honest peer's host).
    let b = mem_builder(&network, "b", password("logistics", "right"))
        .transport(Arc::new(jadeite_tcp::TcpTransport::new()))
        .listen(address(TCP_ANY))
        .limits(limits)
        .start()
        .await
        .expect("b");
    let quick = Limits {
        send_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let guesser = |name: &'static str, guess: &'static str| {
        mem_builder(&network, name, password("logistics", guess))
            .limits(quick.clone())
            .start()
    };
    // The first guess is answered and fails: one J-PAKE run, one recorded failure.
    let first_guesser = guesser("guesser-1", "guess-1").await.expect("guesser");
    first_guesser
        .connect(&address("mem://b"))
        .await
        .expect("link");
    let first = first_guesser
        .send(b.id(), b"x".to_vec())
        .await
        .expect_err("wrong password");
    assert!(
        matches!(first, jadeite::SendError::Refused { .. }),
        "{first}"
    );
    // The next guess from the same host is not answered at all.
    let second_guesser = guesser("guesser-2", "guess-2").await.expect("guesser");
    second_guesser
        .connect(&address("mem://b"))
        .await
        .expect("link");
    let second = second_guesser
        .send(b.id(), b"x".to_vec())
        .await
        .expect_err("throttled");
    assert!(
        matches!(
            second,
            jadeite::SendError::Unreachable(_) | jadeite::SendError::Handshake { .. }
        ),
        "{second}"
    );
    // Meanwhile a correct peer from another host gets through.
    let honest = platform_on(
        "honest",
        password("logistics", "right"),
        network_transports(),
        &[],
    )
    .await;
    honest.connect(&listening(&b, "tcp")).await.expect("link");
    honest
        .send(b.id(), b"hello".to_vec())
        .await
        .expect("correct password gets through");
    let delivery = next_delivery(&b).await;
    assert_eq!(
        (delivery.from, delivery.payload.as_slice()),
        (honest.id(), &b"hello"[..])
    );
}

#[tokio::test]
async fn rekey_under_a_steady_stream_loses_nothing() {
    let channel = ChannelConfig {
        rekey_after_messages: 64,
        reject_after_messages: 1 << 20,
        ..ChannelConfig::default()
    };
    let network = MemNetwork::new();
    let a = mem_builder(&network, "a", shared_key("k", 10))
        .channel(channel.clone())
        .start()
        .await
        .expect("a");
    let b = mem_builder(&network, "b", shared_key("k", 10))
        .channel(channel)
        .start()
        .await
        .expect("b");
    let b_id = a.connect(&address("mem://b")).await.expect("link");
    a.connect(&address("mem://b")).await.expect("second link");
    let receiver = tokio::spawn(async move { (receive_numbered(&b, 2000).await, b) });
    send_numbered(&a, b_id, 0..2000).await;
    let (received, b) = receiver.await.expect("receiver");
    assert_eq!(
        received,
        (0..2000).collect(),
        "every message arrived exactly once"
    );
    let epoch = a.session_info(b_id).await.expect("session").send_epoch;
    assert!(
        epoch >= 10,
        "the sender went through many epochs, got {epoch}"
    );
    assert!(b.session_info(a.id()).await.expect("session").send_epoch >= 10);
}

#[tokio::test]
async fn simultaneous_connects_end_in_one_session() {
    let a = platform_on("a", shared_key("k", 11), network_transports(), &[TCP_ANY]).await;
    let b = platform_on("b", shared_key("k", 11), network_transports(), &[TCP_ANY]).await;
    let (to_b, to_a) = (listening(&b, "tcp"), listening(&a, "tcp"));
    let (ab, ba) = tokio::join!(a.connect(&to_b), b.connect(&to_a));
    let (b_id, a_id) = (ab.expect("a->b"), ba.expect("b->a"));
    // Both send at once: both start a handshake; exactly one survives.
    let (x, y) = tokio::join!(
        a.send(b_id, b"from a".to_vec()),
        b.send(a_id, b"from b".to_vec())
    );
    x.expect("a's message");
    y.expect("b's message");
    assert_eq!(next_delivery(&b).await.payload, b"from a");
    assert_eq!(next_delivery(&a).await.payload, b"from b");
}

#[tokio::test]
async fn a_message_to_an_unreachable_platform_fails_after_the_timeout() {
    let network = MemNetwork::new();
    let quick = Limits {
        send_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let a = mem_builder(&network, "a", shared_key("k", 12))
        .limits(quick)
        .start()
        .await
        .expect("a");
    let b = mem_platform(&network, "b", shared_key("k", 12)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("link");
    b.shutdown();
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = a
        .send(b_id, b"anyone?".to_vec())
        .await
        .expect_err("b is gone");
    assert_eq!(error, jadeite::SendError::Unreachable(b_id));
}

#[tokio::test]
async fn half_open_connections_are_closed_after_the_handshake_timeout() {
    let limits = Limits {
        hello_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (a, b, b_id) = good_pair(16, limits).await;
    let tcp = listening(&b, "tcp");
    let mut half = HalfOpen::offer(host(2), &tcp, shared_key("k", 16), PATIENT)
        .await
        .expect("hello and offer");
    assert!(half.answered_within(PATIENT).await, "the offer is answered");
    assert!(
        half.link.closed_within(PATIENT).await,
        "a handshake left unfinished keeps its connection"
    );
    // A link that says hello and then nothing at all.
    let mut quiet = RawTcp::connect(host(2), &tcp).await.expect("connect");
    let id = PlatformId::random().expect("rng");
    assert_eq!(quiet.hello(id, PATIENT).await.expect("hello"), b_id);
    assert!(
        quiet.closed_within(PATIENT).await,
        "a silent link is never closed"
    );
    send_numbered(&a, b_id, 0..10).await;
    assert_eq!(receive_numbered(&b, 10).await, (0..10).collect());
}

/// Waits (at most `PATIENT`) until `platform` keeps state for `count` peers.
async fn known_peers_become(platform: &Platform, count: usize) {
    let deadline = tokio::time::Instant::now() + PATIENT;
    while platform.known_peers() != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} peers known, expected {count}",
            platform.known_peers()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ids_that_only_said_hello_leave_no_state_behind() {
    let (_a, b, b_id) = good_pair(17, Limits::default()).await;
    known_peers_become(&b, 1).await;
    let tcp = listening(&b, "tcp");
    for _ in 0..50 {
        let mut raw = RawTcp::connect(host(3), &tcp).await.expect("connect");
        let id = PlatformId::random().expect("rng");
        assert_eq!(raw.hello(id, PATIENT).await.expect("hello"), b_id);
        drop(raw);
    }
    known_peers_become(&b, 1).await;
}

#[tokio::test]
async fn unknown_ids_beyond_max_peers_are_refused() {
    let limits = Limits {
        max_peers: 2,
        ..Limits::default()
    };
    let (a, b, b_id) = good_pair(18, limits).await;
    let tcp = listening(&b, "tcp");
    let mut second = RawTcp::connect(host(4), &tcp).await.expect("connect");
    let id = PlatformId::random().expect("rng");
    assert_eq!(second.hello(id, PATIENT).await.expect("hello"), b_id);
    known_peers_become(&b, 2).await;
    let mut third = RawTcp::connect(host(4), &tcp).await.expect("connect");
    let id = PlatformId::random().expect("rng");
    // The platform speaks first, then hangs up on the id it has no room for.
    let _ = third.hello(id, PATIENT).await;
    assert!(
        third.closed_within(PATIENT).await,
        "a third peer was let in"
    );
    assert_eq!(b.known_peers(), 2);
    send_numbered(&a, b_id, 0..5).await;
    assert_eq!(receive_numbered(&b, 5).await.len(), 5);
}

#[tokio::test]
async fn a_live_session_cannot_be_taken_over_with_fewer_roles() {
    let both = || {
        shared_key("k", 19).with_password(
            role("logistics"),
            jadeite::security::Password::new("tea").expect("password"),
        )
    };
    let b = platform_on("b", both(), network_transports(), &[TCP_ANY]).await;
    let a = platform_on("a", both(), network_transports(), &[]).await;
    let b_id = a.connect(&listening(&b, "tcp")).await.expect("link");
    send_numbered(&a, b_id, 0..3).await;
    assert_eq!(receive_numbered(&b, 3).await.len(), 3);
    let full = BTreeSet::from([role("k"), role("logistics")]);
    assert_eq!(b.peer_roles(a.id()).await.as_deref(), Some(&full));

    // An impostor that holds only `k` claims A's id and finishes a handshake.
    let (mut impostor, verified) = platform_tests::raw::handshake_as(
        host(5),
        &listening(&b, "tcp"),
        a.id(),
        shared_key("k", 19),
        PATIENT,
    )
    .await
    .expect("the impostor's handshake completes on its side");
    assert_eq!(verified, BTreeSet::from([role("k")]));
    assert!(
        impostor.closed_within(PATIENT).await,
        "the impostor's link stays open"
    );
    assert_eq!(
        b.peer_roles(a.id()).await.as_deref(),
        Some(&full),
        "the session was replaced"
    );
    // B's traffic for A still reaches A.
    send_numbered(&b, a.id(), 0..10).await;
    assert_eq!(receive_numbered(&a, 10).await, (0..10).collect());
}

#[tokio::test]
async fn a_link_claiming_a_peers_id_gets_none_of_its_traffic() {
    let limits = Limits {
        hello_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (a, b, b_id) = good_pair(20, limits).await;
    // Someone says hello as A, and only that.
    let mut claim = RawTcp::connect(host(6), &listening(&b, "tcp"))
        .await
        .expect("connect");
    assert_eq!(claim.hello(a.id(), PATIENT).await.expect("hello"), b_id);
    send_numbered(&b, a.id(), 0..40).await;
    assert_eq!(receive_numbered(&a, 40).await, (0..40).collect());
    // What the link may get: the link proof, one small sealed data message
    // that asks the other end to show that it holds the session.
    let mut data_frames = Vec::new();
    loop {
        match claim.next(PATIENT).await {
            platform_tests::raw::Next::Frame(frame) => {
                if platform_tests::raw::kind_and_source(&frame).map(|(kind, _)| kind)
                    == Some(platform_tests::raw::DATA)
                {
                    data_frames.push(frame.len());
                }
            }
            platform_tests::raw::Next::Closed => break,
            platform_tests::raw::Next::Silence => panic!("the claiming link is never closed"),
        }
    }
    assert!(
        data_frames.len() <= 1 && data_frames.iter().all(|len| *len < 100),
        "traffic for A went to the link that only claimed A's id: {data_frames:?}"
    );
}

#[tokio::test]
async fn a_session_given_up_on_one_side_is_made_again_when_the_peer_returns() {
    // A gives up sessions it cannot reach after 300 ms; B keeps its own and
    // redials after a second, so it comes back to an A that forgot it.
    let a = Platform::builder("a")
        .credentials(shared_key("k", 21))
        .limits(Limits {
            idle_session: Duration::from_millis(300),
            ..Limits::default()
        })
        .transport(Arc::new(jadeite_tcp::TcpTransport::new()))
        .listen(address(TCP_ANY))
        .start()
        .await
        .expect("a starts");
    let faults = Faults::new();
    let b = Platform::builder("b")
        .credentials(shared_key("k", 21))
        .limits(Limits {
            redial_first: Duration::from_secs(1),
            redial_max: Duration::from_secs(1),
            hello_timeout: Duration::from_millis(300),
            handshake_timeout: Duration::from_millis(500),
            ..Limits::default()
        })
        .transport(Arc::new(FaultyTransport::new(
            Arc::new(jadeite_tcp::TcpTransport::new()),
            Arc::clone(&faults),
        )))
        .start()
        .await
        .expect("b starts");
    let a_id = b.connect(&listening(&a, "tcp")).await.expect("link");
    send_numbered(&b, a_id, 0..5).await;
    assert_eq!(receive_numbered(&a, 5).await.len(), 5);

    faults.cut_connections();
    known_peers_become(&a, 0).await;
    assert!(
        b.session_info(a_id).await.is_some(),
        "B still holds its session"
    );

    // B redials; A has no session, so B's link proof goes unanswered and B
    // makes the session again on that link.
    send_numbered(&b, a_id, 5..15).await;
    assert_eq!(receive_numbered(&a, 10).await, (5..15).collect());
    send_numbered(&a, b.id(), 0..3).await;
    assert_eq!(receive_numbered(&b, 3).await.len(), 3);
}
