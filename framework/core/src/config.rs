//! Platforms described in a TOML file (`Platform::from_config`).
//!
//! ```toml
//! name = "payments"
//! listen = ["tcp://0.0.0.0:7001", "ws://0.0.0.0:7002/jadeite"]
//! connect = ["tcp://logistics.internal:7003"]
//! unauthenticated = "refuse"            # or "accept"
//!
//! [roles.inventory]                     # shared key: hex, 32..=64 bytes
//! shared_key_file = "secrets/inventory.key"
//!
//! [roles.logistics]                     # password, proved with J-PAKE
//! password_env = "LOGISTICS_PASSWORD"
//!
//! [roles.checkout]                      # X.509: prove with a chain + key,
//! certificate_chain = "pki/checkout.pem"  # verify with the role's CA
//! private_key = "pki/checkout.key"
//! trust_anchor = "pki/checkout-ca.pem"
//!
//! [role_map]                            # callers verified as inventory
//! inventory = ["stock-reader"]          # also hold stock-reader here
//! ```
//!
//! Secrets are never written in the file itself: they come from files of
//! their own (which can have tighter permissions than the config) or from
//! environment variables, and no error message ever repeats one. Relative
//! paths are relative to the config file's directory. Every error names the
//! key that is wrong and why.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jadeite_security::{
    CertificateIdentity, CipherSuite, Credentials, Password, RoleName, RoleTrustAnchor, SharedKey,
    UnauthenticatedPolicy,
};
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::platform::{Limits, Platform, PlatformBuilder};
use crate::service::RoleMap;
use crate::transport::TransportAddress;

/// Largest config file read.
pub const MAX_CONFIG_LEN: u64 = 1024 * 1024;
/// Largest key or password file read.
const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;
/// Largest certificate or private key file read.
const MAX_PKI_FILE_LEN: u64 = 1024 * 1024;
/// Most listen or connect addresses.
const MAX_ADDRESSES: usize = 64;

/// A config file that could not be used: which file, which key, and why.
#[derive(Debug, Error)]
#[error("{}: {}{reason}", file.display(), key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigFileError {
    pub file: PathBuf,
    /// The dotted key at fault (`roles.checkout.private_key`), if one is.
    pub key: Option<String>,
    pub reason: String,
}

