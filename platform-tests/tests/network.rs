//! Platforms over real TCP and WebSocket on 127.0.0.1: delivery, roles,
//! relays, lost links, hostile bytes, password guessing and rekeying.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jadeite::security::ChannelConfig;
use jadeite::transport::Transport;
use jadeite::transport::mem::{MemNetwork, MemTransport};
use jadeite::{GuessLimits, Limits, Platform};
use platform_tests::faults::{Faults, FaultyTransport};
use platform_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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
    assert_eq!(
        b.peer_roles(a.id()).await,
        None,
        "B holds no session with A"
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
    // A flood of half-open links: connect, never speak.
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
