//! `tcp://host:port`: the Jadeite transport over plain TCP.
//!
//! # Framing
//!
//! Each frame travels as a 4-byte big-endian length followed by exactly that
//! many bytes. A length above the receiver's limit is rejected as
//! [`TransportError::FrameTooLarge`] as soon as the 4 length bytes arrive,
//! before any buffer is allocated, and the connection is then unusable. The
//! peer closing at a frame boundary ends the stream (`Ok(None)`); closing
//! inside the length or the body is [`TransportError::TruncatedFrame`].
//!
//! # Limit
//!
//! The limit defaults to [`DEFAULT_MAX_FRAME_LEN`] (1 MiB): large enough for
//! any handshake message (at most 256 KiB) and service calls of ordinary size,
//! small enough that one connection can make this end buffer at most 1 MiB,
//! whatever length an unauthenticated peer claims (up to 4 GiB). Frames are
//! sealed by the layer above, so the transport checks nothing but their size.
//!
//! Every socket has `TCP_NODELAY` set: a frame is written with a single write,
//! so Nagle's algorithm would only add latency.

#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use jadeite::transport::{
    Connection, DEFAULT_MAX_FRAME_LEN, FrameSink, FrameSource, Listener, Scheme, Transport,
    TransportAddress, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How long [`Transport::connect`] waits (name resolution included) unless
/// configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of the length prefix.
const LEN_PREFIX: usize = 4;

/// Read buffer per connection: a small frame and the next length prefix
/// usually arrive with one system call. Larger bodies bypass it.
const READ_BUFFER: usize = 8 * 1024;

/// The largest length a 4-byte prefix can carry.
const PREFIX_MAX: usize = u32::MAX as usize;

/// The `tcp://` transport.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    max_frame_len: usize,
    connect_timeout: Duration,
}

impl Default for TcpTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpTransport {
    /// Frames up to [`DEFAULT_MAX_FRAME_LEN`], connects give up after
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The largest frame sent or accepted on connections made from now on.
    /// Values above `u32::MAX` (what the length prefix can carry) act as
    /// `u32::MAX`.
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len.min(PREFIX_MAX);
        self
    }

    /// How long `connect` may take, name resolution included.
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Opens the TCP stream for `connect`, configured but not yet split.
    async fn connect_stream(
        &self,
        address: &TransportAddress,
    ) -> Result<TcpStream, TransportError> {
        check_scheme(address)?;
        let stream = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(address.authority()),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(TransportError::Unreachable(address.to_string()));
            }
            Ok(Err(error)) => return Err(TransportError::Io(error)),
            Err(_elapsed) => {
                return Err(TransportError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connecting to {address} took longer than {:?}",
                        self.connect_timeout
                    ),
                )));
            }
        };
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

fn check_scheme(address: &TransportAddress) -> Result<(), TransportError> {
    if address.scheme() == Scheme::Tcp {
        Ok(())
    } else {
        Err(TransportError::InvalidAddress {
            address: address.to_string(),
            reason: "the tcp transport serves tcp:// addresses only",
        })
    }
}

/// Splits a configured stream into a [`Connection`].
fn into_connection(stream: TcpStream, remote: String, max_frame_len: usize) -> Connection {
    let (read, write) = stream.into_split();
    Connection {
        sink: Box::new(TcpSink {
            writer: Some(write),
            max_frame_len,
            write_interrupted: false,
        }),
        source: Box::new(TcpSource {
            reader: BufReader::with_capacity(READ_BUFFER, read),
            max_frame_len,
            header: [0; LEN_PREFIX],
            header_filled: 0,
            body: None,
            body_filled: 0,
            failed: false,
        }),
        remote,
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn scheme(&self) -> Scheme {
        Scheme::Tcp
    }

    async fn listen(
        &self,
        address: &TransportAddress,
    ) -> Result<Box<dyn Listener>, TransportError> {
        check_scheme(address)?;
        let listener = TcpListener::bind(address.authority()).await?;
        let local = listener.local_addr()?;
        let address = address.with_authority(local.to_string());
        tracing::debug!(%address, "tcp transport listening");
        Ok(Box::new(TcpFrameListener {
            listener,
            address,
            max_frame_len: self.max_frame_len,
        }))
    }

    async fn connect(&self, address: &TransportAddress) -> Result<Connection, TransportError> {
        let stream = self.connect_stream(address).await?;
        let remote = stream.peer_addr()?.to_string();
        tracing::debug!(%remote, "tcp transport connected");
        Ok(into_connection(stream, remote, self.max_frame_len))
    }
}

/// Accepts TCP connections on one bound socket.
struct TcpFrameListener {
    listener: TcpListener,
    address: TransportAddress,
    max_frame_len: usize,
}

impl TcpFrameListener {
    /// Accepts the next TCP stream, configured but not yet split.
    async fn accept_stream(&mut self) -> Result<(TcpStream, String), TransportError> {
        let (stream, peer) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, peer.to_string()))
    }
}

