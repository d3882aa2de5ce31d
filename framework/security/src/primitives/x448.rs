//! X448 (RFC 7748) on ed448-goldilocks' Montgomery ladder.

use ed448_goldilocks::Scalar;
use ed448_goldilocks::curve::MontgomeryPoint;
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::Secret;

pub const X448_LEN: usize = 56;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum X448Error {
    /// RFC 7748 §6.2: a low-order peer key yields the all-zero output, which
    /// would make the exchange contribute nothing. Always rejected.
    #[error("X448 output is all zero (low-order public key)")]
    ZeroSharedSecret,
    #[error("random number generator failed")]
    Randomness,
}

/// The X448 function: clamps `scalar`, decodes `u` as RFC 7748 says
/// (non-canonical values reduce mod p), and rejects an all-zero result.
pub fn x448(scalar: &[u8; X448_LEN], u: &[u8; X448_LEN]) -> Result<Secret<X448_LEN>, X448Error> {
    let mut clamped = Secret::new(*scalar);
    let bytes = clamped.expose_mut();
    bytes[0] &= 252;
    bytes[55] |= 128;
    // `from_bytes` keeps all 448 bits (no reduction), as the ladder needs.
    let k = Scalar::from_bytes(*clamped.expose());
    let out = Secret::new((&MontgomeryPoint(*u) * &k).0);
    if bool::from(out.expose().ct_eq(&[0u8; X448_LEN])) {
        return Err(X448Error::ZeroSharedSecret);
    }
    Ok(out)
}

/// An ephemeral X448 private key.
#[derive(Debug)]
pub struct X448Secret(Secret<X448_LEN>);

/// The inner `Secret` wipes itself on drop.
impl zeroize::ZeroizeOnDrop for X448Secret {}

impl X448Secret {
    pub fn generate() -> Result<Self, X448Error> {
        Secret::random()
            .map(Self)
            .map_err(|_| X448Error::Randomness)
    }

    pub fn public_key(&self) -> [u8; X448_LEN] {
        // The base point never yields zero; the error arm is unreachable but typed.
        x448(self.0.expose(), &MontgomeryPoint::generator().0)
            .map(|p| *p.expose())
            .unwrap_or([0u8; X448_LEN])
    }

    pub fn diffie_hellman(&self, peer: &[u8; X448_LEN]) -> Result<Secret<X448_LEN>, X448Error> {
        x448(self.0.expose(), peer)
    }
}
