//! The transport seam: a transport listens on and connects to addresses, and a
//! connection moves opaque frames in both directions. Transports know nothing
//! of sessions, roles or keys; everything they carry is already sealed.

mod address;
pub mod mem;

use async_trait::async_trait;
use thiserror::Error;

pub use address::{Scheme, TransportAddress};

/// Largest frame a transport accepts unless configured otherwise: 1 MiB holds
/// any handshake message (at most 256 KiB) and service calls of ordinary size,
/// while one connection can make a peer buffer at most this much.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("invalid transport address {address:?}: {reason}")]
    InvalidAddress {
        address: String,
        reason: &'static str,
    },
    #[error("transport {0:?} is not available on this platform")]
    UnsupportedScheme(String),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("the peer closed the connection in the middle of a frame")]
    TruncatedFrame,
    #[error("protocol violation by the peer: {0}")]
    Protocol(String),
    #[error("connection closed")]
    Closed,
    #[error("nothing listens at {0}")]
    Unreachable(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends frames on one connection.
#[async_trait]
pub trait FrameSink: Send {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError>;
    /// Closes the sending direction; the peer's receiver then sees the end.
    async fn close(&mut self) -> Result<(), TransportError>;
}

/// Receives frames from one connection.
#[async_trait]
pub trait FrameSource: Send {
    /// The next frame; `Ok(None)` once the peer closed cleanly. Any error ends
    /// the connection (and only this connection).
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError>;
}

/// One established connection, already split so that sending and receiving
/// run in separate tasks.
pub struct Connection {
    pub sink: Box<dyn FrameSink>,
    pub source: Box<dyn FrameSource>,
    /// The remote end as the transport sees it (for logs and per-address limits).
    pub remote: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Accepts inbound connections on one address.
#[async_trait]
pub trait Listener: Send {
    /// The address peers can connect to (with the real port if 0 was asked for).
    fn local_address(&self) -> &TransportAddress;
    async fn accept(&mut self) -> Result<Connection, TransportError>;
}

/// A way to reach other platforms: TCP, WebSocket, in-process.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The URL scheme this transport serves (`tcp`, `ws`, `mem`).
    fn scheme(&self) -> Scheme;
    async fn listen(&self, address: &TransportAddress)
    -> Result<Box<dyn Listener>, TransportError>;
    async fn connect(&self, address: &TransportAddress) -> Result<Connection, TransportError>;
}
