//! Jadeite platforms: the secure message layer over pluggable transports.
//!
//! A [`Platform`] holds a name, a random [`PlatformId`], the roles it can
//! prove and verify, and its transports. Platforms exchange messages that are
//! always encrypted and tagged with the sender's verified roles
//! ([`Delivery`]); one secure session per pair of platforms runs over every
//! link between them. The [`transport`] module is the seam the TCP and
//! WebSocket crates implement; `mem://` is the in-process transport for tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use jadeite::Platform;
//! use jadeite::security::{Credentials, RoleName, SharedKey};
//! use jadeite::transport::mem::{MemNetwork, MemTransport};
//!
//! let network = MemNetwork::new(); // with jadeite-tcp: TcpTransport::new()
//! let key = [7u8; 32]; // in real life: 32 random bytes, from a file
//! let platform = |name: &str| -> Result<_, Box<dyn std::error::Error>> {
//!     let credentials = Credentials::new()
//!         .with_shared_key(RoleName::new("inventory")?, SharedKey::new(&key)?);
//!     Ok(Platform::builder(name)
//!         .credentials(credentials)
//!         .transport(Arc::new(MemTransport::new(network.clone())))
//!         .listen(format!("mem://{name}").parse()?))
//! };
//! let warehouse = platform("warehouse")?.start().await?;
//! let shop = platform("shop")?.start().await?;
//!
//! let peer = shop.connect(&"mem://warehouse".parse()?).await?;
//! shop.send(peer, b"reserve 3 teapots".to_vec()).await?;
//!
//! let delivery = warehouse.receive().await.expect("running");
//! assert_eq!(delivery.from, shop.id());
//! assert_eq!(delivery.payload, b"reserve 3 teapots");
//! assert!(delivery.roles.contains(&RoleName::new("inventory")?));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod codec;
mod config;
mod error;
mod frame;
mod peer;
mod platform;
pub mod service;
mod throttle;
pub mod transport;

pub use config::{ConfigFileError, MAX_CONFIG_LEN};
pub use error::{PlatformError, SendError};
pub use frame::FrameError;
pub use peer::SessionInfo;
pub use platform::{Delivery, Limits, Platform, PlatformBuilder};
pub use service::{
    Access, Call, CallContext, CallError, Caller, Component, ComponentContext, ComponentHandle,
    ComponentId, RemoteFailure, Required, RoleMap, Scope, ServiceRef,
};
pub use throttle::GuessLimits;

/// `#[service]`: see [`service`] for what it generates.
pub use jadeite_macros::service;

/// The Rust examples of `docs/guide.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct GuideExamples;

pub use jadeite_security as security;
pub use jadeite_security::PlatformId;
