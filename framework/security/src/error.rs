//! Error values. Every failure caused by peer bytes ends here, never in a panic.

use thiserror::Error;

use crate::roles::RoleName;

/// A message could not be parsed. The message is dropped; nothing was allocated
/// beyond what its declared (and bounded) lengths allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message truncated in field `{field}`")]
    Truncated { field: &'static str },
    #[error("field `{field}` has {len} bytes, allowed {min}..={max}")]
    BadLength {
        field: &'static str,
        len: usize,
        min: usize,
        max: usize,
    },
    #[error("field `{field}` lists more than {max} entries")]
    TooMany { field: &'static str, max: usize },
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes { extra: usize },
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("field `{field}` repeats an entry")]
    Duplicate { field: &'static str },
    #[error("field `{field}` is not a valid name")]
    InvalidName { field: &'static str },
    #[error("field `{field}` holds an invalid group element or scalar")]
    InvalidEncoding { field: &'static str },
}

/// Why a handshake stopped. The handshake is dead after any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("malformed handshake message: {0}")]
    Decode(#[from] DecodeError),
    #[error("in state `{expected}`, received message type {received:#04x}")]
    UnexpectedMessage {
        expected: &'static str,
        received: u8,
    },
    #[error("the handshake already finished or failed")]
    Closed,
    #[error("no cipher suite in common with the peer")]
    NoCommonSuite,
    #[error("the responder chose a suite that was never offered")]
    UnofferedSuite,
    #[error("the peer's {0} is invalid (low order, zero output or malformed)")]
    InvalidKeyShare(&'static str),
    #[error("J-PAKE for role `{role}` failed: {reason}")]
    Jpake {
        role: RoleName,
        reason: &'static str,
    },
    #[error("the peer's password-role list does not match the offer")]
    PasswordRoleMismatch,
    #[error("the peer claims this platform's own identity (reflection)")]
    Reflection,
    #[error("the peer is not the platform this handshake was started for")]
    PeerMismatch,
    #[error("key confirmation failed: transcript or key mismatch")]
    KeyConfirmation,
    #[error("no role of the peer verified and the policy refuses unauthenticated peers")]
    NoVerifiedRole,
    #[error("signing with the certificate key of role `{0}` failed")]
    Signing(RoleName),
    #[error("random number generator failed")]
    Randomness,
}

/// A data-path failure. A rejected message costs only itself: the session stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    #[error("malformed data message: {0}")]
    Decode(#[from] DecodeError),
    #[error("authentication tag did not verify")]
    BadTag,
    #[error("message counter already seen (replay)")]
    Replay,
    #[error("message counter is behind the replay window")]
    TooOld,
    #[error("message belongs to epoch {0}, which is not (or no longer) active")]
    UnknownEpoch(u32),
    #[error("the sending key is exhausted; the session must rekey first")]
    KeyExhausted,
    #[error("malformed rekey message")]
    BadRekey,
    #[error("random number generator failed")]
    Randomness,
}

/// Invalid local configuration (keys, passwords, role names, suites).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("role name {0:?} must be 1..=64 bytes of [A-Za-z0-9._-]")]
    InvalidRoleName(String),
    #[error("shared key for a role must be 32..=64 bytes, got {0}")]
    SharedKeyLength(usize),
    #[error("password must be 1..=1024 bytes")]
    PasswordLength,
    #[error("unknown cipher suite {0:?}")]
    UnknownSuite(String),
    #[error("the suite list must be non-empty and free of duplicates")]
    SuiteList,
    #[error("too many roles of one kind (at most {0})")]
    TooManyRoles(usize),
    #[error("channel setting `{0}` is out of range")]
    Channel(&'static str),
}
