#[path = "support/test_pki.rs"]
mod test_pki;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jadeite_security::x509::{
    CertificateIdentity, MAX_CERT_LEN, MAX_CHAIN_LEN, RoleTrustAnchor, X509Error,
};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose};
use rustls_pki_types::UnixTime;
use test_pki::{KeyAlg, TestCa, TestCert, ca, intermediate, leaf, leaf_with_params, non_ca_issuer};

const NOW_SECS: u64 = 1_750_000_000;
const MESSAGE: &[u8] = b"jadeite handshake transcript";

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(NOW_SECS))
}

/// `NOW` shifted by whole days.
fn day(offset: i64) -> SystemTime {
    let secs = NOW_SECS
        .checked_add_signed(offset * 86_400)
        .expect("test date in range");
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn valid_leaf(issuer: &TestCa, alg: KeyAlg) -> TestCert {
    leaf(issuer, "leaf", alg, day(-1), day(1))
}

fn identity(leaf: &TestCert, intermediates: &[&TestCa]) -> CertificateIdentity {
    let chain = std::iter::once(leaf.cert_der.clone())
        .chain(intermediates.iter().map(|ca| ca.cert_der.clone()))
        .collect();
    CertificateIdentity::from_der(chain, &leaf.pkcs8_der).expect("test identity loads")
}

fn anchor(ca: &TestCa) -> RoleTrustAnchor {
    RoleTrustAnchor::from_der(ca.cert_der.clone()).expect("test anchor loads")
}

fn chain_of(identity: &CertificateIdentity) -> Vec<&[u8]> {
    identity.chain().iter().map(|c| c.as_ref()).collect()
}

/// Full prover → verifier round trip.
fn handshake(anchor: &RoleTrustAnchor, identity: &CertificateIdentity) -> Result<(), X509Error> {
    let signature = identity.sign(MESSAGE).expect("test identity signs");
    anchor.verify(&chain_of(identity), MESSAGE, &signature, now())
}

#[track_caller]
fn assert_chain_invalid(result: Result<(), X509Error>, webpki_error: &str) {
    match result {
        Err(X509Error::ChainInvalid(e)) if e.starts_with(webpki_error) => {}
        other => panic!("expected ChainInvalid({webpki_error}..), got {other:?}"),
    }
}

#[test]
fn leaf_directly_under_anchor_verifies_for_every_key_type() {
    for ca_alg in KeyAlg::ALL {
        let root = ca("root", ca_alg);
        for leaf_alg in KeyAlg::ALL {
            let id = identity(&valid_leaf(&root, leaf_alg), &[]);
            assert_eq!(
                handshake(&anchor(&root), &id).ok(),
                Some(()),
                "{ca_alg:?}/{leaf_alg:?}"
            );
        }
    }
}

#[test]
fn ed25519_and_ecdsa_p256_sign_and_verify() {
    let root = ca("root", KeyAlg::EcdsaP256);
    for alg in [KeyAlg::Ed25519, KeyAlg::EcdsaP256] {
        let id = identity(&valid_leaf(&root, alg), &[]);
        handshake(&anchor(&root), &id).unwrap();
    }
}

#[test]
fn leaf_via_supplied_intermediate_verifies() {
    let root = ca("root", KeyAlg::Ed25519);
    let inter = intermediate(&root, "intermediate", KeyAlg::EcdsaP256);
    let id = identity(&valid_leaf(&inter, KeyAlg::Ed25519), &[&inter]);
    handshake(&anchor(&root), &id).unwrap();
}

#[test]
fn missing_intermediate_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let inter = intermediate(&root, "intermediate", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&inter, KeyAlg::Ed25519), &[]);
    assert_chain_invalid(handshake(&anchor(&root), &id), "UnknownIssuer");
}

#[test]
fn expired_leaf_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let id = identity(
        &leaf(&root, "leaf", KeyAlg::Ed25519, day(-10), day(-1)),
        &[],
    );
    assert_chain_invalid(handshake(&anchor(&root), &id), "CertExpired");
}

