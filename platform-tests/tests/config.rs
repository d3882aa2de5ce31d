//! Platforms built from TOML files: every role type verifies end to end, and
//! every kind of mistake is reported with its key and without its secret.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jadeite::transport::mem::{MemNetwork, MemTransport};
use jadeite::{ConfigFileError, Platform};
use platform_tests::*;

#[path = "../../framework/security/tests/support/test_pki.rs"]
mod test_pki;

const INVENTORY_KEY: &str = "8f3c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

/// A fresh directory under the target dir, removed at the end of the test.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let random: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        let dir = std::env::temp_dir().join(format!(
            "jadeite-config-{tag}-{}-{random:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the checkout PKI (a CA and one leaf per platform) into `dir/pki/`.
fn write_checkout_pki(dir: &TempDir, platforms: &[&str]) {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let ca = test_pki::ca("checkout CA", test_pki::KeyAlg::EcdsaP256);
    dir.write("pki/checkout-ca.pem", &ca.cert_pem);
    for name in platforms {
        let leaf = test_pki::leaf(&ca, name, test_pki::KeyAlg::Ed25519, now - day, now + day);
        dir.write(&format!("pki/{name}.pem"), &leaf.cert_pem);
        dir.write(&format!("pki/{name}.key"), &leaf.key_pem);
    }
}

/// `password_env` is covered by the `hello --config` two-process test, which
/// can give its child an environment (setting one in process needs `unsafe`).
fn platform_config(name: &str) -> String {
    format!(
        r#"
name = "{name}"
listen = ["mem://{name}"]

[roles.inventory]
shared_key_file = "secrets/inventory.key"

[roles.logistics]
password_file = "secrets/logistics.password"

[roles.checkout]
certificate_chain = "pki/{name}.pem"
private_key = "pki/{name}.key"
trust_anchor = "pki/checkout-ca.pem"

[limits]
send_timeout_ms = 5000

[channel]
replay_window_bits = 4096
"#
    )
}

#[tokio::test]
async fn platforms_from_config_files_verify_all_three_role_types() {
    let dir = TempDir::new("roles");
    write_checkout_pki(&dir, &["api", "payments"]);
    dir.write("secrets/inventory.key", &format!("{INVENTORY_KEY}\n"));
    dir.write("secrets/logistics.password", "pallets of tea\n");
    let api_path = dir.write("api.toml", &platform_config("api"));
    let payments_path = dir.write("payments.toml", &platform_config("payments"));

    let network = MemNetwork::new();
    let start = |path: std::path::PathBuf| {
        let network = network.clone();
        async move {
            Platform::from_config(&path)
                .expect("config loads")
                .transport(Arc::new(MemTransport::new(network)))
                .start()
                .await
                .expect("platform starts")
        }
    };
    let payments = start(payments_path).await;
    let api = start(api_path).await;
    assert_eq!(api.name(), "api");
    assert_eq!(
        api.listen_addresses(),
        vec![address("mem://api")],
        "listen comes from the file"
    );

    let payments_id = api
        .connect(&address("mem://payments"))
        .await
        .expect("connect");
    api.send(payments_id, b"order 1".to_vec())
        .await
        .expect("send");
    let delivery = next_delivery(&payments).await;
    assert_eq!(delivery.payload, b"order 1");
    assert_eq!(
        *delivery.roles,
        BTreeSet::from([role("checkout"), role("inventory"), role("logistics")])
    );
}

