//! The TCP transport over 127.0.0.1: framing, limits, hostile peers, closes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use jadeite::transport::{
    Connection, DEFAULT_MAX_FRAME_LEN, Listener, Scheme, Transport, TransportAddress,
    TransportError,
};
use jadeite_tcp::{DEFAULT_CONNECT_TIMEOUT, TcpTransport};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Every test finishes within this, or fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

fn any_port() -> TransportAddress {
    "tcp://127.0.0.1:0".parse().expect("address")
}

async fn listen(transport: &TcpTransport) -> Box<dyn Listener> {
    transport.listen(&any_port()).await.expect("listen")
}

/// A connected pair: (client, server).
async fn pair(transport: &TcpTransport) -> (Connection, Connection, Box<dyn Listener>) {
    let mut listener = listen(transport).await;
    let address = listener.local_address().clone();
    let (client, server) = tokio::join!(transport.connect(&address), listener.accept());
    (client.expect("connect"), server.expect("accept"), listener)
}

/// Connects a raw socket, writes `bytes`, closes, and returns what the
/// server's first `recv` says.
async fn raw_peer_sends(bytes: &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
    let transport = TcpTransport::new();
    let mut listener = listen(&transport).await;
    let mut raw = TcpStream::connect(listener.local_address().authority())
        .await
        .expect("raw connect");
    let mut server = listener.accept().await.expect("accept");
    raw.write_all(bytes).await.expect("raw write");
    raw.shutdown().await.expect("raw shutdown");
    server.source.recv().await
}

fn frames() -> Vec<Vec<u8>> {
    vec![
        b"hello".to_vec(),
        Vec::new(),
        vec![0xA5; 1],
        (0..=255).collect(),
        Vec::new(),
        (0..DEFAULT_MAX_FRAME_LEN)
            .map(|i| (i % 251) as u8)
            .collect(),
        b"after the big one".to_vec(),
    ]
}

#[test]
fn defaults() {
    let transport = TcpTransport::new();
    assert_eq!(transport.scheme(), Scheme::Tcp);
    assert_eq!(transport.max_frame_len(), DEFAULT_MAX_FRAME_LEN);
    assert_eq!(transport.connect_timeout(), Duration::from_secs(5));
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(5));
    let custom = TcpTransport::default()
        .with_max_frame_len(10)
        .with_connect_timeout(Duration::from_millis(300));
    assert_eq!(custom.max_frame_len(), 10);
    assert_eq!(custom.connect_timeout(), Duration::from_millis(300));
    assert_eq!(
        TcpTransport::new()
            .with_max_frame_len(usize::MAX)
            .max_frame_len(),
        u32::MAX as usize,
        "the 4-byte prefix caps the limit"
    );
}

#[tokio::test]
async fn listener_reports_the_real_port_and_remotes_are_socket_addresses() {
    bounded(async {
        let transport = TcpTransport::new();
        let (client, server, listener) = pair(&transport).await;
        let local = listener.local_address();
        assert_eq!(local.scheme(), Scheme::Tcp);
        let bound: SocketAddr = local.authority().parse().unwrap();
        assert_eq!(bound.ip().to_string(), "127.0.0.1");
        assert_ne!(bound.port(), 0);
        assert_eq!(local.to_string(), format!("tcp://{bound}"));
        assert_eq!(client.remote, local.authority());
        let peer: SocketAddr = server.remote.parse().unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.1");
        assert_ne!(peer.port(), bound.port());
    })
    .await;
}

#[tokio::test]
async fn other_schemes_are_refused() {
    bounded(async {
        let transport = TcpTransport::new();
        for text in ["ws://127.0.0.1:0/", "mem://x"] {
            let address: TransportAddress = text.parse().unwrap();
            assert!(matches!(
                transport.listen(&address).await,
                Err(TransportError::InvalidAddress { .. })
            ));
            assert!(matches!(
                transport.connect(&address).await,
                Err(TransportError::InvalidAddress { .. })
            ));
        }
    })
    .await;
}

