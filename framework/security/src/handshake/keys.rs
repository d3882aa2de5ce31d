//! Key schedule and role authenticators.
//!
//! ```text
//! ikm    = H("hybrid-ikm", suite, X448 secret, KEM secret, both X448 shares, KEM key, KEM ciphertext)
//! prk    = MAC(key = transcript hash, "extract", ikm)                 -- salt is the transcript
//! binder = MAC(prk, "expand", "role binder"); finished keys likewise
//! role key       = MAC(key = role secret, "role-key", kind, role, binder)
//! authenticator  = MAC(role key, "role-auth", direction, role, transcript hash)
//! ```

use std::collections::BTreeSet;

use rustls_pki_types::UnixTime;
use subtle::ConstantTimeEq;

use crate::channel::EpochSecrets;
use crate::codec::Writer;
use crate::error::HandshakeError;
use crate::jpake::Position;
use crate::primitives::{HASH_LEN, Secret, X448_LEN, hash, mac};
use crate::roles::{Credentials, RoleKind, RoleName};
use crate::suite::CipherSuite;

use super::SecurityEvent;
use super::messages::{
    Authenticator, MAC_LEN, RoleProof, write_authenticator_count, write_certificate_authenticator,
    write_mac_authenticator,
};

/// Secrets of one completed key exchange.
pub(crate) struct SessionKeys {
    prk: Secret<HASH_LEN>,
    binder: Secret<HASH_LEN>,
}

impl SessionKeys {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn derive(
        suite: CipherSuite,
        transcript: &[u8; HASH_LEN],
        x448_shared: &Secret<X448_LEN>,
        kem_shared: &Secret<32>,
        x448_initiator: &[u8; X448_LEN],
        x448_responder: &[u8; X448_LEN],
        kem_public: &[u8],
        kem_ciphertext: &[u8],
    ) -> Self {
        // Both secrets and every public value: breaking one of X448 or the KEM is not enough.
        let ikm = Secret::new(hash(&[
            b"jadeite/v1/hybrid-ikm",
            suite.name().as_bytes(),
            x448_shared.expose(),
            kem_shared.expose(),
            x448_initiator,
            x448_responder,
            kem_public,
            kem_ciphertext,
        ]));
        let prk = mac(transcript, &[b"jadeite/v1/extract", ikm.expose()]);
        let binder = expand(&prk, b"role binder");
        Self { prk, binder }
    }

    pub(crate) fn finished(
        &self,
        sender: Position,
        transcript: &[u8; HASH_LEN],
    ) -> Secret<MAC_LEN> {
        let key = expand(
            &self.prk,
            direction(sender, b"finished initiator", b"finished responder"),
        );
        mac(key.expose(), &[b"jadeite/v1/finished", transcript])
    }

    pub(crate) fn into_epoch_secrets(self) -> EpochSecrets {
        EpochSecrets::expand(&self.prk)
    }

    fn role_key(&self, secret: &[u8], kind: RoleKind, role: &RoleName) -> Secret<HASH_LEN> {
        mac(
            secret,
            &[
                b"jadeite/v1/role-key",
                &[kind as u8],
                role.as_str().as_bytes(),
                self.binder.expose(),
            ],
        )
    }

    fn role_mac(
        &self,
        secret: &[u8],
        kind: RoleKind,
        role: &RoleName,
        sender: Position,
        transcript: &[u8; HASH_LEN],
    ) -> Secret<MAC_LEN> {
        let key = self.role_key(secret, kind, role);
        mac(
            key.expose(),
            &[
                b"jadeite/v1/role-auth",
                direction_label(sender),
                role.as_str().as_bytes(),
                transcript,
            ],
        )
    }
}

fn expand(prk: &Secret<HASH_LEN>, label: &[u8]) -> Secret<HASH_LEN> {
    mac(prk.expose(), &[b"jadeite/v1/expand", label])
}

fn direction<'a>(sender: Position, initiator: &'a [u8], responder: &'a [u8]) -> &'a [u8] {
    match sender {
        Position::Initiator => initiator,
        Position::Responder => responder,
    }
}

