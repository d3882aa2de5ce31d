//! Cipher suites, negotiated by name.

use std::fmt;

use crate::error::ConfigError;
use crate::primitives::KemAlgorithm;

/// A complete set of primitives for the handshake and the channel. Both use
/// X448, Blake2b and ChaCha20-Poly1305; they differ in the post-quantum KEM.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CipherSuite {
    /// The paper's suite. NewHope was never standardized; kept because it is
    /// what Jadex peers speak.
    X448NewHope1024Blake2bChaCha20Poly1305,
    /// The same with the FIPS 203 KEM in place of NewHope.
    X448MlKem1024Blake2bChaCha20Poly1305,
}

impl CipherSuite {
    /// Every suite this build supports, in the default preference order.
    pub const ALL: [CipherSuite; 2] = [
        Self::X448NewHope1024Blake2bChaCha20Poly1305,
        Self::X448MlKem1024Blake2bChaCha20Poly1305,
    ];

    /// Longest suite name accepted on the wire.
    pub const MAX_NAME_LEN: usize = 64;

    pub const fn name(self) -> &'static str {
        match self {
            Self::X448NewHope1024Blake2bChaCha20Poly1305 => {
                "X448_NEWHOPE1024CCA_BLAKE2B_CHACHA20POLY1305"
            }
            Self::X448MlKem1024Blake2bChaCha20Poly1305 => "X448_MLKEM1024_BLAKE2B_CHACHA20POLY1305",
        }
    }

    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        Self::from_wire(name.as_bytes()).ok_or_else(|| ConfigError::UnknownSuite(name.to_owned()))
    }

    pub(crate) fn from_wire(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.name().as_bytes() == name)
    }

    pub const fn kem(self) -> KemAlgorithm {
        match self {
            Self::X448NewHope1024Blake2bChaCha20Poly1305 => KemAlgorithm::NewHope1024Cca,
            Self::X448MlKem1024Blake2bChaCha20Poly1305 => KemAlgorithm::MlKem1024,
        }
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
