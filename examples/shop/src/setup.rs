//! Everything the four platforms need, made once into one directory: their
//! config files, the shared keys, the logistics password and the checkout
//! PKI (a CA whose certificate is the `checkout` trust anchor, and the API
//! platform's certificate and key; the CA's own key is thrown away once it
//! has signed, so no further `checkout` certificate can ever be issued).
//!
//! | platform    | runs                      | roles it proves               | dials the API over |
//! |-------------|---------------------------|-------------------------------|--------------------|
//! | api         | user API, HTTP, web page  | shop, checkout, inventory, logistics | (listens)   |
//! | payments    | payment                   | shop (verifies checkout)      | TCP                |
//! | logistics   | warehouse, shipping       | shop, inventory, logistics    | WebSocket          |
//! | suggestions | suggestion, intrusion     | shop                          | TCP                |
//!
//! Only the API platform listens. Suggestions and payments have no link to
//! each other: when the suggestions platform calls payment, it goes through
//! the API platform as a relay.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The four platforms, in the order they are started.
pub const PLATFORMS: [&str; 4] = ["api", "payments", "logistics", "suggestions"];

const MARKER: &str = "shop-layout.txt";

/// Where a prepared directory's pieces are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn config(&self, platform: &str) -> PathBuf {
        self.dir.join(format!("{platform}.toml"))
    }

    pub fn log(&self, platform: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{platform}.log"))
    }
}

/// Makes the directory's contents unless a previous run made them; the
/// web page is served on `http` (port 0: any free port).
pub fn prepare(dir: &Path, http: SocketAddr) -> Result<(Layout, bool), String> {
    let layout = Layout {
        dir: dir.to_owned(),
    };
    if dir.join(MARKER).exists() {
        return Ok((layout, false));
    }
    let io = |what: &str, error: std::io::Error| format!("{}: {what}: {error}", dir.display());
    for sub in ["secrets", "pki", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| io(sub, e))?;
    }
    let write = |name: &str, contents: &str, secret: bool| -> Result<(), String> {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|e| io(name, e))?;
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(name, e))?;
        }
        Ok(())
    };
    write("secrets/shop.key", &random_hex(32)?, true)?;
    write("secrets/inventory.key", &random_hex(32)?, true)?;
    write("secrets/logistics.password", &random_hex(12)?, true)?;
    let (ca_pem, leaf_pem, leaf_key) = checkout_pki()?;
    write("pki/checkout-ca.pem", &ca_pem, false)?;
    write("pki/api-checkout.pem", &leaf_pem, false)?;
    write("pki/api-checkout.key", &leaf_key, true)?;

    let tcp = free_port()?;
    let ws = free_port()?;
    let http = if http.port() == 0 {
        SocketAddr::new(http.ip(), free_port()?)
    } else {
        http
    };
    for platform in PLATFORMS {
        write(
            &format!("{platform}.toml"),
            &config(platform, tcp, ws, http),
            false,
        )?;
    }
    write(
        MARKER,
        "Made by `shop`: the configs, keys, password and certificates of the demo shop.\n\
         Delete this directory to start afresh.\n",
        false,
    )?;
    Ok((layout, true))
}

fn config(platform: &str, tcp: u16, ws: u16, http: SocketAddr) -> String {
    let mut text = String::new();
    let services = match platform {
        "api" => r#"["user_api"]"#,
        "payments" => r#"["payment"]"#,
        "logistics" => r#"["warehouse", "shipping"]"#,
        _ => r#"["suggestion", "intrusion"]"#,
    };
    let _ = writeln!(text, "# The {platform} platform of the demo shop.");
    let _ = writeln!(text, "services = {services}");
    if platform == "api" {
        let _ = writeln!(text, "http = \"{http}\"\norders = \"orders.json\"");
    }
    let _ = writeln!(text, "\n[platform]\nname = \"{platform}\"");
    match platform {
        "api" => {
            let _ = writeln!(
                text,
                "listen = [\"tcp://127.0.0.1:{tcp}\", \"ws://127.0.0.1:{ws}/jadeite\"]"
            );
        }
        "logistics" => {
            let _ = writeln!(text, "connect = [\"ws://127.0.0.1:{ws}/jadeite\"]");
        }
        _ => {
            let _ = writeln!(text, "connect = [\"tcp://127.0.0.1:{tcp}\"]");
        }
    }
    let _ = writeln!(
        text,
        "\n# Every platform of the shop: the trusted circle.\n\
         [platform.roles.shop]\nshared_key_file = \"secrets/shop.key\""
    );
    if matches!(platform, "api" | "logistics") {
        let _ = writeln!(
            text,
            "\n[platform.roles.inventory]\nshared_key_file = \"secrets/inventory.key\"\n\
             \n[platform.roles.logistics]\npassword_file = \"secrets/logistics.password\""
        );
    }
    match platform {
        "api" => {
            let _ = writeln!(
                text,
                "\n# Proves checkout to the payment service.\n[platform.roles.checkout]\n\
                 certificate_chain = \"pki/api-checkout.pem\"\n\
                 private_key = \"pki/api-checkout.key\""
            );
        }
        "payments" => {
            let _ = writeln!(
                text,
                "\n# Verifies callers' checkout certificates; holds none.\n\
                 [platform.roles.checkout]\ntrust_anchor = \"pki/checkout-ca.pem\""
            );
        }
        _ => {}
    }
    let _ = writeln!(
        text,
        "\n[platform.limits]\ncall_timeout_ms = 5000\nredial_max_ms = 1000"
    );
    text
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// A port nobody listens on now (it could be taken before the platform
/// binds it; the platform then fails to start with a clear error).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The checkout CA's certificate, and the API platform's certificate and
/// PKCS#8 key, valid for a year from yesterday.
fn checkout_pki() -> Result<(String, String, String), String> {
    let failed = |e: rcgen::Error| format!("cannot make the checkout PKI: {e}");
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let named = |name: &str| {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = (now - day).into();
        params.not_after = (now + 365 * day).into();
        params
    };
    let mut ca_params = named("Jadeite shop checkout CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(failed)?;
    let leaf = named("api platform (checkout)")
        .signed_by(&leaf_key, &issuer)
        .map_err(failed)?;
    Ok((ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem()))
}
