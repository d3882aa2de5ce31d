//! The one place where service messages, arguments and results become bytes
//! and back. Everything goes through bincode 2 (serde) with one size limit,
//! so a length field from the network can never make a decoder allocate more
//! than a message can carry.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Largest encoded value decoded: the largest payload a message may carry
/// (`Limits::max_payload` defaults to just under 1 MiB).
pub const MAX_ENCODED_LEN: usize = 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_ENCODED_LEN>,
>;

const CONFIG: Config = bincode::config::standard().with_limit::<MAX_ENCODED_LEN>();

/// A value that could not be encoded or decoded.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{0} unexpected bytes after the value")]
    TrailingBytes(usize),
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|error| CodecError::Encode(error.to_string()))
}

/// The encoding of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes one value from the front of `bytes`; returns it and the rest.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, CONFIG)
        .map_err(|error| CodecError::Decode(error.to_string()))?;
    Ok((value, &bytes[used..]))
}

/// Decodes exactly one value: trailing bytes are an error, so two encodings
/// never decode to the same value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match decode_prefix(bytes)? {
        (value, []) => Ok(value),
        (_, rest) => Err(CodecError::TrailingBytes(rest.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exactness() {
        let value = (7u64, "teapot".to_owned(), vec![1u8, 2, 3]);
        let bytes = encode(&value).expect("encodes");
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes), Ok(value));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<(u64, String, Vec<u8>)>(&longer),
            Err(CodecError::TrailingBytes(1))
        );
        for cut in 0..bytes.len() {
            assert!(decode::<(u64, String, Vec<u8>)>(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn a_huge_length_prefix_does_not_allocate() {
        // A Vec<u8> claiming u64::MAX elements: varint 0xFF then 8 bytes.
        let mut bytes = vec![0xFF];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::Decode(_))
        ));
        let mut claim = vec![0xFD];
        claim.extend_from_slice(&(MAX_ENCODED_LEN as u32 * 2).to_le_bytes());
        assert!(decode::<String>(&claim).is_err());
    }
}
