//! Blake2b as hash, MAC and KDF.
//!
//! Every input is a list of parts, each prefixed with its 32-bit length, so two
//! different lists can never hash alike. Labels are the first part.

use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2b512, Blake2bMac512};

use super::Secret;

pub const HASH_LEN: usize = 64;

/// Unkeyed Blake2b-512 over length-prefixed parts.
pub fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Blake2b512::new();
    for part in parts {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Keyed Blake2b-512 (the native BLAKE2 MAC, not HMAC) over length-prefixed
/// parts, truncated to `N <= 64` bytes. Keys are 1..=64 bytes.
pub fn mac<const N: usize>(key: &[u8], parts: &[&[u8]]) -> Secret<N> {
    const { assert!(N <= HASH_LEN) };
    let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(key)
        .expect("protocol MAC keys are 1..=64 bytes");
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    let mut full = mac.finalize().into_bytes();
    let mut out = [0u8; N];
    out.copy_from_slice(&full[..N]);
    zeroize::Zeroize::zeroize(full.as_mut_slice());
    Secret::new(out)
}

/// The running hash of every handshake byte, in order.
#[derive(Clone)]
pub struct Transcript(Blake2b512);

impl Transcript {
    pub fn new(label: &[u8]) -> Self {
        let mut hasher = Blake2b512::new();
        hasher.update((label.len() as u32).to_be_bytes());
        hasher.update(label);
        Self(hasher)
    }

    /// Messages are hashed with their length so message boundaries are fixed.
    pub fn absorb(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u32).to_be_bytes());
        self.0.update(bytes);
    }

    /// The hash so far; the transcript keeps running.
    pub fn current(&self) -> [u8; HASH_LEN] {
        self.0.clone().finalize().into()
    }
}

impl core::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Transcript(..)")
    }
}
