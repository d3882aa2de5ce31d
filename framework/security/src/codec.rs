//! The one place where handshake and channel bytes are parsed and written.
//!
//! Every length on the wire is bounded by the caller before anything is
//! allocated, so a hostile peer can make us reject a message but never make us
//! reserve memory it did not send.

use crate::error::DecodeError;

/// Cursor over untrusted bytes. Every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Bytes consumed so far; used to hash a message prefix into the transcript.
    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated { field })?;
        let out = &self.bytes[self.position..end];
        self.position = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `u8` count, checked against `max` before the caller allocates for it.
    pub(crate) fn count(&mut self, max: usize, field: &'static str) -> Result<usize, DecodeError> {
        let count = usize::from(self.u8(field)?);
        if count > max {
            return Err(DecodeError::TooMany { field, max });
        }
        Ok(count)
    }

    /// Bytes behind a `u8` length prefix, `min..=max` long.
    pub(crate) fn vec8(
        &mut self,
        min: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8(field)?);
        Self::check_len(len, min, max, field)?;
        self.take(len, field)
    }

    /// Bytes behind a `u16` big-endian length prefix, `min..=max` long.
    pub(crate) fn vec16(
        &mut self,
        min: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(field)?);
        Self::check_len(len, min, max, field)?;
        self.take(len, field)
    }

    fn check_len(
        len: usize,
        min: usize,
        max: usize,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        if len < min || len > max {
            return Err(DecodeError::BadLength {
                field,
                len,
                min,
                max,
            });
        }
        Ok(())
    }

    /// Rejects trailing bytes: every message has exactly one encoding.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.position == self.bytes.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                extra: self.bytes.len() - self.position,
            })
        }
    }
}

/// Append-only encoder matching [`Reader`].
#[derive(Debug, Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub(crate) fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(value);
        self
    }

    /// Callers pass values whose length the protocol already bounds below 256.
    pub(crate) fn vec8(&mut self, value: &[u8]) -> &mut Self {
        debug_assert!(value.len() <= usize::from(u8::MAX));
        self.u8(value.len() as u8).bytes(value)
    }

    /// Callers pass values whose length the protocol already bounds below 65536.
    pub(crate) fn vec16(&mut self, value: &[u8]) -> &mut Self {
        debug_assert!(value.len() <= usize::from(u16::MAX));
        self.u16(value.len() as u16).bytes(value)
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.bytes
    }
}