impl Platform {
    /// A builder configured from the TOML file at `path`. Transports are not
    /// part of the file: add the ones its addresses need (`tcp`, `ws`) with
    /// [`PlatformBuilder::transport`] before `start`.
    pub fn from_config(path: impl AsRef<Path>) -> Result<PlatformBuilder, ConfigFileError> {
        let path = path.as_ref();
        let whole_file = |reason: String| ConfigFileError {
            file: path.to_owned(),
            key: None,
            reason,
        };
        let bytes = read_bounded(path, MAX_CONFIG_LEN).map_err(whole_file)?;
        let text = String::from_utf8(bytes).map_err(|_| whole_file("not UTF-8".to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_config_str(&text, base).map_err(|mut error| {
            error.file = path.to_owned();
            error
        })
    }

    /// As [`Platform::from_config`], from TOML text; relative paths in it
    /// are taken relative to `base`.
    pub fn from_config_str(toml: &str, base: &Path) -> Result<PlatformBuilder, ConfigFileError> {
        let file = PathBuf::from("<config>");
        if toml.len() as u64 > MAX_CONFIG_LEN {
            return Err(ConfigFileError {
                file,
                key: None,
                reason: format!("longer than {MAX_CONFIG_LEN} bytes"),
            });
        }
        let config = parse(toml).map_err(|(key, reason)| ConfigFileError {
            file: file.clone(),
            key,
            reason,
        })?;
        config
            .into_builder(base)
            .map_err(|KeyError { key, reason }| ConfigFileError {
                file,
                key: Some(key),
                reason,
            })
    }
}

// ---------------------------------------------------------------------------
// The file's shape
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: String,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
    #[serde(default)]
    unauthenticated: Unauthenticated,
    suites: Option<Vec<String>>,
    #[serde(default)]
    roles: BTreeMap<String, RoleEntry>,
    #[serde(default)]
    role_map: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    limits: LimitsEntry,
    #[serde(default)]
    channel: ChannelEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Unauthenticated {
    #[default]
    Refuse,
    Accept,
}

/// One role: how this platform proves it and/or verifies it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    shared_key_file: Option<PathBuf>,
    shared_key_env: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    certificate_chain: Option<PathBuf>,
    private_key: Option<PathBuf>,
    trust_anchor: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsEntry {
    queue_per_peer: Option<usize>,
    send_timeout_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    hello_timeout_ms: Option<u64>,
    handshakes_per_host: Option<usize>,
    handshakes_total: Option<usize>,
    redial_first_ms: Option<u64>,
    redial_max_ms: Option<u64>,
    max_payload: Option<usize>,
    call_timeout_ms: Option<u64>,
    max_peers: Option<usize>,
    idle_session_secs: Option<u64>,
    application_messages: Option<bool>,
    #[serde(default)]
    guessing: GuessingEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuessingEntry {
    first_delay_ms: Option<u64>,
    block_after: Option<u32>,
    block_for_secs: Option<u64>,
    max_hosts: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelEntry {
    replay_window_bits: Option<usize>,
    rekey_after_messages: Option<u64>,
    reject_after_messages: Option<u64>,
    rekey_after_secs: Option<u64>,
    previous_epoch_grace_secs: Option<u64>,
    rekey_retry_ms: Option<u64>,
}

/// Parses the TOML into the file's shape; errors carry the key path if known.
fn parse(toml: &str) -> Result<FileConfig, (Option<String>, String)> {
    let deserializer = toml::Deserializer::parse(toml)
        .map_err(|error| (None, located(toml, error.span(), error.message())))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let reason = located(toml, inner.span(), &without_values(inner.message()));
        (Some(key).filter(|k| k != "." && !k.is_empty()), reason)
    })
}

/// `message`, prefixed with its line number when the parser knows it.
fn located(toml: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    match span {
        Some(span) => {
            let line = toml.as_bytes()[..span.start.min(toml.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

/// serde quotes the offending value in type errors (`invalid type: string
/// "...", expected ...`); a secret typed into the wrong key must not end up in
/// a log, so strings are elided.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: string ", "invalid value: string "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let tail = rest.rsplit_once("\", ").map_or("", |(_, tail)| tail);
            return format!("{prefix}(value not shown), {tail}");
        }
    }
    message.to_owned()
}

// ---------------------------------------------------------------------------
// From the file's shape to a builder
// ---------------------------------------------------------------------------

struct KeyError {
    key: String,
    reason: String,
}

fn at(key: impl Into<String>, reason: impl fmt::Display) -> KeyError {
    KeyError {
        key: key.into(),
        reason: reason.to_string(),
    }
}

impl FileConfig {
    fn into_builder(self, base: &Path) -> Result<PlatformBuilder, KeyError> {
        if self.name.is_empty() || self.name.len() > 128 || self.name.chars().any(char::is_control)
        {
            return Err(at("name", "must be 1 to 128 printable characters"));
        }
        let mut builder = Platform::builder(self.name);
        for address in addresses("listen", &self.listen)? {
            builder = builder.listen(address);
        }
        for address in addresses("connect", &self.connect)? {
            builder = builder.connect(address);
        }
        builder = builder.unauthenticated(match self.unauthenticated {
            Unauthenticated::Refuse => UnauthenticatedPolicy::Refuse,
            Unauthenticated::Accept => UnauthenticatedPolicy::Accept,
        });
        if let Some(names) = self.suites {
            let suites = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    CipherSuite::from_name(name).map_err(|error| at(format!("suites[{i}]"), error))
                })
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.suites(suites);
        }
        let mut credentials = Credentials::new();
        for (name, entry) in self.roles {
            credentials = entry.add_to(credentials, &name, base)?;
        }
        builder = builder.credentials(credentials);
        builder = builder.role_map(role_map(self.role_map)?);
        builder = builder.limits(self.limits.into_limits()?);
        builder = builder.channel(self.channel.into_channel()?);
        Ok(builder)
    }
}

/// Most entries of `[role_map]`, and roles one entry maps to.
const MAX_ROLE_MAP: usize = 256;

fn role_map(entries: BTreeMap<String, Vec<String>>) -> Result<RoleMap, KeyError> {
    if entries.len() > MAX_ROLE_MAP {
        return Err(at("role_map", format!("at most {MAX_ROLE_MAP} entries")));
    }
    let mut map = RoleMap::new();
    for (from, targets) in entries {
        let key = format!("role_map.{from}");
        let source = RoleName::new(from).map_err(|error| at(&key, error))?;
        if targets.is_empty() || targets.len() > MAX_ROLE_MAP {
            return Err(at(&key, format!("name 1 to {MAX_ROLE_MAP} roles")));
        }
        for (i, target) in targets.into_iter().enumerate() {
            let target = RoleName::new(target).map_err(|error| at(format!("{key}[{i}]"), error))?;
            map = map.map(source.clone(), target);
        }
    }
    Ok(map)
}

fn addresses(key: &str, texts: &[String]) -> Result<Vec<TransportAddress>, KeyError> {
    if texts.len() > MAX_ADDRESSES {
        return Err(at(key, format!("at most {MAX_ADDRESSES} addresses")));
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse()
                .map_err(|error| at(format!("{key}[{i}]"), error))
        })
        .collect()
}

impl RoleEntry {
    fn add_to(
        self,
        credentials: Credentials,
        name: &str,
        base: &Path,
    ) -> Result<Credentials, KeyError> {
        let key = |field: &str| format!("roles.{name}.{field}");
        let role = RoleName::new(name).map_err(|error| at(format!("roles.{name}"), error))?;
        let proofs = [
            self.shared_key_file.is_some() || self.shared_key_env.is_some(),
            self.password_file.is_some() || self.password_env.is_some(),
            self.certificate_chain.is_some() || self.private_key.is_some(),
        ];
        if proofs.iter().filter(|&&given| given).count() > 1 {
            return Err(at(
                format!("roles.{name}"),
                "give one of a shared key, a password or a certificate, not several",
            ));
        }
        if !proofs.contains(&true) && self.trust_anchor.is_none() {
            return Err(at(
                format!("roles.{name}"),
                "nothing to prove or verify it with: give shared_key_file, shared_key_env, \
                 password_file, password_env, certificate_chain + private_key, or trust_anchor",
            ));
        }
        let mut credentials = credentials;
        if let Some(text) = one_source(
            (&key("shared_key_file"), self.shared_key_file.as_deref()),
            (&key("shared_key_env"), self.shared_key_env.as_deref()),
            base,
        )? {
            let (field, text) = text;
            let bytes = decode_hex(text.trim()).ok_or_else(|| {
                at(
                    &field,
                    "the key must be 64 to 128 hex digits (32 to 64 bytes)",
                )
            })?;
            let shared = SharedKey::new(&bytes).map_err(|error| at(&field, error))?;
            credentials = credentials.with_shared_key(role.clone(), shared);
        }
        if let Some((field, text)) = one_source(
            (&key("password_file"), self.password_file.as_deref()),
            (&key("password_env"), self.password_env.as_deref()),
            base,
        )? {
            let line = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            let password = Password::new(line.to_owned()).map_err(|error| at(&field, error))?;
            credentials = credentials.with_password(role.clone(), password);
        }
        match (&self.certificate_chain, &self.private_key) {
            (Some(chain), Some(private_key)) => {
                let chain_pem =
                    read_text(&key("certificate_chain"), base, chain, MAX_PKI_FILE_LEN)?;
                let key_pem = Zeroizing::new(read_text(
                    &key("private_key"),
                    base,
                    private_key,
                    MAX_PKI_FILE_LEN,
                )?);
                let identity = CertificateIdentity::from_pem(&chain_pem, &key_pem)
                    .map_err(|error| at(key("certificate_chain"), error))?;
                credentials = credentials.with_certificate(role.clone(), identity);
            }
            (Some(_), None) => {
                return Err(at(
                    key("private_key"),
                    "missing: certificate_chain needs it",
                ));
            }
            (None, Some(_)) => {
                return Err(at(
                    key("certificate_chain"),
                    "missing: private_key needs it",
                ));
            }
            (None, None) => {}
        }
        if let Some(anchor) = &self.trust_anchor {
            let pem = read_text(&key("trust_anchor"), base, anchor, MAX_PKI_FILE_LEN)?;
            let anchor =
                RoleTrustAnchor::from_pem(&pem).map_err(|error| at(key("trust_anchor"), error))?;
            credentials = credentials.with_trust_anchor(role, anchor);
        }
        Ok(credentials)
    }
}

/// The secret from a `*_file` key or a `*_env` key (at most one of them),
/// with the key it came from.
fn one_source(
    file: (&str, Option<&Path>),
    env: (&str, Option<&str>),
    base: &Path,
) -> Result<Option<(String, Zeroizing<String>)>, KeyError> {
    match (file.1, env.1) {
        (Some(_), Some(_)) => Err(at(env.0, format!("give {} or this, not both", file.0))),
        (Some(path), None) => {
            let text = Zeroizing::new(read_text(file.0, base, path, MAX_SECRET_FILE_LEN)?);
            Ok(Some((file.0.to_owned(), text)))
        }
        (None, Some(variable)) => match std::env::var(variable) {
            Ok(value) => Ok(Some((env.0.to_owned(), Zeroizing::new(value)))),
            Err(std::env::VarError::NotPresent) => Err(at(
                env.0,
                format!("environment variable {variable} is not set"),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(at(
                env.0,
                format!("environment variable {variable} is not valid UTF-8"),
            )),
        },
        (None, None) => Ok(None),
    }
}

fn read_text(key: &str, base: &Path, path: &Path, limit: u64) -> Result<String, KeyError> {
    let full = base.join(path);
    let bytes = read_bounded(&full, limit).map_err(|reason| at(key, reason))?;
    String::from_utf8(bytes).map_err(|_| at(key, format!("{} is not UTF-8", full.display())))
}

/// Reads at most `limit` bytes; a longer file is an error, not a truncation.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{} is larger than {limit} bytes", path.display()));
    }
    Ok(bytes)
}

/// An even number of hex digits as bytes.
fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect::<Option<Vec<u8>>>()
        .map(Zeroizing::new)
}

