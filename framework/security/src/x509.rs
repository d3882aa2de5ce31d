// TEMPORARY: replaced by the real module from the X.509 helper.
use rustls_pki_types::{CertificateDer, UnixTime};
#[derive(Debug, thiserror::Error)]
pub enum X509Error { #[error("unsupported")] Unsupported }
#[derive(Debug)]
pub struct CertificateIdentity { chain: Vec<CertificateDer<'static>> }
impl CertificateIdentity {
    pub fn chain(&self) -> &[CertificateDer<'static>] { &self.chain }
    pub fn sign(&self, _m: &[u8]) -> Result<Vec<u8>, X509Error> { Err(X509Error::Unsupported) }
}
#[derive(Debug)]
pub struct RoleTrustAnchor;
impl RoleTrustAnchor {
    pub fn verify(&self, _c: &[&[u8]], _m: &[u8], _s: &[u8], _n: UnixTime) -> Result<(), X509Error> { Err(X509Error::Unsupported) }
}
