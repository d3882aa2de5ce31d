//! Roles and the secrets that prove them.
//!
//! A role is a name plus a way to prove it. Shared keys and passwords are
//! symmetric (holding one both proves and verifies the role); an X.509 role is
//! proved with a certificate chain and key and verified with only the role's
//! trust anchor.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::error::ConfigError;
use crate::x509::{CertificateIdentity, RoleTrustAnchor};

/// Most password roles one handshake runs J-PAKE for; bounds the work a peer can ask for.
pub const MAX_PASSWORD_ROLES: usize = 16;
/// Most authenticators one side may send.
pub const MAX_AUTHENTICATORS: usize = 32;
pub const MAX_ROLE_NAME_LEN: usize = 64;

/// A validated role name: 1..=64 bytes of `[A-Za-z0-9._-]`, so it is safe in
/// logs, config keys and on the wire.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub fn new(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        if Self::is_valid(name.as_bytes()) {
            Ok(Self(name))
        } else {
            Err(ConfigError::InvalidRoleName(name))
        }
    }

    pub(crate) fn from_wire(bytes: &[u8]) -> Option<Self> {
        Self::is_valid(bytes).then(|| Self(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn is_valid(bytes: &[u8]) -> bool {
        (1..=MAX_ROLE_NAME_LEN).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Lets a set of role names be searched by `&str` (a role named in an
/// access rule). Sound because `RoleName` orders, hashes and compares
/// exactly as the string it holds.
impl std::borrow::Borrow<str> for RoleName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for RoleName {
    type Error = ConfigError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

/// A high-entropy key shared by everyone who holds the role: 32..=64 bytes.
pub struct SharedKey(Zeroizing<Vec<u8>>);

impl SharedKey {
    pub fn new(bytes: &[u8]) -> Result<Self, ConfigError> {
        if !(32..=64).contains(&bytes.len()) {
            return Err(ConfigError::SharedKeyLength(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

/// A low-entropy password. Only ever used inside J-PAKE, so an eavesdropper or
/// a man in the middle learns nothing that allows an offline guess.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(password: impl Into<String>) -> Result<Self, ConfigError> {
        let password = Zeroizing::new(password.into());
        if password.is_empty() || password.len() > 1024 {
            return Err(ConfigError::PasswordLength);
        }
        Ok(Self(password))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// How a role was proved. Part of each authenticator on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    SharedKey = 1,
    Password = 2,
    Certificate = 3,
}

impl RoleKind {
    pub(crate) fn from_wire(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::SharedKey),
            2 => Some(Self::Password),
            3 => Some(Self::Certificate),
            _ => None,
        }
    }
}

/// Everything a platform can prove and verify.
#[derive(Debug, Default)]
pub struct Credentials {
    pub(crate) shared_keys: BTreeMap<RoleName, SharedKey>,
    pub(crate) passwords: BTreeMap<RoleName, Password>,
    pub(crate) certificates: BTreeMap<RoleName, CertificateIdentity>,
    pub(crate) trust_anchors: BTreeMap<RoleName, RoleTrustAnchor>,
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Proves and verifies `role` with a shared key.
    pub fn with_shared_key(mut self, role: RoleName, key: SharedKey) -> Self {
        self.shared_keys.insert(role, key);
        self
    }

    /// Proves and verifies `role` with a password (J-PAKE).
    pub fn with_password(mut self, role: RoleName, password: Password) -> Self {
        self.passwords.insert(role, password);
        self
    }

    /// Proves `role` with a certificate chain and its private key.
    pub fn with_certificate(mut self, role: RoleName, identity: CertificateIdentity) -> Self {
        self.certificates.insert(role, identity);
        self
    }

    /// Verifies a peer's claim to `role` against this CA certificate.
    pub fn with_trust_anchor(mut self, role: RoleName, anchor: RoleTrustAnchor) -> Self {
        self.trust_anchors.insert(role, anchor);
        self
    }

    /// Roles this platform can prove, in a stable order.
    pub fn provable_roles(&self) -> impl Iterator<Item = (&RoleName, RoleKind)> {
        self.shared_keys
            .keys()
            .map(|r| (r, RoleKind::SharedKey))
            .chain(self.passwords.keys().map(|r| (r, RoleKind::Password)))
            .chain(self.certificates.keys().map(|r| (r, RoleKind::Certificate)))
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.passwords.len() > MAX_PASSWORD_ROLES {
            return Err(ConfigError::TooManyRoles(MAX_PASSWORD_ROLES));
        }
        let provable = self.shared_keys.len() + self.passwords.len() + self.certificates.len();
        if provable > MAX_AUTHENTICATORS {
            return Err(ConfigError::TooManyRoles(MAX_AUTHENTICATORS));
        }
        Ok(())
    }
}
