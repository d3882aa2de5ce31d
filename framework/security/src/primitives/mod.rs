//! The cryptographic primitives, each behind one function.
//!
//! The handshake and the channel call exactly these functions, and so do the
//! Wycheproof conformance tests and the benchmarks: what is tested and measured
//! is what runs. Public so those can reach them; not a general-purpose API.

mod aead;
mod kdf;
mod kem;
mod secret;
mod x448;

pub use aead::{AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, BadTag};
pub use kdf::{HASH_LEN, Transcript, hash, mac};
pub use kem::{KemAlgorithm, KemDecapsulationKey, KemError};
pub use secret::{Secret, random_array, random_bytes};
pub use x448::{X448_LEN, X448Error, X448Secret, x448};
