//! Throwaway PKI generated at test time with rcgen (dev-dependencies: `rcgen`, `time`).
//! Everything lives in memory only, so no certificate or key is ever committed.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};

/// Key types the X.509 module can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlg {
    pub const ALL: [Self; 3] = [Self::Ed25519, Self::EcdsaP256, Self::EcdsaP384];

    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    fn generate(self) -> KeyPair {
        KeyPair::generate_for(self.rcgen()).expect("generate key pair")
    }
}

/// Something that can issue certificates (normally a CA; see [`non_ca_issuer`]).
pub struct TestCa {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate with its private key (PKCS#8).
pub struct TestCert {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub pkcs8_der: Vec<u8>,
    pub key_pem: String,
}

fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params
}

fn issuer_from(params: CertificateParams, key: KeyPair, cert: rcgen::Certificate) -> TestCa {
    TestCa {
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Self-signed root CA (basicConstraints cA, keyCertSign).
pub fn ca(common_name: &str, alg: KeyAlg) -> TestCa {
    let (params, key) = (ca_params(common_name), alg.generate());
    let cert = params.self_signed(&key).expect("self-sign CA");
    issuer_from(params, key, cert)
}

/// Intermediate CA issued by `parent`.
pub fn intermediate(parent: &TestCa, common_name: &str, alg: KeyAlg) -> TestCa {
    let (params, key) = (ca_params(common_name), alg.generate());
    let cert = params.signed_by(&key, &parent.issuer).expect("sign CA");
    issuer_from(params, key, cert)
}

/// A leaf (no basicConstraints) issued by `parent` that can nevertheless sign certificates,
/// to check that verifiers refuse it as an issuer or anchor.
pub fn non_ca_issuer(parent: &TestCa, common_name: &str, alg: KeyAlg) -> TestCa {
    let (params, key) = (params(common_name), alg.generate());
    let cert = params.signed_by(&key, &parent.issuer).expect("sign leaf");
    issuer_from(params, key, cert)
}

/// Leaf issued by `issuer`, valid from `not_before` to `not_after`.
pub fn leaf(
    issuer: &TestCa,
    common_name: &str,
    alg: KeyAlg,
    not_before: SystemTime,
    not_after: SystemTime,
) -> TestCert {
    let mut params = params(common_name);
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    leaf_with_params(issuer, params, alg)
}

/// Leaf issued by `issuer` from arbitrary rcgen parameters (e.g. to set EKUs).
pub fn leaf_with_params(issuer: &TestCa, params: CertificateParams, alg: KeyAlg) -> TestCert {
    let key = alg.generate();
    let cert = params.signed_by(&key, &issuer.issuer).expect("sign leaf");
    TestCert {
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
        pkcs8_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}
