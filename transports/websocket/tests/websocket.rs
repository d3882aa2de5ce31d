//! The WebSocket transport over 127.0.0.1. Every step that waits on the
//! network is bounded, so a bug shows up as a failure, never as a hang.

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jadeite::transport::{
    Connection, DEFAULT_MAX_FRAME_LEN, FrameSource, Listener, Scheme, Transport, TransportAddress,
    TransportError,
};
use jadeite_websocket::{MAX_PENDING_UPGRADES, WebSocketTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The longest any single step may take.
const STEP: Duration = Duration::from_secs(10);
/// How soon a step that must not wait for a handshake timeout (5 s) completes.
const QUICK: Duration = Duration::from_secs(2);

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

async fn quick<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(QUICK, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {QUICK:?}"))
}

async fn listen(transport: &WebSocketTransport) -> (Box<dyn Listener>, TransportAddress) {
    let address: TransportAddress = "ws://127.0.0.1:0/jadeite".parse().expect("address");
    let listener = bounded("listen", transport.listen(&address))
        .await
        .expect("listen");
    let address = listener.local_address().clone();
    (listener, address)
}

/// A connected pair: (client side, server side).
async fn pair(
    transport: &WebSocketTransport,
    listener: &mut Box<dyn Listener>,
    address: &TransportAddress,
) -> (Connection, Connection) {
    let client = bounded("connect", transport.connect(address))
        .await
        .expect("connect");
    let server = bounded("accept", listener.accept()).await.expect("accept");
    (client, server)
}

/// A plain tokio-tungstenite client, free to break the rules.
async fn raw_client(address: &TransportAddress) -> WebSocketStream<TcpStream> {
    let tcp = bounded("tcp connect", TcpStream::connect(address.authority()))
        .await
        .expect("tcp connect");
    let url = format!("ws://{}{}", address.authority(), address.path());
    let (ws, _) = bounded("upgrade", tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("upgrade");
    ws
}

async fn recv(connection: &mut Connection) -> Result<Option<Vec<u8>>, TransportError> {
    bounded("recv", connection.source.recv()).await
}

#[tokio::test]
async fn local_address_reports_the_real_port_and_the_path() {
    let transport = WebSocketTransport::new();
    assert_eq!(transport.scheme(), Scheme::WebSocket);
    assert_eq!(transport.max_frame_len(), DEFAULT_MAX_FRAME_LEN);
    let (_listener, address) = listen(&transport).await;
    assert_eq!(address.scheme(), Scheme::WebSocket);
    assert_eq!(address.path(), "/jadeite");
    let (host, port) = address.authority().rsplit_once(':').expect("host:port");
    assert_eq!(host, "127.0.0.1");
    assert_ne!(port.parse::<u16>().expect("port"), 0);
}

#[tokio::test]
async fn frames_round_trip_both_ways_including_empty_and_max_size() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;

    let biggest: Vec<u8> = (0..DEFAULT_MAX_FRAME_LEN)
        .map(|i| (i % 251) as u8)
        .collect();
    let frames = [b"hello".to_vec(), Vec::new(), biggest, vec![7; 3]];
    for frame in &frames {
        bounded("client send", client.sink.send(frame.clone()))
            .await
            .expect("client send");
    }
    for frame in &frames {
        assert_eq!(
            recv(&mut server).await.expect("server recv").as_ref(),
            Some(frame)
        );
    }
    for frame in frames.iter().rev() {
        bounded("server send", server.sink.send(frame.clone()))
            .await
            .expect("server send");
    }
    for frame in frames.iter().rev() {
        assert_eq!(
            recv(&mut client).await.expect("client recv").as_ref(),
            Some(frame)
        );
    }
}

#[tokio::test]
async fn remote_is_the_peer_socket_address() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let raw = raw_client(&address).await;
    let server = bounded("accept", listener.accept()).await.expect("accept");
    assert_eq!(
        server.remote,
        raw.get_ref().local_addr().expect("local addr").to_string()
    );
    let (client, _server) = pair(&transport, &mut listener, &address).await;
    assert_eq!(client.remote, address.authority());
}

#[tokio::test]
async fn oversize_send_is_rejected_and_the_connection_stays_usable() {
    let transport = WebSocketTransport::new().with_max_frame_len(16);
    let (mut listener, address) = listen(&transport).await;
    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;
    assert!(matches!(
        client.sink.send(vec![0; 17]).await,
        Err(TransportError::FrameTooLarge { len: 17, max: 16 })
    ));
    assert!(matches!(
        server.sink.send(vec![0; 1000]).await,
        Err(TransportError::FrameTooLarge { len: 1000, max: 16 })
    ));
    bounded("send", client.sink.send(vec![1; 16]))
        .await
        .expect("send at the limit");
    assert_eq!(recv(&mut server).await.expect("recv"), Some(vec![1; 16]));
}

