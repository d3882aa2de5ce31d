//! Two and three platforms exchanging messages over the in-process transport.

use std::collections::BTreeSet;

use jadeite::transport::mem::MemNetwork;
use platform_tests::*;

#[tokio::test]
async fn message_arrives_with_the_senders_roles() {
    let network = MemNetwork::new();
    let a = mem_platform(&network, "a", shared_key("inventory", 1)).await;
    let b = mem_platform(&network, "b", shared_key("inventory", 1)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("connect");
    assert_eq!(b_id, b.id());
    a.send(b_id, b"hello".to_vec()).await.expect("send");
    let delivery = next_delivery(&b).await;
    assert_eq!(delivery.from, a.id());
    assert_eq!(delivery.payload, b"hello");
    assert_eq!(*delivery.roles, BTreeSet::from([role("inventory")]));
    // And back, over the same session.
    b.send(a.id(), b"hi".to_vec()).await.expect("send back");
    assert_eq!(next_delivery(&a).await.payload, b"hi");
}

#[tokio::test]
async fn many_messages_each_arrive_once() {
    let network = MemNetwork::new();
    let a = mem_platform(&network, "a", shared_key("k", 2)).await;
    let b = mem_platform(&network, "b", shared_key("k", 2)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("connect");
    // A second link between the same two platforms: messages spread over both.
    a.connect(&address("mem://b")).await.expect("second link");
    for n in 0u32..500 {
        a.send(b_id, n.to_be_bytes().to_vec()).await.expect("send");
    }
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let delivery = next_delivery(&b).await;
        let n = u32::from_be_bytes(delivery.payload.try_into().expect("4 bytes"));
        assert!(seen.insert(n), "message {n} delivered twice");
    }
    assert_eq!(seen.len(), 500);
}

#[tokio::test]
async fn wrong_shared_key_is_refused() {
    let network = MemNetwork::new();
    let a = mem_platform(&network, "a", shared_key("k", 1)).await;
    let _b = mem_platform(&network, "b", shared_key("k", 2)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("connect");
    let error = a
        .send(b_id, b"x".to_vec())
        .await
        .expect_err("no verified role");
    assert!(
        matches!(error, jadeite::SendError::Refused { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn relay_forwards_without_a_direct_link() {
    let network = MemNetwork::new();
    let a = mem_platform(&network, "a", shared_key("k", 3)).await;
    let b = mem_platform(&network, "b", shared_key("k", 3)).await;
    let c = mem_platform(&network, "c", shared_key("k", 3)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("a-b");
    c.connect(&address("mem://b")).await.expect("c-b");
    a.route_via(c.id(), b_id).await;
    a.send(c.id(), b"through b".to_vec())
        .await
        .expect("send via relay");
    let delivery = next_delivery(&c).await;
    assert_eq!(
        (delivery.from, delivery.payload.as_slice()),
        (a.id(), &b"through b"[..])
    );
    // B forwarded the message but never had it to deliver: A and C's session
    // is their own (B's sessions with each are separate ones).
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), b.receive())
            .await
            .is_err(),
        "the relay delivered a relayed message"
    );
    c.send(a.id(), b"and back".to_vec())
        .await
        .expect("reply via relay");
    assert_eq!(next_delivery(&a).await.payload, b"and back");
}

/// Concurrent senders: the peer's actor gathers waiting sends into batches
/// (one sealed data message each); every message still arrives exactly once,
/// whole, over both links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_each_arrive_exactly_once() {
    const SENDERS: u32 = 64;
    const EACH: u32 = 100;
    let network = MemNetwork::new();
    let a = mem_platform(&network, "a", shared_key("k", 4)).await;
    let b = mem_platform(&network, "b", shared_key("k", 4)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("connect");
    a.connect(&address("mem://b")).await.expect("second link");
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                // Sizes vary so batches mix small and large messages.
                let mut payload = (sender * EACH + n).to_be_bytes().to_vec();
                payload.resize(4 + (n as usize * 97) % 3000, n as u8);
                a.send(b_id, payload).await.expect("send");
            }
        }));
    }
    let mut seen = BTreeSet::new();
    for _ in 0..SENDERS * EACH {
        let delivery = next_delivery(&b).await;
        let id = u32::from_be_bytes(delivery.payload[..4].try_into().expect("4 bytes"));
        let n = id % EACH;
        assert_eq!(
            delivery.payload.len(),
            4 + (n as usize * 97) % 3000,
            "message {id} whole"
        );
        assert!(delivery.payload[4..].iter().all(|&byte| byte == n as u8));
        assert!(seen.insert(id), "message {id} delivered twice");
    }
    for task in tasks {
        task.await.expect("sender");
    }
    assert_eq!(seen.len(), (SENDERS * EACH) as usize);
}

/// More senders than the per-peer bound, all before the session exists: the
/// ones beyond the bound wait for a slot (backpressure) instead of failing,
/// and every message arrives once the handshake completes.
#[tokio::test]
async fn senders_beyond_the_queue_bound_wait_instead_of_failing() {
    let network = MemNetwork::new();
    let limits = jadeite::Limits {
        queue_per_peer: 2,
        ..jadeite::Limits::default()
    };
    let a = mem_builder(&network, "a", shared_key("k", 5))
        .limits(limits)
        .start()
        .await
        .expect("a starts");
    let b = mem_platform(&network, "b", shared_key("k", 5)).await;
    let b_id = a.connect(&address("mem://b")).await.expect("connect");
    let sends: Vec<_> = (0u32..50)
        .map(|n| {
            let a = a.clone();
            tokio::spawn(async move { a.send(b_id, n.to_be_bytes().to_vec()).await })
        })
        .collect();
    for send in sends {
        send.await
            .expect("task")
            .expect("send waits for a slot, then succeeds");
    }
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let delivery = next_delivery(&b).await;
        assert!(seen.insert(delivery.payload), "delivered twice");
    }
}

/// A peer that never answers: the sends holding the slots fail as
/// unreachable after the send timeout, the ones waiting for a slot as
/// queue-full, none of them sooner and none of them later.
#[tokio::test]
async fn sends_to_a_silent_peer_fail_after_the_timeout() {
    let network = MemNetwork::new();
    let limits = jadeite::Limits {
        queue_per_peer: 2,
        send_timeout: std::time::Duration::from_millis(300),
        ..jadeite::Limits::default()
    };
    let a = mem_builder(&network, "a", shared_key("k", 6))
        .limits(limits)
        .start()
        .await
        .expect("a starts");
    let nobody = jadeite::PlatformId([9; 16]);
    let started = tokio::time::Instant::now();
    let sends: Vec<_> = (0u8..4)
        .map(|n| {
            let a = a.clone();
            tokio::spawn(async move { a.send(nobody, vec![n]).await })
        })
        .collect();
    let mut unreachable = 0;
    let mut queue_full = 0;
    for send in sends {
        match send.await.expect("task") {
            Err(jadeite::SendError::Unreachable(id)) if id == nobody => unreachable += 1,
            Err(jadeite::SendError::QueueFull(id)) if id == nobody => queue_full += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((unreachable, queue_full), (2, 2));
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}