#[test]
fn not_yet_valid_leaf_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let id = identity(&leaf(&root, "leaf", KeyAlg::Ed25519, day(1), day(10)), &[]);
    assert_chain_invalid(handshake(&anchor(&root), &id), "CertNotValidYet");
}

#[test]
fn leaf_from_another_anchor_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let other = ca("other root", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&other, KeyAlg::Ed25519), &[]);
    assert_chain_invalid(handshake(&anchor(&root), &id), "UnknownIssuer");

    // Same subject name as `root`, different key: only the signature tells them apart.
    let impostor = ca("root", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&impostor, KeyAlg::Ed25519), &[]);
    assert_chain_invalid(
        handshake(&anchor(&root), &id),
        "InvalidSignatureForPublicKey",
    );
}

#[test]
fn signature_over_different_message_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    for alg in KeyAlg::ALL {
        let id = identity(&valid_leaf(&root, alg), &[]);
        let signature = id.sign(b"some other message").unwrap();
        let result = anchor(&root).verify(&chain_of(&id), MESSAGE, &signature, now());
        assert!(
            matches!(result, Err(X509Error::BadSignature)),
            "{alg:?}: {result:?}"
        );
    }
}

#[test]
fn tampered_signature_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    for alg in KeyAlg::ALL {
        let id = identity(&valid_leaf(&root, alg), &[]);
        let mut signature = id.sign(MESSAGE).unwrap();
        let last = signature.len() - 1;
        signature[last] ^= 0x01;
        let result = anchor(&root).verify(&chain_of(&id), MESSAGE, &signature, now());
        assert!(
            matches!(result, Err(X509Error::BadSignature)),
            "{alg:?}: {result:?}"
        );
    }
}

#[test]
fn signature_from_another_key_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&root, KeyAlg::Ed25519), &[]);
    let other = identity(&valid_leaf(&root, KeyAlg::Ed25519), &[]);
    let signature = other.sign(MESSAGE).unwrap();
    let result = anchor(&root).verify(&chain_of(&id), MESSAGE, &signature, now());
    assert!(matches!(result, Err(X509Error::BadSignature)), "{result:?}");
}

#[test]
fn non_ca_leaf_as_issuer_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let fake_ca = non_ca_issuer(&root, "not a CA", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&fake_ca, KeyAlg::Ed25519), &[&fake_ca]);
    assert_chain_invalid(handshake(&anchor(&root), &id), "EndEntityUsedAsCa");
}

#[test]
fn non_ca_leaf_as_anchor_is_rejected() {
    let root = ca("root", KeyAlg::Ed25519);
    let fake_ca = non_ca_issuer(&root, "not a CA", KeyAlg::Ed25519);
    let result = RoleTrustAnchor::from_der(fake_ca.cert_der.clone());
    assert!(matches!(result, Err(X509Error::AnchorNotCa)), "{result:?}");
    let result = RoleTrustAnchor::from_pem(&fake_ca.cert_pem);
    assert!(matches!(result, Err(X509Error::AnchorNotCa)), "{result:?}");
    // An intermediate CA is a CA, so it may anchor a role.
    RoleTrustAnchor::from_der(intermediate(&root, "i", KeyAlg::Ed25519).cert_der).unwrap();
}

#[test]
fn ca_certificate_as_end_entity_fails() {
    let root = ca("root", KeyAlg::Ed25519);
    let inter = intermediate(&root, "intermediate", KeyAlg::Ed25519);
    // The prover side cannot hold the CA key through test_pki, so forge the proof directly:
    // chain validation must fail before the signature is even looked at.
    let result = anchor(&root).verify(&[&inter.cert_der], MESSAGE, &[0; 64], now());
    assert_chain_invalid(result, "CaUsedAsEndEntity");
}

#[test]
fn eku_client_auth_required_only_when_eku_present() {
    let root = ca("root", KeyAlg::Ed25519);
    let with_eku = |eku: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![eku];
        identity(&leaf_with_params(&root, params, KeyAlg::Ed25519), &[])
    };
    handshake(
        &anchor(&root),
        &with_eku(ExtendedKeyUsagePurpose::ClientAuth),
    )
    .unwrap();
    assert_chain_invalid(
        handshake(
            &anchor(&root),
            &with_eku(ExtendedKeyUsagePurpose::ServerAuth),
        ),
        "RequiredEkuNotFound",
    );
}

