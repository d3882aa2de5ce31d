//! Jadeite platforms: the secure message layer over pluggable transports.
//!
//! Work in progress (issue "Platforms, the secure message layer, and the TCP
//! and WebSocket transports"): today this crate holds the [`transport`] seam
//! that the TCP and WebSocket crates implement, and the in-process `mem://`
//! transport used by tests.

#![forbid(unsafe_code)]

mod error;
mod frame;
mod peer;
mod platform;
mod throttle;
pub mod transport;

pub use error::{PlatformError, SendError};
pub use frame::FrameError;
pub use peer::SessionInfo;
pub use platform::{Delivery, Limits, Platform, PlatformBuilder};
pub use throttle::GuessLimits;

pub use jadeite_security as security;
