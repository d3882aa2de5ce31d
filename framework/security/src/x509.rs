//! X.509 roles: a prover presents a certificate chain and signs a handshake
//! message with the end-entity key; a verifier holds only the role's trust
//! anchor (a CA certificate), validates the chain to it and checks the
//! signature. Sans-IO: time is passed in, nothing is read from disk or network.

use std::fmt;
use std::slice;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use webpki::{EndEntityCert, KeyUsage};
use zeroize::Zeroizing;

/// Longest accepted chain (end-entity included); bounds work done on peer input.
pub const MAX_CHAIN_LEN: usize = 8;
/// Largest accepted DER certificate; checked before any parsing.
pub const MAX_CERT_LEN: usize = 16 * 1024;

/// Algorithms accepted for signatures *inside* the chain (issued by CAs we do not control).
static CHAIN_SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ED25519,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Algorithms accepted for the handshake signature: exactly what [`CertificateIdentity::sign`]
/// produces, so a key cannot be used with a weaker hash than its curve implies.
static MESSAGE_SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ED25519,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
];

/// Errors from loading X.509 material or verifying a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    #[error("malformed PEM: {0}")]
    BadPem(String),
    #[error("malformed certificate: {0}")]
    BadCertificate(String),
    #[error("certificate chain is empty")]
    EmptyChain,
    #[error("certificate chain longer than {} certificates", MAX_CHAIN_LEN)]
    ChainTooLong,
    #[error("certificate larger than {} bytes", MAX_CERT_LEN)]
    CertificateTooLarge,
    #[error("trust anchor is not a CA certificate (basicConstraints cA=TRUE required)")]
    AnchorNotCa,
    #[error("unsupported key (supported: PKCS#8 Ed25519, ECDSA P-256, ECDSA P-384)")]
    UnsupportedKey,
    #[error("private key does not match the end-entity certificate")]
    KeyMismatch,
    #[error("certificate chain rejected: {0}")]
    ChainInvalid(String),
    #[error("signature verification failed")]
    BadSignature,
    #[error("signing failed")]
    SigningFailed,
}

fn bad_pem(err: pem::Error) -> X509Error {
    X509Error::BadPem(err.to_string())
}

fn bad_cert(err: webpki::Error) -> X509Error {
    X509Error::BadCertificate(err.to_string())
}

/// Size limits run before any DER parsing so oversized input costs nothing.
fn check_limits(chain: &[impl AsRef<[u8]>]) -> Result<(), X509Error> {
    if chain.is_empty() {
        return Err(X509Error::EmptyChain);
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(X509Error::ChainTooLong);
    }
    if chain.iter().any(|c| c.as_ref().len() > MAX_CERT_LEN) {
        return Err(X509Error::CertificateTooLarge);
    }
    Ok(())
}

/// A parsed private key; ring keeps the secret, so no PKCS#8 copy is retained.
enum SigningKey {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    EcdsaP384(EcdsaKeyPair),
}

impl SigningKey {
    /// PKCS#8 does not say which parser applies without decoding it, so try each.
    fn from_pkcs8(der: &[u8], rng: &SystemRandom) -> Result<Self, X509Error> {
        if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Self::Ed25519(key));
        }
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, rng) {
            return Ok(Self::EcdsaP256(key));
        }
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, der, rng) {
            return Ok(Self::EcdsaP384(key));
        }
        Err(X509Error::UnsupportedKey)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "Ed25519",
            Self::EcdsaP256(_) => "ECDSA-P256-SHA256",
            Self::EcdsaP384(_) => "ECDSA-P384-SHA384",
        }
    }

    /// The verifier-side algorithm matching what `sign` produces.
    fn verification_alg(&self) -> &'static dyn SignatureVerificationAlgorithm {
        match self {
            Self::Ed25519(_) => webpki::ring::ED25519,
            Self::EcdsaP256(_) => webpki::ring::ECDSA_P256_SHA256,
            Self::EcdsaP384(_) => webpki::ring::ECDSA_P384_SHA384,
        }
    }

    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, X509Error> {
        match self {
            Self::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
            Self::EcdsaP256(key) | Self::EcdsaP384(key) => key
                .sign(rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| X509Error::SigningFailed),
        }
    }
}

