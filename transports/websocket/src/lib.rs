//! `ws://host:port/path`: the WebSocket transport for Jadeite.
//!
//! # Framing
//!
//! Every Jadeite frame travels as exactly **one binary WebSocket message**,
//! and every binary message received is exactly one frame (an empty message
//! is an empty frame). WebSocket already delimits messages, so no length
//! prefix is added. Text messages are not part of this protocol: receiving
//! one is a [`TransportError::Protocol`] that ends the connection. Ping and
//! pong are answered by tungstenite and never reach the caller.
//!
//! # The frame limit
//!
//! A connection accepts messages of at most `max_frame_len` bytes
//! ([`DEFAULT_MAX_FRAME_LEN`], 1 MiB, unless changed with
//! [`WebSocketTransport::with_max_frame_len`]). The limit is handed to
//! tungstenite as both `max_message_size` and `max_frame_size`, so a peer that
//! announces a larger WebSocket frame is refused as soon as its header has been
//! read, and a message assembled from fragments is refused as soon as it grows
//! past the limit: one connection can never make us buffer more than the
//! limit, whatever the peer claims. Sending a larger frame fails locally with
//! [`TransportError::FrameTooLarge`] before anything is written.
//!
//! # Listening
//!
//! A listener binds TCP on `host:port` (port 0 picks a free port, which
//! [`Listener::local_address`] then reports) and accepts WebSocket upgrades
//! only for the configured path; any other path gets `404 Not Found`. Each
//! accepted socket is upgraded in its own task within [`HANDSHAKE_TIMEOUT`],
//! and finished connections are handed to [`Listener::accept`] through a
//! bounded queue, so a client that connects and never upgrades (or sends
//! garbage) delays nobody else. At most [`MAX_PENDING_UPGRADES`] sockets may
//! be in that stage at once; sockets beyond that are closed at once.
//!
//! # How the end of a connection is reported
//!
//! [`FrameSource::recv`] maps what tungstenite reports as follows:
//!
//! | tungstenite reports                                   | `recv` returns                  |
//! |-------------------------------------------------------|---------------------------------|
//! | `Message::Binary(data)`                               | `Ok(Some(data))`                |
//! | `Message::Ping` / `Message::Pong`                     | skipped, keeps reading          |
//! | `Message::Close(_)` (the peer's close handshake)      | `Ok(None)`                      |
//! | end of stream, `ConnectionClosed`, `AlreadyClosed`    | `Ok(None)`                      |
//! | `Protocol(ResetWithoutClosingHandshake)` (TCP closed without a Close message) | `Ok(None)` |
//! | `Message::Text(_)`                                    | `Err(Protocol(..))`             |
//! | `Capacity(MessageTooLong { size, .. })`               | `Err(FrameTooLarge { len: size, max })` |
//! | `Io(e)` (e.g. connection reset)                       | `Err(Io(e))`                    |
//! | any other error (bad opcode, unmasked client frame, invalid UTF-8, ...) | `Err(Protocol(..))` |
//!
//! A TCP close without a Close message is reported as a clean end, like a
//! plain TCP EOF: tungstenite cannot tell an EOF between messages from one in
//! the middle of a message, and a peer that drops its connection without
//! calling [`FrameSink::close`] ends it this way. Everything carried is sealed
//! by the session layer above, which detects lost frames itself.
//! After `Ok(None)` further calls return `Ok(None)`; after an error they
//! return [`TransportError::Closed`].
//!
//! WebSocket has no half-close: [`FrameSink::close`] sends a Close message,
//! after which the peer's `recv` returns `Ok(None)` and the peer can no longer
//! send either (its sends then fail with [`TransportError::Closed`]). The
//! `recv` that sees the peer's Close also sends tungstenite's Close reply, so
//! the close handshake completes without waiting for either side's TCP close.
//! Both ends set `TCP_NODELAY`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use jadeite::transport::{
    Connection, DEFAULT_MAX_FRAME_LEN, FrameSink, FrameSource, Listener, Scheme, Transport,
    TransportAddress, TransportError,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

/// How long [`Transport::connect`] may take, TCP connect and upgrade together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an accepted socket may take to complete its WebSocket upgrade.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepted sockets that may be upgrading (or waiting to be handed to
/// [`Listener::accept`]) at once; further sockets are closed immediately.
pub const MAX_PENDING_UPGRADES: usize = 64;

/// Upgraded connections queued for [`Listener::accept`].
const ACCEPT_QUEUE: usize = 16;

/// Polls spent sending the reply to a Close message (see `send_close_reply`).
const CLOSE_REPLY_POLLS: usize = 3;

/// Pause after a failed TCP accept (e.g. out of file descriptors) so the
/// accept loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The `ws://` transport: one binary WebSocket message per frame.
#[derive(Debug, Clone)]
pub struct WebSocketTransport {
    max_frame_len: usize,
}