#[test]
fn pem_round_trip_verifies() {
    let root = ca("root", KeyAlg::EcdsaP256);
    let inter = intermediate(&root, "intermediate", KeyAlg::EcdsaP384);
    let leaf = valid_leaf(&inter, KeyAlg::EcdsaP256);
    let chain_pem = format!("{}{}", leaf.cert_pem, inter.cert_pem);
    let id = CertificateIdentity::from_pem(&chain_pem, &leaf.key_pem).unwrap();
    assert_eq!(id.chain().len(), 2);
    assert_eq!(id.chain()[0].as_ref(), leaf.cert_der.as_slice());
    handshake(&RoleTrustAnchor::from_pem(&root.cert_pem).unwrap(), &id).unwrap();
}

#[test]
fn key_not_matching_certificate_is_rejected() {
    let root = ca("root", KeyAlg::Ed25519);
    let a = valid_leaf(&root, KeyAlg::Ed25519);
    let b = valid_leaf(&root, KeyAlg::Ed25519);
    let c = valid_leaf(&root, KeyAlg::EcdsaP256);
    for key in [&b.pkcs8_der, &c.pkcs8_der] {
        let result = CertificateIdentity::from_der(vec![a.cert_der.clone()], key);
        assert!(matches!(result, Err(X509Error::KeyMismatch)), "{result:?}");
    }
}

#[test]
fn garbage_der_returns_errors() {
    let root = ca("root", KeyAlg::Ed25519);
    let leaf = valid_leaf(&root, KeyAlg::Ed25519);
    let garbage = vec![0x30, 0x03, 0x01, 0x02, 0x03];

    let result = CertificateIdentity::from_der(vec![garbage.clone()], &leaf.pkcs8_der);
    assert!(
        matches!(result, Err(X509Error::BadCertificate(_))),
        "{result:?}"
    );
    let result = CertificateIdentity::from_der(vec![leaf.cert_der.clone()], &garbage);
    assert!(
        matches!(result, Err(X509Error::UnsupportedKey)),
        "{result:?}"
    );
    let result = CertificateIdentity::from_der(vec![], &leaf.pkcs8_der);
    assert!(matches!(result, Err(X509Error::EmptyChain)), "{result:?}");
    let result = RoleTrustAnchor::from_der(garbage.clone());
    assert!(
        matches!(result, Err(X509Error::BadCertificate(_))),
        "{result:?}"
    );

    let anchor = anchor(&root);
    let result = anchor.verify(&[&garbage], MESSAGE, &[], now());
    assert!(
        matches!(result, Err(X509Error::BadCertificate(_))),
        "{result:?}"
    );
    let result = anchor.verify(&[], MESSAGE, &[], now());
    assert!(matches!(result, Err(X509Error::EmptyChain)), "{result:?}");
    let inter = intermediate(&root, "intermediate", KeyAlg::Ed25519);
    let id = identity(&valid_leaf(&inter, KeyAlg::Ed25519), &[]);
    let signature = id.sign(MESSAGE).unwrap();
    let result = anchor.verify(&[&id.chain()[0], &garbage], MESSAGE, &signature, now());
    assert!(
        matches!(result, Err(X509Error::ChainInvalid(_))),
        "{result:?}"
    );

    // Every truncation and every single-byte corruption is an error, never a panic.
    let signature = identity(&leaf, &[]).sign(MESSAGE).unwrap();
    for len in 0..leaf.cert_der.len() {
        let cut = &leaf.cert_der[..len];
        assert!(
            anchor.verify(&[cut], MESSAGE, &signature, now()).is_err(),
            "len {len}"
        );
    }
    for len in 0..root.cert_der.len() {
        assert!(
            RoleTrustAnchor::from_der(root.cert_der[..len].to_vec()).is_err(),
            "len {len}"
        );
    }
    for i in 0..leaf.cert_der.len() {
        let mut flipped = leaf.cert_der.clone();
        flipped[i] ^= 0xff;
        assert!(
            anchor
                .verify(&[&flipped], MESSAGE, &signature, now())
                .is_err(),
            "byte {i}"
        );
    }
}