#[tokio::test]
async fn connect_addresses_are_dialed_at_start_and_retried() {
    let dir = TempDir::new("connect");
    let network = MemNetwork::new();
    dir.write("secrets/inventory.key", INVENTORY_KEY);
    // The client starts first: its dial fails until the server is up.
    let client_path = dir.write(
        "client.toml",
        r#"
name = "client"
connect = ["mem://server"]
[roles.inventory]
shared_key_file = "secrets/inventory.key"
[limits]
redial_first_ms = 20
redial_max_ms = 50
"#,
    );
    let server_path = dir.write(
        "server.toml",
        r#"
name = "server"
listen = ["mem://server"]
[roles.inventory]
shared_key_file = "secrets/inventory.key"
"#,
    );
    let client = Platform::from_config(&client_path)
        .expect("client config")
        .transport(Arc::new(MemTransport::new(network.clone())))
        .start()
        .await
        .expect("client starts");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = Platform::from_config(&server_path)
        .expect("server config")
        .transport(Arc::new(MemTransport::new(network.clone())))
        .start()
        .await
        .expect("server starts");
    // The dialed link carries the server's message back to the client.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if server.send(client.id(), b"welcome".to_vec()).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "client never dialed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = next_delivery(&client).await;
    assert_eq!(delivery.payload, b"welcome");
    assert_eq!(*delivery.roles, BTreeSet::from([role("inventory")]));
}

/// Loads `toml` (with relative paths under `dir`) and returns the error.
fn error_of(dir: &TempDir, toml: &str) -> ConfigFileError {
    let path = dir.write("platform.toml", toml);
    match Platform::from_config(&path) {
        Ok(builder) => panic!("config accepted: {builder:?}"),
        Err(error) => {
            assert_eq!(error.file, path, "the error names the file");
            error
        }
    }
}

fn assert_key(error: &ConfigFileError, key: &str, reason_part: &str) {
    assert_eq!(error.key.as_deref(), Some(key), "{error}");
    assert!(
        error.reason.contains(reason_part),
        "reason {:?} lacks {reason_part:?}",
        error.reason
    );
    let shown = error.to_string();
    assert!(shown.contains(key), "{shown}");
}

#[test]
fn every_mistake_names_its_key_and_reason() {
    let dir = TempDir::new("errors");
    dir.write("short.key", &"ab".repeat(16 - 1));
    dir.write("odd.key", "abc");
    let cases: &[(&str, &str, &str)] = &[
        (
            "name = \"a\"\nlisten = [\"udp://x:1\"]",
            "listen[0]",
            "scheme",
        ),
        (
            "name = \"a\"\nlisten = [\"mem://a\", \"tcp://no-port\"]",
            "listen[1]",
            "",
        ),
        (
            "name = \"a\"\nconnect = [\"ftp://h\"]",
            "connect[0]",
            "scheme",
        ),
        ("name = \"a\"\nlistn = []", "listn", "unknown field"),
        (
            "name = \"a\"\nunauthenticated = \"maybe\"",
            "unauthenticated",
            "unknown variant",
        ),
        (
            "name = \"a\"\nsuites = [\"ROT13\"]",
            "suites[0]",
            "unknown cipher suite",
        ),
        (
            "name = \"a\"\n[roles.\"bad role\"]\nshared_key_file = \"x\"",
            "roles.bad role",
            "role name",
        ),
        ("name = \"a\"\n[roles.r]", "roles.r", "nothing to prove"),
        (
            "name = \"a\"\n[roles.r]\nshared_key_file = \"short.key\"",
            "roles.r.shared_key_file",
            "32..=64 bytes",
        ),
        (
            "name = \"a\"\n[roles.r]\nshared_key_file = \"odd.key\"",
            "roles.r.shared_key_file",
            "hex digits",
        ),
        (
            "name = \"a\"\n[roles.r]\nshared_key_file = \"missing.key\"",
            "roles.r.shared_key_file",
            "cannot open",
        ),
        (
            "name = \"a\"\n[roles.r]\npassword_env = \"JADEITE_TEST_SURELY_UNSET_VARIABLE\"",
            "roles.r.password_env",
            "is not set",
        ),
        (
            "name = \"a\"\n[roles.r]\npassword_file = \"a\"\npassword_env = \"B\"",
            "roles.r.password_env",
            "not both",
        ),
        (
            "name = \"a\"\n[roles.r]\npassword_file = \"a\"\nshared_key_file = \"b\"",
            "roles.r",
            "not several",
        ),
        (
            "name = \"a\"\n[roles.r]\ncertificate_chain = \"c.pem\"",
            "roles.r.private_key",
            "missing",
        ),
        (
            "name = \"a\"\n[roles.r]\npassword = \"hunter2\"",
            "roles.r.password",
            "unknown field",
        ),
        (
            "name = \"a\"\n[limits]\nsend_timeout_ms = 0",
            "limits.send_timeout_ms",
            "greater than 0",
        ),
        (
            "name = \"a\"\n[limits]\ncall_timeout_ms = 0",
            "limits.call_timeout_ms",
            "greater than 0",
        ),
        (
            "name = \"a\"\n[role_map]\n\"bad role\" = [\"x\"]",
            "role_map.bad role",
            "role name",
        ),
        (
            "name = \"a\"\n[role_map]\ninventory = []",
            "role_map.inventory",
            "name 1 to",
        ),
        (
            "name = \"a\"\n[role_map]\ninventory = [\"ok\", \"no way\"]",
            "role_map.inventory[1]",
            "role name",
        ),
        (
            "name = \"a\"\n[limits.guessing]\nblock_after = 0",
            "limits.guessing.block_after",
            "greater than 0",
        ),
        (
            "name = \"a\"\n[limits]\nqueue_per_peer = \"many\"",
            "limits.queue_per_peer",
            "invalid type",
        ),
        (
            "name = \"a\"\n[channel]\nreplay_window_bits = 3",
            "channel.replay_window_bits",
            "out of range",
        ),
        ("name = \"\"", "name", "printable"),
    ];
    for (toml, key, reason) in cases {
        let error = error_of(&dir, toml);
        assert_key(&error, key, reason);
    }
}

