//! A peer built by hand on a raw TCP socket: the link framing and the routing
//! header of `docs/protocol.md`, byte by byte, to play the peers the platform
//! API never is: one that sends garbage, one that opens handshakes and never
//! finishes them, one connecting from another loopback address.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use jadeite::security::{Credentials, Handshake, HandshakeConfig, PlatformId};
use jadeite::transport::TransportAddress;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Routing header: version, kind, source id, destination id.
pub const ROUTING_HEADER_LEN: usize = 1 + 1 + 16 + 16;
pub const VERSION: u8 = 1;
pub const HELLO: u8 = 1;
pub const HANDSHAKE: u8 = 2;
/// Largest frame this client reads (the transport's default limit).
const MAX_FRAME: usize = 1024 * 1024;

/// A frame: routing header, then `body`.
pub fn frame(kind: u8, source: PlatformId, destination: PlatformId, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ROUTING_HEADER_LEN + body.len());
    frame.push(VERSION);
    frame.push(kind);
    frame.extend_from_slice(&source.0);
    frame.extend_from_slice(&destination.0);
    frame.extend_from_slice(body);
    frame
}

/// A frame's kind and source id, if it has a routing header of version 1.
pub fn kind_and_source(frame: &[u8]) -> Option<(u8, PlatformId)> {
    if frame.len() < ROUTING_HEADER_LEN || frame[0] != VERSION {
        return None;
    }
    let mut source = [0u8; 16];
    source.copy_from_slice(&frame[2..18]);
    Some((frame[1], PlatformId(source)))
}

/// What waiting for a frame ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame(Vec<u8>),
    /// The far end closed the connection (EOF or an error such as a reset).
    Closed,
    /// Nothing within the wait.
    Silence,
}

/// One TCP connection speaking the link framing (4-byte big-endian length).
#[derive(Debug)]
pub struct RawTcp {
    stream: TcpStream,
}

impl RawTcp {
    /// Connects to the `tcp://` address `to` from the local address `from`:
    /// every 127.x.y.z works on Linux loopback, so one test can play several
    /// remote hosts.
    pub async fn connect(from: Ipv4Addr, to: &TransportAddress) -> io::Result<Self> {
        let target: SocketAddr = to
            .authority()
            .parse()
            .map_err(|_| io::Error::other(format!("not an ip:port address: {to}")))?;
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(from, 0)))?;
        let stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream })
    }

    /// Writes `bytes` as they are, framed or not.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).map_err(io::Error::other)?;
        let mut wire = len.to_be_bytes().to_vec();
        wire.extend_from_slice(frame);
        self.stream.write_all(&wire).await
    }

    /// The next frame, waiting at most `wait`. Not cancel safe across the
    /// wait: after `Silence` the stream may be mid-frame, so use `Silence`
    /// only to stop reading.
    pub async fn next(&mut self, wait: Duration) -> Next {
        match tokio::time::timeout(wait, self.read_frame()).await {
            Err(_) => Next::Silence,
            Ok(Ok(Some(frame))) => Next::Frame(frame),
            Ok(Ok(None) | Err(_)) => Next::Closed,
        }
    }

    async fn read_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut prefix = [0u8; 4];
        match self.stream.read_exact(&mut prefix).await {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::other(format!("a {len}-byte frame")));
        }
        let mut frame = vec![0u8; len];
        self.stream.read_exact(&mut frame).await?;
        Ok(Some(frame))
    }

    /// Whether the far end closes the connection within `wait`, whatever it
    /// sends before that.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut sink = Vec::new();
        // EOF ends `read_to_end` with `Ok`, a reset with `Err`: both are closed.
        tokio::time::timeout(wait, self.stream.read_to_end(&mut sink))
            .await
            .is_ok()
    }

    /// The link hello exchange as platform `id`: reads the platform's hello
    /// (it speaks first) and answers with ours. The platform's id.
    pub async fn hello(&mut self, id: PlatformId, wait: Duration) -> io::Result<PlatformId> {
        let theirs = match self.next(wait).await {
            Next::Frame(frame) => frame,
            other => return Err(io::Error::other(format!("no hello: {other:?}"))),
        };
        let (_, server) = kind_and_source(&theirs)
            .filter(|(kind, _)| *kind == HELLO)
            .ok_or_else(|| io::Error::other("the first frame is not a hello"))?;
        self.send_frame(&frame(HELLO, id, PlatformId([0; 16]), b"raw"))
            .await?;
        Ok(server)
    }
}

