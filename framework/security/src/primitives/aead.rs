//! ChaCha20-Poly1305 (RFC 8439), in place, tag appended.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use thiserror::Error;

pub const AEAD_KEY_LEN: usize = 32;
pub const AEAD_NONCE_LEN: usize = 12;
pub const AEAD_TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("authentication tag did not verify")]
pub struct BadTag;

/// A keyed cipher instance; the key schedule runs once per epoch, not per message.
/// The inner cipher zeroizes its key on drop.
pub struct AeadKey(ChaCha20Poly1305);

impl AeadKey {
    pub fn new(key: &[u8; AEAD_KEY_LEN]) -> Self {
        Self(ChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `buffer[from..]` in place and appends the tag. Bytes before
    /// `from` (the header already written) are left alone.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut Vec<u8>,
        from: usize,
    ) {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, (&mut buffer[from..]).into())
            .expect("ChaCha20-Poly1305 accepts messages below 256 GiB");
        buffer.extend_from_slice(&tag);
    }

    /// Verifies and decrypts `ciphertext_and_tag` in place; returns the plaintext
    /// length. On failure the buffer content is unspecified and must be dropped.
    pub fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<usize, BadTag> {
        let len = ciphertext_and_tag
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(BadTag)?;
        let (ciphertext, tag) = ciphertext_and_tag.split_at_mut(len);
        let tag = Tag::try_from(&*tag).map_err(|_| BadTag)?;
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, ciphertext.into(), &tag)
            .map_err(|_| BadTag)?;
        Ok(len)
    }
}

/// `ChaCha20Poly1305` wipes its key on drop (crate feature `zeroize`).
impl zeroize::ZeroizeOnDrop for AeadKey {}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AeadKey(..)")
    }
}