fn direction_label(sender: Position) -> &'static [u8] {
    direction(sender, b"initiator", b"responder")
}

/// What an X.509 role's key signs.
fn certificate_message(
    sender: Position,
    role: &RoleName,
    transcript: &[u8; HASH_LEN],
) -> [u8; HASH_LEN] {
    hash(&[
        b"jadeite/v1/x509-auth",
        direction_label(sender),
        role.as_str().as_bytes(),
        transcript,
    ])
}

fn password_key<'a>(
    keys: &'a [(RoleName, Secret<HASH_LEN>)],
    role: &RoleName,
) -> Option<&'a Secret<HASH_LEN>> {
    keys.iter().find(|(r, _)| r == role).map(|(_, key)| key)
}

/// Writes one authenticator per role this side can prove: every shared key
/// and certificate, and every password role J-PAKE ran for.
pub(crate) fn write_authenticators(
    out: &mut Writer,
    credentials: &Credentials,
    sender: Position,
    transcript: &[u8; HASH_LEN],
    keys: &SessionKeys,
    password_keys: &[(RoleName, Secret<HASH_LEN>)],
) -> Result<(), HandshakeError> {
    let count =
        credentials.shared_keys.len() + password_keys.len() + credentials.certificates.len();
    write_authenticator_count(out, count);
    for (role, key) in &credentials.shared_keys {
        let tag = keys.role_mac(key.expose(), RoleKind::SharedKey, role, sender, transcript);
        write_mac_authenticator(out, RoleKind::SharedKey, role, tag.expose());
    }
    for (role, key) in password_keys {
        let tag = keys.role_mac(key.expose(), RoleKind::Password, role, sender, transcript);
        write_mac_authenticator(out, RoleKind::Password, role, tag.expose());
    }
    for (role, identity) in &credentials.certificates {
        let signature = identity
            .sign(&certificate_message(sender, role, transcript))
            .map_err(|_| HandshakeError::Signing(role.clone()))?;
        let chain: Vec<&[u8]> = identity.chain().iter().map(|c| c.as_ref()).collect();
        write_certificate_authenticator(out, role, &chain, &signature);
    }
    Ok(())
}

