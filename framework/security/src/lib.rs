#![forbid(unsafe_code)]
pub mod codec;
pub mod error;
pub mod primitives;
pub mod roles;
mod jpake;
pub mod x509;
pub mod channel;
pub mod replay;
pub mod suite;
