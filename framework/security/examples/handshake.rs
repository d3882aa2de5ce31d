//! Two platforms in one process: a handshake with all three role types, then
//! one message each way over the secure session.
//!
//! `cargo run --release -p jadeite-security --example handshake`

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jadeite_security::{
    CertificateIdentity, Credentials, Handshake, HandshakeConfig, Now, Password, PlatformId,
    Received, RoleName, RoleTrustAnchor, SharedKey,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

fn main() -> Result<(), Box<dyn Error>> {
    // A CA for the `checkout` role; the API platform holds a certificate under it,
    // the payments platform holds only the CA certificate.
    let (ca_der, api_chain, api_key) = checkout_pki()?;

    let api = HandshakeConfig::new(
        PlatformId::random()?,
        Credentials::new()
            .with_certificate(
                RoleName::new("checkout")?,
                CertificateIdentity::from_der(api_chain, &api_key)?,
            )
            .with_shared_key(RoleName::new("inventory")?, SharedKey::new(&[0x42; 32])?)
            .with_password(
                RoleName::new("logistics")?,
                Password::new("correct horse battery staple")?,
            ),
    );
    let payments = HandshakeConfig::new(
        PlatformId::random()?,
        Credentials::new()
            .with_trust_anchor(
                RoleName::new("checkout")?,
                RoleTrustAnchor::from_der(ca_der)?,
            )
            .with_shared_key(RoleName::new("inventory")?, SharedKey::new(&[0x42; 32])?)
            .with_password(
                RoleName::new("logistics")?,
                Password::new("correct horse battery staple")?,
            ),
    );

    let (mut initiator, offer) = Handshake::initiate(Arc::new(api), None)?;
    let mut responder = Handshake::respond(Arc::new(payments));
    let mut in_flight = offer;
    let mut names = ["Offer", "Accept", "Finish", "Confirm"].into_iter();
    let mut sessions = (None, None);
    for to_responder in [true, false, true, false] {
        println!(
            "{:>8}: {:>5} bytes {}",
            names.next().unwrap_or("?"),
            in_flight.len(),
            if to_responder {
                "api -> payments"
            } else {
                "payments -> api"
            }
        );
        let side = if to_responder {
            &mut responder
        } else {
            &mut initiator
        };
        let progress = side.receive(&in_flight, Now::system())?;
        if let Some(established) = progress.established {
            if to_responder {
                sessions.1 = Some(established)
            } else {
                sessions.0 = Some(established)
            }
        }
        match progress.reply {
            Some(reply) => in_flight = reply,
            None => break,
        }
    }
    let (Some(mut api), Some(mut payments)) = sessions else {
        return Err("handshake did not complete".into());
    };
    println!("suite: {}", api.suite);
    println!(
        "payments verified the api platform's roles: {:?}",
        payments.peer_roles
    );
    println!(
        "api verified the payments platform's roles: {:?}",
        api.peer_roles
    );

    let now = Now::system().monotonic;
    let mut packet = api
        .session
        .seal(b"api->payments", b"charge order 17", now)?;
    println!(
        "sealed {} plaintext bytes into {} bytes",
        "charge order 17".len(),
        packet.len()
    );
    if let Received::Application(plaintext) =
        payments.session.open(b"api->payments", &mut packet, now)?
    {
        println!("payments received: {}", String::from_utf8_lossy(plaintext));
    }
    let mut packet = payments.session.seal(b"payments->api", b"charged", now)?;
    if let Received::Application(plaintext) =
        api.session.open(b"payments->api", &mut packet, now)?
    {
        println!("api received: {}", String::from_utf8_lossy(plaintext));
    }
    Ok(())
}

/// CA certificate, leaf chain and leaf PKCS#8 key, all DER.
type Pki = (Vec<u8>, Vec<Vec<u8>>, Vec<u8>);

/// A CA and one leaf under it, made fresh for this run.
fn checkout_pki() -> Result<Pki, Box<dyn Error>> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut leaf_params = CertificateParams::new(vec!["api.shop.internal".to_owned()])?;
    let now = SystemTime::now();
    leaf_params.not_before = (now - Duration::from_secs(3600)).into();
    leaf_params.not_after = (now + Duration::from_secs(86_400)).into();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok((
        ca.der().to_vec(),
        vec![leaf.der().to_vec()],
        leaf_key.serialize_der(),
    ))
}