#[test]
fn syntax_errors_and_missing_name_say_where() {
    let dir = TempDir::new("syntax");
    let error = error_of(&dir, "name = \"a\"\n\nlisten = [\n");
    assert_eq!(error.key, None);
    assert!(error.reason.starts_with("line 3"), "{error}");
    let error = error_of(&dir, "listen = []");
    assert!(error.reason.contains("missing field `name`"), "{error}");
}

#[test]
fn secrets_never_appear_in_errors() {
    let dir = TempDir::new("secrets");
    let secret = "correct horse battery staple";
    // A password typed into a key that wants a number.
    let error = error_of(
        &dir,
        &format!("name = \"a\"\n[limits]\nmax_payload = \"{secret}\""),
    );
    assert_key(&error, "limits.max_payload", "invalid type");
    assert!(!format!("{error} {error:?}").contains(secret), "{error}");
    // A key of the wrong length: the key file's content is not repeated.
    let short = "c0ffee".repeat(8);
    dir.write("short.key", &short);
    let error = error_of(
        &dir,
        "name = \"a\"\n[roles.r]\nshared_key_file = \"short.key\"",
    );
    assert!(!format!("{error} {error:?}").contains(&short), "{error}");
}

#[test]
fn oversized_files_are_refused_without_reading_them_whole() {
    let dir = TempDir::new("size");
    let huge = format!(
        "name = \"a\"\n# {}\n",
        "x".repeat(jadeite::MAX_CONFIG_LEN as usize)
    );
    let error = error_of(&dir, &huge);
    assert!(error.reason.contains("larger than"), "{error}");
    dir.write("huge.key", &"a".repeat(70_000));
    let error = error_of(
        &dir,
        "name = \"a\"\n[roles.r]\nshared_key_file = \"huge.key\"",
    );
    assert_key(&error, "roles.r.shared_key_file", "larger than");
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let dir = TempDir::new("relative");
    dir.write("nested/secrets/k.key", INVENTORY_KEY);
    let path = dir.write(
        "nested/platform.toml",
        "name = \"a\"\n[roles.r]\nshared_key_file = \"secrets/k.key\"",
    );
    // The current directory is not `nested/`, yet the key is found.
    assert_ne!(
        std::env::current_dir().expect("cwd"),
        Path::new(&dir.0).join("nested")
    );
    Platform::from_config(&path).expect("relative key path resolves");
}