fn positive(key: &str, value: Option<u64>) -> Result<Option<u64>, KeyError> {
    match value {
        Some(0) => Err(at(key, "must be greater than 0")),
        other => Ok(other),
    }
}

fn positive_count(key: &str, value: Option<usize>) -> Result<Option<usize>, KeyError> {
    match value {
        Some(0) => Err(at(key, "must be greater than 0")),
        other => Ok(other),
    }
}

impl LimitsEntry {
    fn into_limits(self) -> Result<Limits, KeyError> {
        let mut limits = Limits::default();
        let ms =
            |key: &str, value| Ok::<_, KeyError>(positive(key, value)?.map(Duration::from_millis));
        if let Some(v) = positive_count("limits.queue_per_peer", self.queue_per_peer)? {
            limits.queue_per_peer = v;
        }
        if let Some(v) = ms("limits.send_timeout_ms", self.send_timeout_ms)? {
            limits.send_timeout = v;
        }
        if let Some(v) = ms("limits.handshake_timeout_ms", self.handshake_timeout_ms)? {
            limits.handshake_timeout = v;
        }
        if let Some(v) = ms("limits.hello_timeout_ms", self.hello_timeout_ms)? {
            limits.hello_timeout = v;
        }
        if let Some(v) = positive_count("limits.handshakes_per_host", self.handshakes_per_host)? {
            limits.handshakes_per_host = v;
        }
        if let Some(v) = positive_count("limits.handshakes_total", self.handshakes_total)? {
            limits.handshakes_total = v;
        }
        if let Some(v) = ms("limits.redial_first_ms", self.redial_first_ms)? {
            limits.redial_first = v;
        }
        if let Some(v) = ms("limits.redial_max_ms", self.redial_max_ms)? {
            limits.redial_max = v;
        }
        if let Some(v) = positive_count("limits.max_payload", self.max_payload)? {
            limits.max_payload = v;
        }
        if let Some(v) = ms("limits.call_timeout_ms", self.call_timeout_ms)? {
            limits.call_timeout = v;
        }
        if let Some(v) = positive_count("limits.max_peers", self.max_peers)? {
            limits.max_peers = v;
        }
        if let Some(v) = positive("limits.idle_session_secs", self.idle_session_secs)? {
            limits.idle_session = Duration::from_secs(v);
        }
        if let Some(v) = self.application_messages {
            limits.application_messages = v;
        }
        let guessing = self.guessing;
        if let Some(v) = ms("limits.guessing.first_delay_ms", guessing.first_delay_ms)? {
            limits.guessing.first_delay = v;
        }
        if let Some(v) = guessing.block_after {
            if v == 0 {
                return Err(at("limits.guessing.block_after", "must be greater than 0"));
            }
            limits.guessing.block_after = v;
        }
        if let Some(v) = positive("limits.guessing.block_for_secs", guessing.block_for_secs)? {
            limits.guessing.block_for = Duration::from_secs(v);
        }
        if let Some(v) = positive_count("limits.guessing.max_hosts", guessing.max_hosts)? {
            limits.guessing.max_hosts = v;
        }
        if limits.redial_first > limits.redial_max {
            return Err(at(
                "limits.redial_first_ms",
                "must not exceed redial_max_ms",
            ));
        }
        Ok(limits)
    }
}

impl ChannelEntry {
    fn into_channel(self) -> Result<jadeite_security::ChannelConfig, KeyError> {
        let mut channel = jadeite_security::ChannelConfig::default();
        if let Some(v) = self.replay_window_bits {
            channel.replay_window_bits = v;
        }
        if let Some(v) = self.rekey_after_messages {
            channel.rekey_after_messages = v;
        }
        if let Some(v) = self.reject_after_messages {
            channel.reject_after_messages = v;
        }
        if let Some(v) = self.rekey_after_secs {
            channel.rekey_after = Duration::from_secs(v);
        }
        if let Some(v) = self.previous_epoch_grace_secs {
            channel.previous_epoch_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.rekey_retry_ms {
            channel.rekey_retry = Duration::from_millis(v);
        }
        channel.validate().map_err(|error| match error {
            jadeite_security::ConfigError::Channel(field) => {
                let key = match field {
                    "rekey_after" if channel.rekey_after.is_zero() => "rekey_after_secs",
                    "rekey_after" => "rekey_retry_ms",
                    other => other,
                };
                at(format!("channel.{key}"), "out of range")
            }
            other => at("channel", other),
        })?;
        Ok(channel)
    }
}