#[tokio::test]
async fn oversize_message_from_a_raw_client_is_an_error() {
    let transport = WebSocketTransport::new().with_max_frame_len(1024);
    let (mut listener, address) = listen(&transport).await;
    let mut raw = raw_client(&address).await;
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    bounded("raw send", raw.send(Message::binary(vec![0u8; 4096])))
        .await
        .expect("raw send");
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::FrameTooLarge {
            len: 4096,
            max: 1024
        })
    ));
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn oversize_message_in_fragments_is_an_error() {
    let transport = WebSocketTransport::new().with_max_frame_len(1024);
    let (mut listener, address) = listen(&transport).await;
    let mut raw = raw_client(&address).await;
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    // Each fragment is within the limit, the message is not.
    let first = Frame::message(vec![1u8; 600], OpCode::Data(Data::Binary), false);
    let last = Frame::message(vec![2u8; 600], OpCode::Data(Data::Continue), true);
    bounded("raw send", raw.send(Message::Frame(first)))
        .await
        .expect("first fragment");
    bounded("raw send", raw.send(Message::Frame(last)))
        .await
        .expect("last fragment");
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::FrameTooLarge { max: 1024, .. })
    ));
}

#[tokio::test]
async fn oversize_message_at_the_default_limit_is_refused_before_it_arrives_whole() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let mut raw = raw_client(&address).await;
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    // The server stops reading after the header, so this send may never
    // complete; it runs on its own and is dropped with the test.
    let sender = tokio::spawn(async move {
        let _ = raw
            .send(Message::binary(vec![0u8; DEFAULT_MAX_FRAME_LEN + 1]))
            .await;
        raw
    });
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::FrameTooLarge { len, max: DEFAULT_MAX_FRAME_LEN })
            if len == DEFAULT_MAX_FRAME_LEN + 1
    ));
    sender.abort();
}

#[tokio::test]
async fn text_message_is_a_protocol_error() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let mut raw = raw_client(&address).await;
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    bounded("raw send", raw.send(Message::text("hello")))
        .await
        .expect("raw send");
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::Protocol(_))
    ));
    assert!(matches!(
        recv(&mut server).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn ping_is_answered_and_not_delivered() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let mut raw = raw_client(&address).await;
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    bounded(
        "raw ping",
        raw.send(Message::Ping(b"are you there".to_vec().into())),
    )
    .await
    .expect("ping");
    bounded("raw send", raw.send(Message::binary(b"data".to_vec())))
        .await
        .expect("send");
    assert_eq!(
        recv(&mut server).await.expect("recv"),
        Some(b"data".to_vec())
    );
    let reply = bounded("pong", raw.next())
        .await
        .expect("a message")
        .expect("no error");
    assert_eq!(reply, Message::Pong(b"are you there".to_vec().into()));
}

#[tokio::test]
async fn wrong_path_fails_while_the_right_path_works() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let wrong: TransportAddress = format!("ws://{}/elsewhere", address.authority())
        .parse()
        .expect("address");
    assert!(matches!(
        bounded("connect", transport.connect(&wrong)).await,
        Err(TransportError::Unreachable(_))
    ));
    let root: TransportAddress = format!("ws://{}", address.authority())
        .parse()
        .expect("address");
    assert!(bounded("connect", transport.connect(&root)).await.is_err());

    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;
    bounded("send", client.sink.send(b"right".to_vec()))
        .await
        .expect("send");
    assert_eq!(
        recv(&mut server).await.expect("recv"),
        Some(b"right".to_vec())
    );
}

#[tokio::test]
async fn clean_close_ends_the_peer_and_the_peer_cannot_send_after_it() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;
    bounded("send", client.sink.send(b"last".to_vec()))
        .await
        .expect("send");
    bounded("close", client.sink.close()).await.expect("close");
    bounded("close again", client.sink.close())
        .await
        .expect("close is idempotent");
    assert!(matches!(
        client.sink.send(b"late".to_vec()).await,
        Err(TransportError::Closed)
    ));
    assert_eq!(
        recv(&mut server).await.expect("recv"),
        Some(b"last".to_vec())
    );
    assert_eq!(recv(&mut server).await.expect("recv"), None);
    assert_eq!(recv(&mut server).await.expect("recv"), None);
    // WebSocket has no half-close.
    assert!(matches!(
        bounded("send", server.sink.send(b"reply".to_vec())).await,
        Err(TransportError::Closed)
    ));
    // The client sees the server's close reply as the end.
    assert_eq!(recv(&mut client).await.expect("recv"), None);
}

#[tokio::test]
async fn server_close_ends_the_client() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;
    bounded("close", server.sink.close()).await.expect("close");
    assert_eq!(recv(&mut client).await.expect("recv"), None);
    assert_eq!(recv(&mut server).await.expect("recv"), None);
}

