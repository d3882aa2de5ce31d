//! The security core of Jadeite, sans-IO.
//!
//! Two platforms run a [`Handshake`] (four messages, after Fig. 2 of Jander,
//! Braubach and Pokahr, "Defense in depth for microservices") and get a
//! [`SecureSession`]: hybrid X448 + post-quantum KEM key exchange, every role the
//! peer proved (password via J-PAKE, shared key, X.509 certificate), and a
//! ChaCha20-Poly1305 channel with an out-of-order replay window and rekey epochs.
//!
//! Nothing here touches a socket, a clock or a global: callers pass bytes and
//! the time in and take bytes out. Randomness comes from the operating system.
//! See `docs/protocol.md` for the wire format and `docs/security.md` for the
//! threat model.

#![forbid(unsafe_code)]

pub mod channel;
mod codec;
pub mod error;
pub mod handshake;
mod jpake;
pub mod primitives;
pub mod replay;
pub mod roles;
pub mod suite;
pub mod x509;

/// Throwaway PKI for unit tests, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/test_pki.rs"]
mod test_pki;

pub use channel::{ChannelConfig, PacketType, Received, SecureSession, Side};
pub use error::{ChannelError, ConfigError, DecodeError, HandshakeError};
pub use handshake::{
    Established, Handshake, HandshakeConfig, Now, PlatformId, Progress, SecurityEvent,
    UnauthenticatedPolicy,
};
pub use roles::{Credentials, Password, RoleKind, RoleName, SharedKey};
pub use rustls_pki_types::UnixTime;
pub use suite::CipherSuite;
pub use x509::{CertificateIdentity, RoleTrustAnchor, X509Error};