/// The peer's roles whose authenticators verify. Claims for roles this side
/// cannot verify are ignored; failures become events.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_authenticators(
    authenticators: &[Authenticator<'_>],
    credentials: &Credentials,
    sender: Position,
    transcript: &[u8; HASH_LEN],
    keys: &SessionKeys,
    password_keys: &[(RoleName, Secret<HASH_LEN>)],
    now: UnixTime,
    events: &mut Vec<SecurityEvent>,
) -> BTreeSet<RoleName> {
    let mut verified = BTreeSet::new();
    for Authenticator { role, proof } in authenticators {
        let kind = proof.kind();
        let outcome = match proof {
            RoleProof::Mac { kind, tag } => {
                let secret = match kind {
                    RoleKind::SharedKey => credentials.shared_keys.get(role).map(|k| k.expose()),
                    _ => password_key(password_keys, role).map(|k| k.expose().as_slice()),
                };
                let Some(secret) = secret else { continue };
                let expected = keys.role_mac(secret, *kind, role, sender, transcript);
                if bool::from(expected.expose().ct_eq(tag)) {
                    Ok(())
                } else {
                    Err("MAC does not verify".to_owned())
                }
            }
            RoleProof::Certificate { chain, signature } => {
                let Some(anchor) = credentials.trust_anchors.get(role) else {
                    continue;
                };
                anchor
                    .verify(
                        chain,
                        &certificate_message(sender, role, transcript),
                        signature,
                        now,
                    )
                    .map_err(|error| error.to_string())
            }
        };
        match outcome {
            Ok(()) => {
                verified.insert(role.clone());
            }
            Err(reason) if kind == RoleKind::Password => {
                tracing::warn!(role = %role, "password role failed to verify (possible online guess)");
                let _ = reason;
                events.push(SecurityEvent::PasswordRoleFailed { role: role.clone() });
            }
            Err(reason) => {
                tracing::warn!(role = %role, ?kind, %reason, "role claim rejected");
                events.push(SecurityEvent::RoleRejected {
                    role: role.clone(),
                    kind,
                    reason,
                });
            }
        }
    }
    verified
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::codec::Reader;
    use crate::test_pki;
    use crate::x509::{CertificateIdentity, RoleTrustAnchor};

    fn keys() -> SessionKeys {
        let secret = Secret::new([1u8; X448_LEN]);
        SessionKeys::derive(
            CipherSuite::ALL[0],
            &[2u8; HASH_LEN],
            &secret,
            &Secret::new([3u8; 32]),
            &[4u8; X448_LEN],
            &[5u8; X448_LEN],
            b"kem",
            b"ct",
        )
    }

    /// A certificate authenticator lifted from one transcript does not verify
    /// for another (signature_over_other_transcript).
    #[test]
    fn signature_over_other_transcript_is_not_verified() {
        let ca = test_pki::ca("ca", test_pki::KeyAlg::Ed25519);
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let leaf = test_pki::leaf(&ca, "leaf", test_pki::KeyAlg::Ed25519, now - day, now + day);
        let role = RoleName::new("checkout").expect("role");
        let prover = Credentials::new().with_certificate(
            role.clone(),
            CertificateIdentity::from_der(vec![leaf.cert_der], &leaf.pkcs8_der).expect("identity"),
        );
        let verifier = Credentials::new().with_trust_anchor(
            role.clone(),
            RoleTrustAnchor::from_der(ca.cert_der).expect("anchor"),
        );
        let keys = keys();
        let mut out = Writer::with_capacity(1024);
        write_authenticators(
            &mut out,
            &prover,
            Position::Initiator,
            &[7u8; HASH_LEN],
            &keys,
            &[],
        )
        .expect("sign");
        let bytes = out.into_vec();
        let mut reader = Reader::new(&bytes);
        let authenticators =
            super::super::messages::read_authenticators(&mut reader).expect("decode");

        let verify =
            |transcript: &[u8; HASH_LEN], sender: Position, events: &mut Vec<SecurityEvent>| {
                verify_authenticators(
                    &authenticators,
                    &verifier,
                    sender,
                    transcript,
                    &keys,
                    &[],
                    UnixTime::now(),
                    events,
                )
            };
        let mut events = Vec::new();
        assert_eq!(
            verify(&[7u8; HASH_LEN], Position::Initiator, &mut events),
            BTreeSet::from([role.clone()])
        );
        assert!(events.is_empty());
        assert!(verify(&[8u8; HASH_LEN], Position::Initiator, &mut events).is_empty());
        // Nor for the other direction over the same transcript.
        assert!(verify(&[7u8; HASH_LEN], Position::Responder, &mut events).is_empty());
        assert_eq!(events.len(), 2);
    }

    /// A MAC authenticator verifies only under the same binder (session keys).
    #[test]
    fn mac_authenticator_is_bound_to_the_session() {
        let role = RoleName::new("inventory").expect("role");
        let key = crate::roles::SharedKey::new(&[9u8; 32]).expect("key");
        let a = keys().role_mac(
            key.expose(),
            RoleKind::SharedKey,
            &role,
            Position::Initiator,
            &[0u8; HASH_LEN],
        );
        let other = SessionKeys::derive(
            CipherSuite::ALL[0],
            &[2u8; HASH_LEN],
            &Secret::new([1u8; X448_LEN]),
            &Secret::new([0u8; 32]),
            &[4u8; X448_LEN],
            &[5u8; X448_LEN],
            b"kem",
            b"ct",
        );
        let b = other.role_mac(
            key.expose(),
            RoleKind::SharedKey,
            &role,
            Position::Initiator,
            &[0u8; HASH_LEN],
        );
        assert_ne!(a, b);
    }
}