impl Default for WebSocketTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl WebSocketTransport {
    /// A transport with the [`DEFAULT_MAX_FRAME_LEN`] limit.
    pub fn new() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Sets the largest frame (binary message) sent or accepted.
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_frame_len))
            .max_frame_size(Some(self.max_frame_len))
    }
}

fn check_scheme(address: &TransportAddress) -> Result<(), TransportError> {
    if address.scheme() == Scheme::WebSocket {
        Ok(())
    } else {
        Err(TransportError::InvalidAddress {
            address: address.to_string(),
            reason: "the WebSocket transport serves ws:// addresses only",
        })
    }
}

#[async_trait]
impl Transport for WebSocketTransport {
    fn scheme(&self) -> Scheme {
        Scheme::WebSocket
    }

    async fn listen(
        &self,
        address: &TransportAddress,
    ) -> Result<Box<dyn Listener>, TransportError> {
        check_scheme(address)?;
        let tcp = TcpListener::bind(address.authority()).await?;
        let port = tcp.local_addr()?.port();
        // Keep the host as configured (a name stays a name), with the real port.
        let host = address
            .authority()
            .rsplit_once(':')
            .map_or(address.authority(), |(host, _)| host);
        let local_address = address.with_authority(format!("{host}:{port}"));
        // The request target is compared without any query the address may carry.
        let path: Arc<str> = address
            .path()
            .split(['?', '#'])
            .next()
            .unwrap_or("/")
            .into();
        let (ready, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let accept_task = tokio::spawn(accept_loop(
            tcp,
            path,
            self.config(),
            self.max_frame_len,
            ready,
        ));
        debug!(address = %local_address, "WebSocket listener bound");
        Ok(Box::new(WsListener {
            address: local_address,
            incoming,
            accept_task,
        }))
    }

    async fn connect(&self, address: &TransportAddress) -> Result<Connection, TransportError> {
        check_scheme(address)?;
        let request = format!("ws://{}{}", address.authority(), address.path())
            .into_client_request()
            .map_err(|_| TransportError::InvalidAddress {
                address: address.to_string(),
                reason: "not a valid WebSocket URL",
            })?;
        let config = self.config();
        let max_frame_len = self.max_frame_len;
        let attempt = async {
            let stream =
                TcpStream::connect(address.authority())
                    .await
                    .map_err(|error| match error.kind() {
                        io::ErrorKind::ConnectionRefused => {
                            TransportError::Unreachable(address.to_string())
                        }
                        _ => TransportError::Io(error),
                    })?;
            stream.set_nodelay(true)?;
            let remote = stream.peer_addr()?.to_string();
            let (ws, _response) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                    .await
                    .map_err(|error| handshake_error(address, error))?;
            Ok(connection(ws, remote, max_frame_len))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .map_err(|_| {
                TransportError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {address} took longer than {CONNECT_TIMEOUT:?}"),
                ))
            })?
    }
}

/// Maps a failed client upgrade: a 404 means nothing listens at that path.
fn handshake_error(address: &TransportAddress, error: WsError) -> TransportError {
    match error {
        WsError::Http(response) if response.status() == StatusCode::NOT_FOUND => {
            TransportError::Unreachable(address.to_string())
        }
        WsError::Http(response) => TransportError::Protocol(format!(
            "WebSocket upgrade refused with HTTP {}",
            response.status()
        )),
        WsError::Io(error) => TransportError::Io(error),
        error => TransportError::Protocol(format!("WebSocket upgrade failed: {error}")),
    }
}