/// Prover side of an X.509 role: a certificate chain and the end-entity private key.
pub struct CertificateIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: SigningKey,
    rng: SystemRandom,
}

impl CertificateIdentity {
    /// `chain` is DER, end-entity first; the key is PKCS#8 DER (Ed25519, ECDSA P-256/P-384).
    pub fn from_der(chain: Vec<Vec<u8>>, pkcs8_private_key: &[u8]) -> Result<Self, X509Error> {
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        Self::new(chain, pkcs8_private_key)
    }

    /// `chain_pem` holds `CERTIFICATE` blocks, end-entity first; the key must be a
    /// PKCS#8 `PRIVATE KEY` block.
    pub fn from_pem(chain_pem: &str, private_key_pem: &str) -> Result<Self, X509Error> {
        // `take` stops decoding as soon as the chain is known to be too long.
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .take(MAX_CHAIN_LEN + 1)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_pem)?;
        let key = Zeroizing::new(
            PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(bad_pem)?,
        );
        match &*key {
            PrivateKeyDer::Pkcs8(pkcs8) => Self::new(chain, pkcs8.secret_pkcs8_der()),
            _ => Err(X509Error::UnsupportedKey),
        }
    }

    fn new(chain: Vec<CertificateDer<'static>>, pkcs8: &[u8]) -> Result<Self, X509Error> {
        check_limits(&chain)?;
        for cert in &chain {
            EndEntityCert::try_from(cert).map_err(bad_cert)?;
        }
        let rng = SystemRandom::new();
        let key = SigningKey::from_pkcs8(pkcs8, &rng)?;
        // Catch a key/certificate mix-up at load time rather than as a peer's BadSignature.
        const PROBE: &[u8] = b"jadeite-security x509 key/certificate consistency probe";
        let probe = key.sign(&rng, PROBE)?;
        EndEntityCert::try_from(&chain[0])
            .map_err(bad_cert)?
            .verify_signature(key.verification_alg(), PROBE, &probe)
            .map_err(|_| X509Error::KeyMismatch)?;
        Ok(Self { chain, key, rng })
    }

    /// DER certificates, end-entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// Signs `message`; the signature algorithm follows the key type
    /// (Ed25519, ECDSA P-256/SHA-256 or ECDSA P-384/SHA-384, ASN.1 DER signatures).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, X509Error> {
        self.key.sign(&self.rng, message)
    }
}

/// Shows only non-secret facts so the key can never leak through logs.
impl fmt::Debug for CertificateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateIdentity")
            .field("chain_len", &self.chain.len())
            .field("key", &self.key.name())
            .finish()
    }
}

/// Verifier side of an X.509 role: the CA certificate every peer chain must lead to.
pub struct RoleTrustAnchor {
    der: CertificateDer<'static>,
    anchor: TrustAnchor<'static>,
}

impl RoleTrustAnchor {
    /// Parses the anchor now so a bad configuration fails at load, not at first handshake.
    /// The certificate must carry basicConstraints `cA=TRUE`: webpki does not check this for
    /// anchors, and trusting a leaf as a role's root is almost certainly a misconfiguration.
    pub fn from_der(ca_certificate: Vec<u8>) -> Result<Self, X509Error> {
        check_limits(slice::from_ref(&ca_certificate))?;
        let der = CertificateDer::from(ca_certificate);
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(bad_cert)?
            .to_owned();
        if basic_constraints_ca(&der) != Some(true) {
            return Err(X509Error::AnchorNotCa);
        }
        Ok(Self { der, anchor })
    }

