//! Helpers for multi-platform tests: platforms with chosen roles on chosen
//! transports, all on 127.0.0.1 or in process.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use jadeite::security::{Credentials, Password, RoleName, SharedKey};
use jadeite::transport::TransportAddress;
use jadeite::transport::mem::{MemNetwork, MemTransport};
use jadeite::{Delivery, Platform, PlatformBuilder};

pub fn role(name: &str) -> RoleName {
    RoleName::new(name).expect("valid role name")
}

pub fn shared_key(role_name: &str, byte: u8) -> Credentials {
    Credentials::new().with_shared_key(role(role_name), SharedKey::new(&[byte; 32]).expect("key"))
}

pub fn password(role_name: &str, text: &str) -> Credentials {
    Credentials::new().with_password(role(role_name), Password::new(text).expect("password"))
}

pub fn address(text: &str) -> TransportAddress {
    text.parse().expect("valid address")
}

/// A platform on the in-process network `network`, listening on `mem://name`.
pub async fn mem_platform(network: &MemNetwork, name: &str, credentials: Credentials) -> Platform {
    mem_builder(network, name, credentials)
        .start()
        .await
        .expect("platform starts")
}

pub fn mem_builder(network: &MemNetwork, name: &str, credentials: Credentials) -> PlatformBuilder {
    Platform::builder(name)
        .credentials(credentials)
        .transport(Arc::new(MemTransport::new(network.clone())))
        .listen(address(&format!("mem://{name}")))
}

/// The next delivery, or a panic after 10 s (tests never hang).
pub async fn next_delivery(platform: &Platform) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), platform.receive())
        .await
        .expect("a delivery within 10 s")
        .expect("platform running")
}