#[async_trait]
impl Listener for TcpFrameListener {
    fn local_address(&self) -> &TransportAddress {
        &self.address
    }

    /// An error here concerns one connection only (or a passing shortage such
    /// as file descriptors); the listener stays usable and the caller loops.
    async fn accept(&mut self) -> Result<Connection, TransportError> {
        let (stream, remote) = self.accept_stream().await.inspect_err(|error| {
            tracing::debug!(address = %self.address, %error, "tcp accept failed");
        })?;
        tracing::debug!(address = %self.address, %remote, "tcp transport accepted");
        Ok(into_connection(stream, remote, self.max_frame_len))
    }
}

/// The sending half: one `write_all` per frame (prefix and body together).
struct TcpSink {
    /// `None` once closed or after a write failed.
    writer: Option<OwnedWriteHalf>,
    max_frame_len: usize,
    /// Set while a frame is being written. Still set on entry means an earlier
    /// `send` was cancelled mid-frame: the byte stream is out of step, so the
    /// connection is unusable.
    write_interrupted: bool,
}

#[async_trait]
impl FrameSink for TcpSink {
    async fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if frame.len() > self.max_frame_len {
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                max: self.max_frame_len,
            });
        }
        if self.write_interrupted {
            self.writer = None;
            return Err(TransportError::Closed);
        }
        let writer = self.writer.as_mut().ok_or(TransportError::Closed)?;
        // The limit is clamped to `u32::MAX`, so the length fits.
        let len = u32::try_from(frame.len()).map_err(|_| TransportError::FrameTooLarge {
            len: frame.len(),
            max: self.max_frame_len,
        })?;
        let mut wire = Vec::with_capacity(LEN_PREFIX + frame.len());
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(&frame);
        drop(frame);
        self.write_interrupted = true;
        let written = writer.write_all(&wire).await;
        self.write_interrupted = false;
        if let Err(error) = written {
            // Part of the frame may be on the wire: never write after it.
            self.writer = None;
            return Err(TransportError::Io(error));
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        if let Some(mut writer) = self.writer.take() {
            writer.shutdown().await?;
        }
        Ok(())
    }
}

/// The receiving half. The frame in progress lives in `self`, so `recv` is
/// cancel safe: a `recv` dropped mid-frame loses nothing, the next one
/// continues where it stopped.
struct TcpSource {
    reader: BufReader<OwnedReadHalf>,
    max_frame_len: usize,
    header: [u8; LEN_PREFIX],
    header_filled: usize,
    /// The body being read, allocated once its length passed the limit.
    body: Option<Vec<u8>>,
    body_filled: usize,
    /// Set after an error: the stream is no longer at a frame boundary.
    failed: bool,
}

impl TcpSource {
    async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        if self.body.is_none() {
            while self.header_filled < LEN_PREFIX {
                let read = self
                    .reader
                    .read(&mut self.header[self.header_filled..])
                    .await?;
                if read == 0 {
                    return if self.header_filled == 0 {
                        Ok(None)
                    } else {
                        Err(TransportError::TruncatedFrame)
                    };
                }
                self.header_filled += read;
            }
            let len = usize::try_from(u32::from_be_bytes(self.header)).unwrap_or(usize::MAX);
            if len > self.max_frame_len {
                return Err(TransportError::FrameTooLarge {
                    len,
                    max: self.max_frame_len,
                });
            }
            self.body = Some(vec![0; len]);
            self.body_filled = 0;
        }
        if let Some(body) = self.body.as_mut() {
            while self.body_filled < body.len() {
                let read = self.reader.read(&mut body[self.body_filled..]).await?;
                if read == 0 {
                    return Err(TransportError::TruncatedFrame);
                }
                self.body_filled += read;
            }
        }
        self.header_filled = 0;
        self.body_filled = 0;
        Ok(self.body.take())
    }
}

#[async_trait]
impl FrameSource for TcpSource {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        if self.failed {
            return Err(TransportError::Closed);
        }
        let frame = self.read_frame().await;
        if let Err(error) = &frame {
            self.failed = true;
            self.body = None;
            tracing::debug!(%error, "tcp connection failed while receiving");
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both the connecting and the accepting side disable Nagle's algorithm.
    #[tokio::test]
    async fn every_socket_has_nodelay() {
        let transport = TcpTransport::new();
        let address: TransportAddress = "tcp://127.0.0.1:0".parse().unwrap();
        check_scheme(&address).unwrap();
        let listener = TcpListener::bind(address.authority()).await.unwrap();
        let mut listener = TcpFrameListener {
            address: address.with_authority(listener.local_addr().unwrap().to_string()),
            listener,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        };
        let bound = listener.address.clone();
        let (connected, accepted) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(transport.connect_stream(&bound), listener.accept_stream())
        })
        .await
        .unwrap();
        assert!(connected.unwrap().nodelay().unwrap());
        assert!(accepted.unwrap().0.nodelay().unwrap());
    }
}