#[tokio::test]
async fn dropping_a_connection_without_close_ends_the_peer() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let (client, mut server) = pair(&transport, &mut listener, &address).await;
    drop(client);
    assert_eq!(recv(&mut server).await.expect("recv"), None);
}

#[tokio::test]
async fn silent_tcp_client_does_not_block_other_clients() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let _silent = bounded("tcp connect", TcpStream::connect(address.authority()))
        .await
        .expect("tcp connect");
    // Well under the 5 s handshake timeout the silent socket could hold.
    let mut client = quick("connect", transport.connect(&address))
        .await
        .expect("connect");
    let mut server = quick("accept", listener.accept()).await.expect("accept");
    server.sink.send(b"hi".to_vec()).await.expect("send");
    assert_eq!(recv(&mut client).await.expect("recv"), Some(b"hi".to_vec()));
}

#[tokio::test]
async fn garbage_instead_of_an_upgrade_fails_only_that_connection() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let mut garbage = bounded("tcp connect", TcpStream::connect(address.authority()))
        .await
        .expect("tcp connect");
    garbage
        .write_all(b"\x00\x01\x02 this is not HTTP\r\n\r\n")
        .await
        .expect("write garbage");
    // The server drops the socket: EOF (possibly after an error reply) or a reset.
    let mut reply = Vec::new();
    let _ = quick("garbage socket closed", garbage.read_to_end(&mut reply)).await;

    let (mut client, mut server) = pair(&transport, &mut listener, &address).await;
    client.sink.send(b"fine".to_vec()).await.expect("send");
    assert_eq!(
        recv(&mut server).await.expect("recv"),
        Some(b"fine".to_vec())
    );
}

#[tokio::test]
async fn upgrades_beyond_the_pending_limit_are_dropped() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    let mut silent = Vec::new();
    for _ in 0..MAX_PENDING_UPGRADES {
        silent.push(
            bounded("tcp connect", TcpStream::connect(address.authority()))
                .await
                .expect("tcp connect"),
        );
    }
    let mut extra = bounded("tcp connect", TcpStream::connect(address.authority()))
        .await
        .expect("tcp connect");
    let mut byte = [0u8; 1];
    let read = quick("extra socket closed", extra.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the socket over the limit is closed"
    );
    // Once the silent clients leave, their slots free up (as soon as the
    // listener has seen them go, hence a few bounded tries).
    drop(silent);
    let mut client = None;
    for _ in 0..40 {
        if let Ok(Ok(connection)) = tokio::time::timeout(QUICK, transport.connect(&address)).await {
            client = Some(connection);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = client.expect("a slot frees up once the silent clients leave");
    let mut server = bounded("accept", listener.accept()).await.expect("accept");
    client.sink.send(b"after".to_vec()).await.expect("send");
    assert_eq!(
        recv(&mut server).await.expect("recv"),
        Some(b"after".to_vec())
    );
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_other_schemes_are_refused() {
    let transport = WebSocketTransport::new();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let address: TransportAddress = format!("ws://127.0.0.1:{port}/jadeite")
        .parse()
        .expect("address");
    assert!(matches!(
        bounded("connect", transport.connect(&address)).await,
        Err(TransportError::Unreachable(_))
    ));
    let tcp: TransportAddress = "tcp://127.0.0.1:1".parse().expect("address");
    assert!(matches!(
        transport.connect(&tcp).await,
        Err(TransportError::InvalidAddress { .. })
    ));
    assert!(matches!(
        transport.listen(&tcp).await,
        Err(TransportError::InvalidAddress { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_handshake_completes_with_sink_and_source_in_separate_tasks() {
    let transport = WebSocketTransport::new();
    let (mut listener, address) = listen(&transport).await;
    for _ in 0..20 {
        let (client, server) = pair(&transport, &mut listener, &address).await;
        let Connection {
            sink: mut client_sink,
            source: client_source,
            ..
        } = client;
        let Connection {
            sink: mut server_sink,
            source: server_source,
            ..
        } = server;
        // Each side drains its source in its own task until the end.
        let drain = |mut source: Box<dyn FrameSource>| {
            tokio::spawn(async move {
                let mut frames = 0;
                while let Some(_frame) = source.recv().await.expect("recv") {
                    frames += 1;
                }
                frames
            })
        };
        let client_reader = drain(client_source);
        let server_reader = drain(server_source);
        for i in 0..10u8 {
            client_sink.send(vec![i; 100]).await.expect("client send");
            server_sink.send(vec![i; 100]).await.expect("server send");
        }
        client_sink.close().await.expect("close");
        assert_eq!(
            bounded("server reader", server_reader).await.expect("join"),
            10
        );
        assert_eq!(
            bounded("client reader", client_reader).await.expect("join"),
            10
        );
        server_sink
            .close()
            .await
            .expect("close after the peer closed");
    }
}
