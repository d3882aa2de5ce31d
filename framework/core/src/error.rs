use jadeite_security::{ConfigError, HandshakeError, PlatformId};
use thiserror::Error;

use crate::transport::TransportError;

/// Why a platform could not start or a link could not be made.
#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("invalid security configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("invalid limits: {0}")]
    Limits(&'static str),
    #[error("no transport for scheme {0:?} is configured")]
    NoTransport(&'static str),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the peer did not introduce itself within the link timeout")]
    HelloTimeout,
    #[error("malformed hello from the peer")]
    BadHello,
    #[error("the peer claims this platform's own id")]
    SelfConnection,
    #[error("too many peer platforms are known (Limits::max_peers)")]
    TooManyPeers,
    #[error("the platform is shut down")]
    Shutdown,
    #[error("random number generator failed")]
    Randomness,
}

/// Why a message was not sent. A message is sent at most once: after any of
/// these it was not handed to a link.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SendError {
    #[error("platform {0} is unreachable: no session within the send timeout")]
    Unreachable(PlatformId),
    #[error("the handshake with platform {peer} failed: {error}")]
    Handshake {
        peer: PlatformId,
        error: HandshakeError,
    },
    #[error("platform {peer} refused the handshake: {reason}")]
    Refused { peer: PlatformId, reason: String },
    #[error("too many messages queued for platform {0}")]
    QueueFull(PlatformId),
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the platform is shut down")]
    Shutdown,
}
