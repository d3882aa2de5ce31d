#![forbid(unsafe_code)]
pub mod codec;
pub mod error;
pub mod primitives;
pub mod roles;
mod jpake;
pub mod x509;