#[test]
fn garbage_pem_returns_errors() {
    let root = ca("root", KeyAlg::Ed25519);
    let leaf = valid_leaf(&root, KeyAlg::Ed25519);
    let broken = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";

    for chain in ["", "hello", broken, unterminated] {
        let result = CertificateIdentity::from_pem(chain, &leaf.key_pem);
        assert!(
            matches!(result, Err(X509Error::BadPem(_) | X509Error::EmptyChain)),
            "{chain:?}: {result:?}"
        );
        let result = RoleTrustAnchor::from_pem(chain);
        assert!(
            matches!(result, Err(X509Error::BadPem(_))),
            "{chain:?}: {result:?}"
        );
    }
    for key in ["", "hello", &leaf.cert_pem] {
        let result = CertificateIdentity::from_pem(&leaf.cert_pem, key);
        assert!(
            matches!(result, Err(X509Error::BadPem(_))),
            "{key:?}: {result:?}"
        );
    }
    let two = format!("{}{}", root.cert_pem, root.cert_pem);
    let result = RoleTrustAnchor::from_pem(&two);
    assert!(matches!(result, Err(X509Error::BadPem(_))), "{result:?}");
}

#[test]
fn oversize_input_is_rejected_before_parsing() {
    let root = ca("root", KeyAlg::Ed25519);
    let leaf = valid_leaf(&root, KeyAlg::Ed25519);
    let anchor = anchor(&root);

    let long: Vec<&[u8]> = vec![&leaf.cert_der; MAX_CHAIN_LEN + 1];
    let result = anchor.verify(&long, MESSAGE, &[], now());
    assert!(matches!(result, Err(X509Error::ChainTooLong)), "{result:?}");
    let long_owned = vec![leaf.cert_der.clone(); MAX_CHAIN_LEN + 1];
    let result = CertificateIdentity::from_der(long_owned, &leaf.pkcs8_der);
    assert!(matches!(result, Err(X509Error::ChainTooLong)), "{result:?}");
    let long_pem = leaf.cert_pem.repeat(MAX_CHAIN_LEN + 1);
    let result = CertificateIdentity::from_pem(&long_pem, &leaf.key_pem);
    assert!(matches!(result, Err(X509Error::ChainTooLong)), "{result:?}");

    let huge = vec![0x30; MAX_CERT_LEN + 1];
    let result = anchor.verify(&[&leaf.cert_der, &huge], MESSAGE, &[], now());
    assert!(
        matches!(result, Err(X509Error::CertificateTooLarge)),
        "{result:?}"
    );
    let result = CertificateIdentity::from_der(vec![huge.clone()], &leaf.pkcs8_der);
    assert!(
        matches!(result, Err(X509Error::CertificateTooLarge)),
        "{result:?}"
    );
    let result = RoleTrustAnchor::from_der(huge);
    assert!(
        matches!(result, Err(X509Error::CertificateTooLarge)),
        "{result:?}"
    );
}

#[test]
fn debug_output_does_not_reveal_the_key() {
    let root = ca("root", KeyAlg::EcdsaP256);
    for (alg, name) in [
        (KeyAlg::Ed25519, "Ed25519"),
        (KeyAlg::EcdsaP256, "ECDSA-P256-SHA256"),
    ] {
        let leaf = valid_leaf(&root, alg);
        let debug = format!("{:?}", identity(&leaf, &[]));
        // Exact match: any field added later must be reviewed for secrets.
        assert_eq!(
            debug,
            format!("CertificateIdentity {{ chain_len: 1, key: {name:?} }}")
        );
    }
    let debug = format!("{:#?}", anchor(&root));
    assert!(debug.starts_with("RoleTrustAnchor"), "{debug}");
}