/// Accepts TCP sockets and upgrades each in its own task. The tasks live in a
/// [`JoinSet`] owned by this loop, so dropping the listener (which aborts the
/// loop) aborts every upgrade in progress as well.
async fn accept_loop(
    tcp: TcpListener,
    path: Arc<str>,
    config: WebSocketConfig,
    max_frame_len: usize,
    ready: mpsc::Sender<Connection>,
) {
    let mut upgrades = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = upgrades.join_next(), if !upgrades.is_empty() => {}
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Count only upgrades still in progress.
                    while upgrades.try_join_next().is_some() {}
                    if upgrades.len() >= MAX_PENDING_UPGRADES {
                        warn!(%peer, limit = MAX_PENDING_UPGRADES,
                            "too many pending WebSocket upgrades; closing the new socket");
                        continue;
                    }
                    upgrades.spawn(upgrade(
                        stream,
                        peer,
                        Arc::clone(&path),
                        config,
                        max_frame_len,
                        ready.clone(),
                    ));
                }
                Err(error) => {
                    warn!(%error, "TCP accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
}

/// Upgrades one accepted socket and queues the connection for `accept()`.
/// Failures end only this socket.
async fn upgrade(
    stream: TcpStream,
    peer: SocketAddr,
    path: Arc<str>,
    config: WebSocketConfig,
    max_frame_len: usize,
    ready: mpsc::Sender<Connection>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    // The error type is tungstenite's `ErrorResponse`, dictated by its `Callback`.
    #[allow(clippy::result_large_err)]
    let check_path = move |request: &Request, response: Response| {
        if request.uri().path() == &*path {
            Ok(response)
        } else {
            debug!(%peer, requested = request.uri().path(), expected = &*path,
                "WebSocket upgrade for an unknown path");
            let mut refusal = ErrorResponse::new(Some("no WebSocket endpoint here".to_owned()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(config));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => {
            let connection = connection(ws, peer.to_string(), max_frame_len);
            if ready.send(connection).await.is_err() {
                debug!(%peer, "listener closed before the connection was accepted");
            }
        }
        Ok(Err(error)) => debug!(%peer, %error, "WebSocket upgrade failed"),
        Err(_) => debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "WebSocket upgrade timed out"),
    }
}

struct WsListener {
    address: TransportAddress,
    incoming: mpsc::Receiver<Connection>,
    accept_task: JoinHandle<()>,
}

impl Drop for WsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

#[async_trait]
impl Listener for WsListener {
    fn local_address(&self) -> &TransportAddress {
        &self.address
    }

    async fn accept(&mut self) -> Result<Connection, TransportError> {
        self.incoming.recv().await.ok_or(TransportError::Closed)
    }
}

type Ws = WebSocketStream<TcpStream>;

fn connection(ws: Ws, remote: String, max_frame_len: usize) -> Connection {
    let (sink, source) = ws.split();
    Connection {
        sink: Box::new(WsSink {
            sink,
            max_frame_len,
            closed: false,
        }),
        source: Box::new(WsSource {
            source,
            max_frame_len,
            state: SourceState::Open,
        }),
        remote,
    }
}

struct WsSink {
    sink: SplitSink<Ws, Message>,
    max_frame_len: usize,
    closed: bool,
}

/// Maps an error from sending or closing.
fn send_error(error: WsError) -> TransportError {
    match error {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::SendAfterClosing) => TransportError::Closed,
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            TransportError::FrameTooLarge {
                len: size,
                max: max_size,
            }
        }
        WsError::Io(error) => TransportError::Io(error),
        error => TransportError::Io(io::Error::other(error)),
    }
}

#[async_trait]
impl FrameSink for WsSink {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if frame.len() > self.max_frame_len {
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                max: self.max_frame_len,
            });
        }
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.sink
            .send(Message::binary(frame))
            .await
            .map_err(send_error)
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        match self.sink.close().await {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            Err(error) => Err(send_error(error)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceState {
    Open,
    /// The peer closed; `recv` keeps returning `Ok(None)`.
    Ended,
    /// An error was returned; `recv` returns `Closed`.
    Failed,
}

struct WsSource {
    source: SplitStream<Ws>,
    max_frame_len: usize,
    state: SourceState,
}

impl WsSource {
    /// tungstenite queues its reply to the peer's Close and writes it at the
    /// start of the next read, so poll the stream a few more times (without
    /// waiting for the peer to close TCP): the peer then sees its close
    /// acknowledged and does not wait for our end of the TCP connection. A poll
    /// can find the stream locked by the sink half for a moment, hence a few
    /// tries; [`FrameSink::close`] flushes the reply as well.
    async fn send_close_reply(&mut self) {
        for _ in 0..CLOSE_REPLY_POLLS {
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(self.source.poll_next_unpin(cx))).await;
            if polled.is_ready() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    fn end(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        self.state = SourceState::Ended;
        Ok(None)
    }

    fn fail(&mut self, error: TransportError) -> Result<Option<Vec<u8>>, TransportError> {
        debug!(%error, "WebSocket connection failed");
        self.state = SourceState::Failed;
        Err(error)
    }
}

#[async_trait]
impl FrameSource for WsSource {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            match self.state {
                SourceState::Open => {}
                SourceState::Ended => return Ok(None),
                SourceState::Failed => return Err(TransportError::Closed),
            }
            let Some(item) = self.source.next().await else {
                // tokio-tungstenite ends the stream on ConnectionClosed/AlreadyClosed.
                return self.end();
            };
            match item {
                Ok(Message::Binary(data)) => {
                    if data.len() > self.max_frame_len {
                        // tungstenite enforces this already; kept as a guard.
                        return self.fail(TransportError::FrameTooLarge {
                            len: data.len(),
                            max: self.max_frame_len,
                        });
                    }
                    return Ok(Some(Vec::from(data)));
                }
                Ok(Message::Text(_)) => {
                    return self.fail(TransportError::Protocol(
                        "text WebSocket message; frames travel as binary messages only".to_owned(),
                    ));
                }
                // Answered by tungstenite; raw frames are never yielded when reading.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    self.send_close_reply().await;
                    return self.end();
                }
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ) => return self.end(),
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                    return self.fail(TransportError::FrameTooLarge {
                        len: size,
                        max: self.max_frame_len,
                    });
                }
                Err(WsError::Io(error)) => return self.fail(TransportError::Io(error)),
                Err(error) => return self.fail(TransportError::Protocol(error.to_string())),
            }
        }
    }
}
