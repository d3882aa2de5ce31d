//! The post-quantum half of the hybrid key exchange: NewHope1024-CCA (the
//! paper's choice) or ML-KEM-1024 (FIPS 203), picked by the cipher suite.

use ml_kem::array::Array;
use ml_kem::kem::Decapsulate;
use ml_kem::{DecapsulationKey1024, EncapsulationKey1024, KeyExport};
use pqcrypto_newhope::newhope1024cca;
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _};
use thiserror::Error;
use zeroize::Zeroizing;

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KemError {
    #[error("KEM public key has the wrong length or fails validation")]
    BadPublicKey,
    #[error("KEM ciphertext has the wrong length")]
    BadCiphertext,
    #[error("random number generator failed")]
    Randomness,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KemAlgorithm {
    NewHope1024Cca,
    MlKem1024,
}

/// The private half of an ephemeral KEM key pair, zeroized on drop.
pub enum KemDecapsulationKey {
    /// pqcrypto's key type does not zeroize, so only the bytes are kept.
    NewHope(Zeroizing<Vec<u8>>),
    /// ml-kem zeroizes its own keys (feature `zeroize`).
    MlKem(Box<DecapsulationKey1024>),
}

impl core::fmt::Debug for KemDecapsulationKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NewHope(_) => f.write_str("KemDecapsulationKey::NewHope(..)"),
            Self::MlKem(_) => f.write_str("KemDecapsulationKey::MlKem(..)"),
        }
    }
}

impl KemAlgorithm {
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::NewHope1024Cca => newhope1024cca::public_key_bytes(),
            Self::MlKem1024 => 1568,
        }
    }

    pub const fn ciphertext_len(self) -> usize {
        match self {
            Self::NewHope1024Cca => newhope1024cca::ciphertext_bytes(),
            Self::MlKem1024 => 1568,
        }
    }

    /// A fresh key pair: (private key, encoded public key).
    pub fn generate(self) -> Result<(KemDecapsulationKey, Vec<u8>), KemError> {
        match self {
            Self::NewHope1024Cca => {
                let (public, secret) = newhope1024cca::keypair();
                let secret = Zeroizing::new(secret.as_bytes().to_vec());
                Ok((
                    KemDecapsulationKey::NewHope(secret),
                    public.as_bytes().to_vec(),
                ))
            }
            Self::MlKem1024 => {
                let seed = Secret::<64>::random().map_err(|_| KemError::Randomness)?;
                Ok(Self::ml_kem_key_pair_from_seed(&seed))
            }
        }
    }

    /// ML-KEM-1024 key generation from the 64-byte seed `d || z` (FIPS 203):
    /// (private key, encoded public key).
    pub fn ml_kem_key_pair_from_seed(seed: &Secret<64>) -> (KemDecapsulationKey, Vec<u8>) {
        let key = DecapsulationKey1024::from_seed(Array::from(*seed.expose()));
        let public = key.encapsulation_key().to_bytes().to_vec();
        (KemDecapsulationKey::MlKem(Box::new(key)), public)
    }

    /// Encapsulates to `public_key`: (ciphertext, shared secret).
    pub fn encapsulate(self, public_key: &[u8]) -> Result<(Vec<u8>, Secret<32>), KemError> {
        if public_key.len() != self.public_key_len() {
            return Err(KemError::BadPublicKey);
        }
        match self {
            Self::NewHope1024Cca => {
                let public = newhope1024cca::PublicKey::from_bytes(public_key)
                    .map_err(|_| KemError::BadPublicKey)?;
                let (shared, ciphertext) = newhope1024cca::encapsulate(&public);
                Ok((ciphertext.as_bytes().to_vec(), secret32(shared.as_bytes())))
            }
            Self::MlKem1024 => {
                let encoded = Array::try_from(public_key).map_err(|_| KemError::BadPublicKey)?;
                // FIPS 203 §7.2 modulus check happens in `new`.
                let public =
                    EncapsulationKey1024::new(&encoded).map_err(|_| KemError::BadPublicKey)?;
                let randomness = Secret::<32>::random().map_err(|_| KemError::Randomness)?;
                let (ciphertext, shared) =
                    public.encapsulate_deterministic(&Array::from(*randomness.expose()));
                Ok((ciphertext.to_vec(), secret32(&shared)))
            }
        }
    }
}

impl KemDecapsulationKey {
    pub fn algorithm(&self) -> KemAlgorithm {
        match self {
            Self::NewHope(_) => KemAlgorithm::NewHope1024Cca,
            Self::MlKem(_) => KemAlgorithm::MlKem1024,
        }
    }

    /// Both KEMs use implicit rejection: a forged ciphertext of the right
    /// length yields an unrelated secret, caught later by key confirmation.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Secret<32>, KemError> {
        if ciphertext.len() != self.algorithm().ciphertext_len() {
            return Err(KemError::BadCiphertext);
        }
        match self {
            Self::NewHope(secret) => {
                let secret = newhope1024cca::SecretKey::from_bytes(secret)
                    .map_err(|_| KemError::BadCiphertext)?;
                let ciphertext = newhope1024cca::Ciphertext::from_bytes(ciphertext)
                    .map_err(|_| KemError::BadCiphertext)?;
                Ok(secret32(
                    newhope1024cca::decapsulate(&ciphertext, &secret).as_bytes(),
                ))
            }
            Self::MlKem(key) => {
                let ciphertext =
                    Array::try_from(ciphertext).map_err(|_| KemError::BadCiphertext)?;
                Ok(secret32(&key.decapsulate(&ciphertext)))
            }
        }
    }
}

fn secret32(bytes: &[u8]) -> Secret<32> {
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[..32]);
    Secret::new(out)
}
