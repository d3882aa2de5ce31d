//! Helpers for multi-platform tests: platforms with chosen roles on chosen
//! transports, all on 127.0.0.1 or in process.

#![forbid(unsafe_code)]

pub mod faults;

/// What the bench binaries share: how many rounds to run and the machine's load.
pub mod bench {
    /// `JADEITE_BENCH_ROUNDS`, or `default` if unset or not a number.
    pub fn rounds(default: usize) -> usize {
        std::env::var("JADEITE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(default)
    }

    /// The 1, 5 and 15 minute load averages, for the figures' record.
    pub fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "n/a".to_owned())
    }
}
pub mod raw;

use std::sync::Arc;
use std::time::Duration;

use jadeite::security::{Credentials, Password, RoleName, SharedKey};
use jadeite::transport::mem::{MemNetwork, MemTransport};
use jadeite::transport::{Transport, TransportAddress};
use jadeite::{Delivery, Platform, PlatformBuilder};
use jadeite_tcp::TcpTransport;
use jadeite_websocket::WebSocketTransport;

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

/// The real network transports: TCP and WebSocket.
pub fn network_transports() -> Vec<Arc<dyn Transport>> {
    vec![
        Arc::new(TcpTransport::new()),
        Arc::new(WebSocketTransport::new()),
    ]
}

/// A platform with `transports`, listening on each of `listen` (port 0 gets a real port).
pub async fn platform_on(
    name: &str,
    credentials: Credentials,
    transports: Vec<Arc<dyn Transport>>,
    listen: &[&str],
) -> Platform {
    let mut builder = Platform::builder(name).credentials(credentials);
    for transport in transports {
        builder = builder.transport(transport);
    }
    for address_text in listen {
        builder = builder.listen(address(address_text));
    }
    builder.start().await.expect("platform starts")
}

/// The address `platform` listens on for `scheme` ("tcp" or "ws").
pub fn listening(platform: &Platform, scheme: &str) -> TransportAddress {
    platform
        .listen_addresses()
        .into_iter()
        .find(|a| a.scheme().as_str() == scheme)
        .expect("listening on that scheme")
}

/// Every test's platforms listen on loopback only.
pub const TCP_ANY: &str = "tcp://127.0.0.1:0";
pub const WS_ANY: &str = "ws://127.0.0.1:0/jadeite";

/// An established pair of secure sessions, made in process by the real
/// handshake with one shared-key role: (initiator, responder). The benches
/// time the channel's own cost with it.
pub fn session_pair() -> (
    jadeite::security::SecureSession,
    jadeite::security::SecureSession,
) {
    let config = || {
        Arc::new(jadeite::security::HandshakeConfig::new(
            jadeite::security::PlatformId::random().expect("rng"),
            shared_key("bench", 7),
        ))
    };
    let (initiator_config, responder_config) = (config(), config());
    let responder_id = responder_config.platform;
    let (mut initiator, mut message) =
        jadeite::security::Handshake::initiate(initiator_config, Some(responder_id))
            .expect("initiate");
    let mut responder = jadeite::security::Handshake::respond(responder_config);
    let (mut initiator_session, mut responder_session) = (None, None);
    let mut to_responder = true;
    loop {
        let (machine, slot) = if to_responder {
            (&mut responder, &mut responder_session)
        } else {
            (&mut initiator, &mut initiator_session)
        };
        let progress = machine
            .receive(&message, jadeite::security::Now::system())
            .expect("handshake");
        if let Some(established) = progress.established {
            *slot = Some(established.session);
        }
        match progress.reply {
            Some(reply) => {
                message = reply;
                to_responder = !to_responder;
            }
            None => break,
        }
    }
    (
        initiator_session.expect("initiator established"),
        responder_session.expect("responder established"),
    )
}