/// A connection that has said hello as a fresh random platform id and sent a
/// real handshake Offer to `server`, and will never send anything more.
#[derive(Debug)]
pub struct HalfOpen {
    pub link: RawTcp,
    pub id: PlatformId,
    pub server: PlatformId,
    /// Kept so the offer stays a live handshake on this side too.
    _handshake: Handshake,
}

impl HalfOpen {
    /// Connects from `from` to `to`, says hello as a new random id and sends
    /// the Offer of a handshake with `credentials`.
    pub async fn offer(
        from: Ipv4Addr,
        to: &TransportAddress,
        credentials: Credentials,
        wait: Duration,
    ) -> io::Result<Self> {
        let mut link = RawTcp::connect(from, to).await?;
        let id = PlatformId::random().map_err(io::Error::other)?;
        let server = link.hello(id, wait).await?;
        let config = Arc::new(HandshakeConfig::new(id, credentials));
        let (handshake, offer) =
            Handshake::initiate(config, Some(server)).map_err(io::Error::other)?;
        link.send_frame(&frame(HANDSHAKE, id, server, &offer))
            .await?;
        Ok(Self {
            link,
            id,
            server,
            _handshake: handshake,
        })
    }

    /// Whether the server answers the Offer (a handshake frame from it to us)
    /// within `wait`.
    pub async fn answered_within(&mut self, wait: Duration) -> bool {
        match self.link.next(wait).await {
            Next::Frame(frame) => {
                kind_and_source(&frame) == Some((HANDSHAKE, self.server))
                    && frame[18..ROUTING_HEADER_LEN] == self.id.0
            }
            Next::Closed | Next::Silence => false,
        }
    }
}

/// The data frame kind of the routing header.
pub const DATA: u8 = 3;

/// Connects from `from` to `to` claiming to be platform `id` (any id: the
/// hello is unauthenticated) and runs a whole handshake with `credentials`.
/// Returns the link once this side has established the session, with the
/// roles of the platform that it verified.
pub async fn handshake_as(
    from: Ipv4Addr,
    to: &TransportAddress,
    id: PlatformId,
    credentials: Credentials,
    wait: Duration,
) -> io::Result<(
    RawTcp,
    std::collections::BTreeSet<jadeite::security::RoleName>,
)> {
    let mut link = RawTcp::connect(from, to).await?;
    let server = link.hello(id, wait).await?;
    let config = Arc::new(HandshakeConfig::new(id, credentials));
    let (mut handshake, offer) =
        Handshake::initiate(config, Some(server)).map_err(io::Error::other)?;
    link.send_frame(&frame(HANDSHAKE, id, server, &offer))
        .await?;
    loop {
        let incoming = match link.next(wait).await {
            Next::Frame(incoming) => incoming,
            other => return Err(io::Error::other(format!("handshake broke off: {other:?}"))),
        };
        if kind_and_source(&incoming) != Some((HANDSHAKE, server)) {
            continue;
        }
        let progress = handshake
            .receive(
                &incoming[ROUTING_HEADER_LEN..],
                jadeite::security::Now::system(),
            )
            .map_err(io::Error::other)?;
        if let Some(reply) = progress.reply {
            link.send_frame(&frame(HANDSHAKE, id, server, &reply))
                .await?;
        }
        if let Some(established) = progress.established {
            return Ok((link, established.peer_roles));
        }
    }
}
