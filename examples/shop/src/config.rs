//! One shop platform's config file: which of the shop's services it runs,
//! plus a `[platform]` table that is an ordinary Jadeite platform config
//! (`Platform::from_config`), so roles, addresses and limits are written the
//! way every Jadeite platform writes them.
//!
//! ```toml
//! services = ["user_api"]
//! http = "127.0.0.1:8080"          # user_api: where the web page is served
//! orders = "orders.json"           # user_api: the order store
//!
//! [platform]
//! name = "api"
//! listen = ["tcp://127.0.0.1:7101"]
//! [platform.roles.shop]
//! shared_key_file = "secrets/shop.key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jadeite::PlatformBuilder;
use jadeite::{ConfigFileError, Platform};
use serde::Deserialize;

/// Largest config file read.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;

/// The services a shop platform can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    UserApi,
    Payment,
    Warehouse,
    Shipping,
    Suggestion,
    /// The scripted attack of a compromised platform (runs on suggestions).
    Intrusion,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    services: Vec<ServiceKind>,
    http: Option<String>,
    orders: Option<PathBuf>,
    platform: toml::Table,
}

#[derive(Debug)]
pub struct ShopConfig {
    pub services: Vec<ServiceKind>,
    pub http: Option<SocketAddr>,
    /// Resolved against the config file's directory.
    pub orders: Option<PathBuf>,
    pub platform: PlatformBuilder,
}

/// What was wrong with a config file, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl ShopConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if meta.len() > MAX_CONFIG_LEN {
            return Err(fail(format!("longer than {MAX_CONFIG_LEN} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: File = toml::from_str(&text).map_err(|e| fail(e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let wants_http = file.services.contains(&ServiceKind::UserApi);
        let http = match (&file.http, wants_http) {
            (Some(text), true) => Some(text.parse().map_err(|_| {
                fail(format!(
                    "http: {text:?} is not an address like 127.0.0.1:8080"
                ))
            })?),
            (None, true) => {
                return Err(fail("http: missing: user_api serves HTTP there".to_owned()));
            }
            (Some(_), false) => return Err(fail("http: only user_api serves HTTP".to_owned())),
            (None, false) => None,
        };
        let orders = match (file.orders, wants_http) {
            (Some(orders), true) => Some(base.join(orders)),
            (None, true) => {
                return Err(fail(
                    "orders: missing: user_api stores orders there".to_owned(),
                ));
            }
            (Some(_), false) => return Err(fail("orders: only user_api stores orders".to_owned())),
            (None, false) => None,
        };
        if file.services.is_empty() {
            return Err(fail("services: name at least one".to_owned()));
        }
        let platform_text =
            toml::to_string(&file.platform).map_err(|e| fail(format!("platform: {e}")))?;
        let platform = Platform::from_config_str(&platform_text, base).map_err(
            |ConfigFileError { key, reason, .. }| {
                fail(match key {
                    Some(key) => format!("platform.{key}: {reason}"),
                    None => format!("platform: {reason}"),
                })
            },
        )?;
        Ok(Self {
            services: file.services,
            http,
            orders,
            platform,
        })
    }
}