    /// Expects exactly one `CERTIFICATE` block, so extra certificates are never silently ignored.
    pub fn from_pem(pem: &str) -> Result<Self, X509Error> {
        let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
        let cert = certs
            .next()
            .ok_or_else(|| X509Error::BadPem("no CERTIFICATE block".into()))?
            .map_err(bad_pem)?;
        if certs.next().is_some() {
            return Err(X509Error::BadPem(
                "expected exactly one CERTIFICATE block".into(),
            ));
        }
        Self::from_der(cert.to_vec())
    }

    /// The anchor's DER certificate.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Validates `chain` (end-entity first, then intermediates) to this anchor at `now`
    /// (validity, CA constraints, signatures; client-auth EKU only if an EKU is present),
    /// then checks `signature` over `message` with the end-entity key. Every failure,
    /// including malformed peer input, is an `Err`, never a panic.
    pub fn verify(
        &self,
        chain: &[&[u8]],
        message: &[u8],
        signature: &[u8],
        now: UnixTime,
    ) -> Result<(), X509Error> {
        check_limits(chain)?;
        let certs: Vec<CertificateDer<'_>> =
            chain.iter().map(|c| CertificateDer::from(*c)).collect();
        let [end_entity, intermediates @ ..] = certs.as_slice() else {
            return Err(X509Error::EmptyChain);
        };
        let end_entity = EndEntityCert::try_from(end_entity).map_err(bad_cert)?;
        end_entity
            .verify_for_usage(
                CHAIN_SIG_ALGS,
                slice::from_ref(&self.anchor),
                intermediates,
                now,
                KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| X509Error::ChainInvalid(e.to_string()))?;
        verify_message(&end_entity, message, signature)
    }
}

impl fmt::Debug for RoleTrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleTrustAnchor")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// webpki rejects an algorithm whose key type differs from the certificate's SPKI, so the
/// first compatible algorithm decides; a compatible one failing is a bad signature.
fn verify_message(
    end_entity: &EndEntityCert<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    for alg in MESSAGE_SIG_ALGS {
        match end_entity.verify_signature(*alg, message, signature) {
            Ok(()) => return Ok(()),
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => continue,
            Err(_) => return Err(X509Error::BadSignature),
        }
    }
    Err(X509Error::UnsupportedKey)
}

/// Reads one DER TLV: `(tag, value, rest)`. Only definite lengths up to 4 bytes.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
            let len = bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        }
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// The `cA` flag of the basicConstraints extension (`Some(false)` if absent).
/// Only called on DER webpki has already parsed, so this walks rather than validates.
fn basic_constraints_ca(cert: &[u8]) -> Option<bool> {
    const SEQUENCE: u8 = 0x30;
    const EXTENSIONS: u8 = 0xa3; // [3] EXPLICIT in TBSCertificate
    const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13]; // 2.5.29.19

    let (SEQUENCE, cert, _) = der_tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_tlv(cert)? else {
        return None;
    };
    let extensions = loop {
        let Some((tag, value, rest)) = der_tlv(tbs) else {
            return Some(false); // no extensions at all (e.g. v1)
        };
        if tag == EXTENSIONS {
            break value;
        }
        tbs = rest;
    };
    let (SEQUENCE, mut extensions, _) = der_tlv(extensions)? else {
        return None;
    };
    while let Some((SEQUENCE, extension, rest)) = der_tlv(extensions) {
        extensions = rest;
        let (0x06, oid, mut value) = der_tlv(extension)? else {
            return None;
        };
        if oid != OID_BASIC_CONSTRAINTS {
            continue;
        }
        if let Some((0x01, _critical, rest)) = der_tlv(value) {
            value = rest;
        }
        let (0x04, constraints, _) = der_tlv(value)? else {
            return None;
        };
        let (SEQUENCE, constraints, _) = der_tlv(constraints)? else {
            return None;
        };
        return Some(matches!(der_tlv(constraints), Some((0x01, [0xff], _))));
    }
    Some(false)
}
