//! Jadeite platforms: the secure message layer over pluggable transports.
//!
//! A [`Platform`] holds a name, a random [`PlatformId`], the roles it can
//! prove and verify, and its transports. Platforms exchange messages that are
//! always encrypted and tagged with the sender's verified roles
//! ([`Delivery`]); one secure session per pair of platforms runs over every
//! link between them. The [`transport`] module is the seam the TCP and
//! WebSocket crates implement; `mem://` is the in-process transport for tests.

#![forbid(unsafe_code)]

mod config;
mod error;
mod frame;
mod peer;
mod platform;
mod throttle;
pub mod transport;

pub use config::{ConfigFileError, MAX_CONFIG_LEN};
pub use error::{PlatformError, SendError};
pub use frame::FrameError;
pub use peer::SessionInfo;
pub use platform::{Delivery, Limits, Platform, PlatformBuilder};
pub use throttle::GuessLimits;

pub use jadeite_security as security;
pub use jadeite_security::PlatformId;