#[tokio::test]
async fn frames_round_trip_both_ways_including_empty_and_max_size() {
    bounded(async {
        let transport = TcpTransport::new();
        let (mut client, mut server, _listener) = pair(&transport).await;
        // Send and receive concurrently: a 1 MiB frame outgrows socket buffers.
        let sending = async {
            for frame in frames() {
                client.sink.send(frame).await.unwrap();
            }
        };
        let receiving = async {
            for expected in frames() {
                assert_eq!(server.source.recv().await.unwrap(), Some(expected));
            }
        };
        tokio::join!(sending, receiving);
        let sending = async {
            for frame in frames() {
                server.sink.send(frame).await.unwrap();
            }
        };
        let receiving = async {
            for expected in frames() {
                assert_eq!(client.source.recv().await.unwrap(), Some(expected));
            }
        };
        tokio::join!(sending, receiving);
    })
    .await;
}

#[tokio::test]
async fn frames_flow_both_ways_at_once() {
    bounded(async {
        let transport = TcpTransport::new();
        let (client, server, _listener) = pair(&transport).await;
        let Connection {
            sink: mut client_sink,
            source: mut client_source,
            ..
        } = client;
        let Connection {
            sink: mut server_sink,
            source: mut server_source,
            ..
        } = server;
        // Sinks and sources in separate tasks, as a platform runs them.
        let tasks = [
            tokio::spawn(async move {
                for frame in frames() {
                    client_sink.send(frame).await.unwrap();
                }
                client_sink.close().await.unwrap();
            }),
            tokio::spawn(async move {
                for frame in frames() {
                    server_sink.send(frame).await.unwrap();
                }
                server_sink.close().await.unwrap();
            }),
            tokio::spawn(async move {
                for expected in frames() {
                    assert_eq!(client_source.recv().await.unwrap(), Some(expected));
                }
                assert_eq!(client_source.recv().await.unwrap(), None);
            }),
            tokio::spawn(async move {
                for expected in frames() {
                    assert_eq!(server_source.recv().await.unwrap(), Some(expected));
                }
                assert_eq!(server_source.recv().await.unwrap(), None);
            }),
        ];
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn frame_above_the_limit_is_refused_on_send_and_the_connection_stays_usable() {
    bounded(async {
        let transport = TcpTransport::new().with_max_frame_len(1024);
        let (mut client, mut server, _listener) = pair(&transport).await;
        assert!(matches!(
            client.sink.send(vec![7; 1025]).await,
            Err(TransportError::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        ));
        // Nothing reached the wire, so the connection still works.
        client.sink.send(vec![7; 1024]).await.unwrap();
        assert_eq!(server.source.recv().await.unwrap(), Some(vec![7; 1024]));

        let default = TcpTransport::new();
        let (mut client, _server, _listener) = pair(&default).await;
        assert!(matches!(
            client.sink.send(vec![0; DEFAULT_MAX_FRAME_LEN + 1]).await,
            Err(TransportError::FrameTooLarge { len, max })
                if len == DEFAULT_MAX_FRAME_LEN + 1 && max == DEFAULT_MAX_FRAME_LEN
        ));
    })
    .await;
}

#[tokio::test]
async fn receiver_enforces_its_own_limit() {
    bounded(async {
        let small = TcpTransport::new().with_max_frame_len(16);
        let large = TcpTransport::new();
        let mut listener = listen(&small).await;
        let address = listener.local_address().clone();
        let (client, server) = tokio::join!(large.connect(&address), listener.accept());
        let (mut client, mut server) = (client.unwrap(), server.unwrap());
        client.sink.send(vec![1; 16]).await.unwrap();
        client.sink.send(vec![1; 17]).await.unwrap();
        assert_eq!(server.source.recv().await.unwrap(), Some(vec![1; 16]));
        assert!(matches!(
            server.source.recv().await,
            Err(TransportError::FrameTooLarge { len: 17, max: 16 })
        ));
        // The stream is out of step now: the source stays failed.
        assert!(server.source.recv().await.is_err());
    })
    .await;
}

#[tokio::test]
async fn four_gib_length_prefix_is_refused_before_allocating() {
    // If the body were allocated or awaited, this would take the 4 GiB (or
    // wait for them) instead of answering at once.
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        raw_peer_sends(&[0xFF, 0xFF, 0xFF, 0xFF]),
    )
    .await
    .expect("FrameTooLarge promptly");
    assert!(
        matches!(
            answer,
            Err(TransportError::FrameTooLarge { len, max })
                if len == u32::MAX as usize && max == DEFAULT_MAX_FRAME_LEN
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn four_gib_length_prefix_is_refused_while_the_peer_stays_open() {
    bounded(async {
        let transport = TcpTransport::new();
        let mut listener = listen(&transport).await;
        let mut raw = TcpStream::connect(listener.local_address().authority())
            .await
            .unwrap();
        let mut server = listener.accept().await.unwrap();
        // The prefix and a little body, and the socket kept open: the answer
        // must not depend on the rest arriving or on EOF.
        raw.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), server.source.recv())
            .await
            .expect("FrameTooLarge promptly");
        assert!(
            matches!(answer, Err(TransportError::FrameTooLarge { len, .. }) if len == u32::MAX as usize),
            "{answer:?}"
        );
        drop(raw);
    })
    .await;
}

#[tokio::test]
async fn garbage_forming_a_huge_length_is_refused() {
    bounded(async {
        // An HTTP request hitting the port: "GET " reads as 0x47455420 bytes.
        let answer = raw_peer_sends(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            matches!(
                answer,
                Err(TransportError::FrameTooLarge {
                    len: 0x4745_5420,
                    ..
                })
            ),
            "{answer:?}"
        );
        let answer = raw_peer_sends(&[0x7F, 0x00, 0x13, 0x37, 0xDE, 0xAD]).await;
        assert!(
            matches!(
                answer,
                Err(TransportError::FrameTooLarge {
                    len: 0x7F00_1337,
                    ..
                })
            ),
            "{answer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn eof_inside_the_body_is_a_truncated_frame() {
    bounded(async {
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[9; 10]);
        let answer = raw_peer_sends(&bytes).await;
        assert!(
            matches!(answer, Err(TransportError::TruncatedFrame)),
            "{answer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn eof_inside_the_length_prefix_is_a_truncated_frame() {
    bounded(async {
        let answer = raw_peer_sends(&[0, 0]).await;
        assert!(
            matches!(answer, Err(TransportError::TruncatedFrame)),
            "{answer:?}"
        );
        // After a whole frame, too.
        let answer = {
            let transport = TcpTransport::new();
            let mut listener = listen(&transport).await;
            let mut raw = TcpStream::connect(listener.local_address().authority())
                .await
                .unwrap();
            let mut server = listener.accept().await.unwrap();
            raw.write_all(&[0, 0, 0, 2, b'o', b'k', 0, 0, 0])
                .await
                .unwrap();
            raw.shutdown().await.unwrap();
            assert_eq!(server.source.recv().await.unwrap(), Some(b"ok".to_vec()));
            server.source.recv().await
        };
        assert!(
            matches!(answer, Err(TransportError::TruncatedFrame)),
            "{answer:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn clean_close_ends_the_stream() {
    bounded(async {
        // A raw peer that sends nothing at all.
        assert_eq!(raw_peer_sends(&[]).await.unwrap(), None);
        // A raw peer that sends whole frames (one of them empty).
        assert_eq!(
            raw_peer_sends(&[0, 0, 0, 0]).await.unwrap(),
            Some(Vec::new())
        );

        let transport = TcpTransport::new();
        let (mut client, mut server, _listener) = pair(&transport).await;
        client.sink.send(b"last".to_vec()).await.unwrap();
        client.sink.close().await.unwrap();
        client.sink.close().await.unwrap();
        assert!(matches!(
            client.sink.send(b"too late".to_vec()).await,
            Err(TransportError::Closed)
        ));
        assert_eq!(server.source.recv().await.unwrap(), Some(b"last".to_vec()));
        assert_eq!(server.source.recv().await.unwrap(), None);
        assert_eq!(server.source.recv().await.unwrap(), None);
        // Closing one direction leaves the other open.
        server.sink.send(b"reply".to_vec()).await.unwrap();
        assert_eq!(client.source.recv().await.unwrap(), Some(b"reply".to_vec()));
        // Dropping a connection closes it too.
        drop(server);
        assert_eq!(client.source.recv().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    bounded(async {
        let transport = TcpTransport::new();
        let mut listener = listen(&transport).await;
        let mut raw = TcpStream::connect(listener.local_address().authority())
            .await
            .unwrap();
        let mut server = listener.accept().await.unwrap();
        let mut wire = 6u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"abcdef");
        wire.extend_from_slice(&[0, 0, 0, 1, b'!']);
        let dribble = tokio::spawn(async move {
            for byte in wire {
                raw.write_all(&[byte]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            raw
        });
        // Cancel `recv` again and again while the frame dribbles in.
        let mut received = Vec::new();
        let mut cancelled = 0;
        while received.len() < 2 {
            tokio::select! {
                frame = server.source.recv() => received.push(frame.unwrap().unwrap()),
                () = tokio::time::sleep(Duration::from_millis(5)) => cancelled += 1,
            }
        }
        assert_eq!(received, [b"abcdef".to_vec(), b"!".to_vec()]);
        assert!(cancelled > 0);
        drop(dribble.await.unwrap());
        assert_eq!(server.source.recv().await.unwrap(), None);
    })
    .await;
}

/// Serves every accepted connection in its own task, echoing frames back and
/// reporting how each connection ended.
fn serve_echo(
    mut listener: Box<dyn Listener>,
) -> mpsc::UnboundedReceiver<Result<(), TransportError>> {
    let (ended, endings) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok(mut connection) = listener.accept().await else {
                continue;
            };
            let ended = ended.clone();
            tokio::spawn(async move {
                let outcome = async {
                    while let Some(frame) = connection.source.recv().await? {
                        connection.sink.send(frame).await?;
                    }
                    Ok(())
                }
                .await;
                let _ = ended.send(outcome);
            });
        }
    });
    endings
}

#[tokio::test]
async fn a_bad_connection_does_not_disturb_the_others() {
    bounded(async {
        let transport = TcpTransport::new();
        let listener = listen(&transport).await;
        let address = listener.local_address().clone();
        let mut endings = serve_echo(listener);

        let good = async {
            let mut client = transport.connect(&address).await.unwrap();
            for round in 0..20u8 {
                client.sink.send(vec![round; 100]).await.unwrap();
                assert_eq!(client.source.recv().await.unwrap(), Some(vec![round; 100]));
                tokio::task::yield_now().await;
            }
            client
        };
        let bad = async {
            let mut raw = TcpStream::connect(address.authority()).await.unwrap();
            raw.write_all(&[0xFF; 4]).await.unwrap();
            raw
        };
        let (mut good, _bad) = tokio::join!(good, bad);

        let bad_ending = endings.recv().await.unwrap();
        assert!(
            matches!(bad_ending, Err(TransportError::FrameTooLarge { .. })),
            "{bad_ending:?}"
        );
        // The good connection and new ones still work.
        good.sink.send(b"still here".to_vec()).await.unwrap();
        assert_eq!(
            good.source.recv().await.unwrap(),
            Some(b"still here".to_vec())
        );
        let mut late = transport.connect(&address).await.unwrap();
        late.sink.send(b"late".to_vec()).await.unwrap();
        assert_eq!(late.source.recv().await.unwrap(), Some(b"late".to_vec()));
        good.sink.close().await.unwrap();
        assert!(endings.recv().await.unwrap().is_ok());
    })
    .await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_quickly() {
    bounded(async {
        let transport = TcpTransport::new();
        let address = {
            let listener = listen(&transport).await;
            listener.local_address().clone()
        };
        // The listener is gone: the port refuses connections.
        let answer = tokio::time::timeout(Duration::from_secs(5), transport.connect(&address))
            .await
            .expect("an error, not a hang");
        assert!(
            matches!(&answer, Err(TransportError::Unreachable(at)) if *at == address.to_string()),
            "{answer:?}"
        );
    })
    .await;
}
