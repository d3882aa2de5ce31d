//! The four handshake messages: layout, limits and parsing.
//!
//! Each message is split into segments that the transcript absorbs one by one
//! (see docs/protocol.md); `decode` returns the segment boundaries with the
//! parsed fields so the state machine can hash exactly the bytes it received.

use crate::channel::PacketType;
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::jpake::{Round1, Round2, read_role_name, write_role};
use crate::primitives::X448_LEN;
use crate::roles::{MAX_AUTHENTICATORS, MAX_PASSWORD_ROLES, RoleKind, RoleName};
use crate::suite::CipherSuite;
use crate::x509::{MAX_CERT_LEN, MAX_CHAIN_LEN};

use super::PlatformId;

pub(crate) const VERSION: u8 = 1;
pub(crate) const NONCE_LEN: usize = 32;
pub(crate) const MAC_LEN: usize = 32;
/// Most suite names one offer may carry.
pub(crate) const MAX_OFFERED_SUITES: usize = 8;
pub(crate) const MAX_SIGNATURE_LEN: usize = 512;
/// No handshake message is longer; checked before anything else is parsed.
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 256 * 1024;

/// Message 1, initiator to responder.
#[derive(Debug)]
pub(crate) struct Offer<'a> {
    pub(crate) platform: PlatformId,
    /// Offered suites this build knows, in the initiator's order. Unknown names
    /// are skipped but still covered by the transcript.
    pub(crate) suites: Vec<CipherSuite>,
    pub(crate) x448: [u8; X448_LEN],
    pub(crate) jpake: Vec<Round1>,
    /// Length of the head segment (everything before the J-PAKE list).
    pub(crate) head_len: usize,
    pub(crate) bytes: &'a [u8],
}

/// Message 2, responder to initiator.
#[derive(Debug)]
pub(crate) struct Accept<'a> {
    pub(crate) platform: PlatformId,
    pub(crate) suite: Option<CipherSuite>,
    pub(crate) x448: [u8; X448_LEN],
    pub(crate) kem_public: &'a [u8],
    pub(crate) jpake: Vec<(Round1, Round2)>,
    pub(crate) head_len: usize,
    pub(crate) bytes: &'a [u8],
}

/// Message 3, initiator to responder.
#[derive(Debug)]
pub(crate) struct Finish<'a> {
    pub(crate) kem_ciphertext: &'a [u8],
    pub(crate) jpake: Vec<Round2>,
    pub(crate) authenticators: Vec<Authenticator<'a>>,
    pub(crate) finished: [u8; MAC_LEN],
    /// Boundaries: head | J-PAKE | authenticators | finished.
    pub(crate) head_len: usize,
    pub(crate) keys_len: usize,
    pub(crate) auth_len: usize,
    pub(crate) bytes: &'a [u8],
}

/// Message 4, responder to initiator.
#[derive(Debug)]
pub(crate) struct Confirm<'a> {
    pub(crate) authenticators: Vec<Authenticator<'a>>,
    pub(crate) finished: [u8; MAC_LEN],
    pub(crate) auth_len: usize,
    pub(crate) bytes: &'a [u8],
}

/// One role claim: a MAC (shared key, password) or a chain and signature.
#[derive(Debug)]
pub(crate) struct Authenticator<'a> {
    pub(crate) role: RoleName,
    pub(crate) proof: RoleProof<'a>,
}

#[derive(Debug)]
pub(crate) enum RoleProof<'a> {
    Mac {
        kind: RoleKind,
        tag: [u8; MAC_LEN],
    },
    Certificate {
        chain: Vec<&'a [u8]>,
        signature: &'a [u8],
    },
}

impl RoleProof<'_> {
    pub(crate) fn kind(&self) -> RoleKind {
        match self {
            Self::Mac { kind, .. } => *kind,
            Self::Certificate { .. } => RoleKind::Certificate,
        }
    }
}

fn start(bytes: &[u8], expected: PacketType) -> Result<Reader<'_>, DecodeError> {
    if bytes.len() > MAX_HANDSHAKE_MESSAGE_LEN {
        return Err(DecodeError::BadLength {
            field: "handshake message",
            len: bytes.len(),
            min: 1,
            max: MAX_HANDSHAKE_MESSAGE_LEN,
        });
    }
    let mut reader = Reader::new(bytes);
    let kind = reader.u8("message type")?;
    if kind != expected as u8 {
        return Err(DecodeError::UnknownType(kind));
    }
    Ok(reader)
}

fn read_suite_name<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    reader.vec8(1, CipherSuite::MAX_NAME_LEN, "suite name")
}

/// Role lists must not repeat a role: one J-PAKE run, one claim per role and kind.
fn reject_duplicates<T>(
    items: &[T],
    key: impl Fn(&T) -> (&RoleName, u8),
    field: &'static str,
) -> Result<(), DecodeError> {
    for (i, a) in items.iter().enumerate() {
        if items[..i].iter().any(|b| key(a) == key(b)) {
            return Err(DecodeError::Duplicate { field });
        }
    }
    Ok(())
}

impl<'a> Offer<'a> {
    pub(crate) fn encode(
        nonce: &[u8; NONCE_LEN],
        platform: &PlatformId,
        suites: &[CipherSuite],
        x448: &[u8; X448_LEN],
    ) -> Writer {
        let mut out = Writer::with_capacity(512);
        out.u8(PacketType::Offer as u8)
            .u8(VERSION)
            .bytes(nonce)
            .bytes(&platform.0);
        out.u8(suites.len() as u8);
        for suite in suites {
            out.vec8(suite.name().as_bytes());
        }
        out.bytes(x448);
        out
    }

    pub(crate) fn encode_jpake(out: &mut Writer, rounds: &[Round1]) {
        out.u8(rounds.len() as u8);
        for round in rounds {
            round.write(out);
        }
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = start(bytes, PacketType::Offer)?;
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        // The nonce only has to reach the transcript; nothing else reads it.
        r.take(NONCE_LEN, "nonce")?;
        let platform = PlatformId(r.array("platform id")?);
        let count = r.count(MAX_OFFERED_SUITES, "suite list")?;
        if count == 0 {
            return Err(DecodeError::BadLength {
                field: "suite list",
                len: 0,
                min: 1,
                max: MAX_OFFERED_SUITES,
            });
        }
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            let name = read_suite_name(&mut r)?;
            if names.contains(&name) {
                return Err(DecodeError::Duplicate {
                    field: "suite list",
                });
            }
            names.push(name);
        }
        let suites = names
            .iter()
            .filter_map(|name| CipherSuite::from_wire(name))
            .collect();
        let x448 = r.array("x448 share")?;
        let head_len = r.position();
        let count = r.count(MAX_PASSWORD_ROLES, "jpake round 1")?;
        let jpake = (0..count)
            .map(|_| Round1::read(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        reject_duplicates(&jpake, |j| (&j.role, 0), "jpake round 1")?;
        r.finish()?;
        Ok(Self {
            platform,
            suites,
            x448,
            jpake,
            head_len,
            bytes,
        })
    }
}

impl<'a> Accept<'a> {
    pub(crate) fn encode(
        nonce: &[u8; NONCE_LEN],
        platform: &PlatformId,
        suite: CipherSuite,
        x448: &[u8; X448_LEN],
        kem_public: &[u8],
    ) -> Writer {
        let mut out = Writer::with_capacity(2560);
        out.u8(PacketType::Accept as u8)
            .bytes(nonce)
            .bytes(&platform.0);
        out.vec8(suite.name().as_bytes())
            .bytes(x448)
            .vec16(kem_public);
        out
    }

    pub(crate) fn encode_jpake(out: &mut Writer, rounds: &[(Round1, Round2)]) {
        out.u8(rounds.len() as u8);
        for (round1, round2) in rounds {
            round1.write(out);
            round2.write(out);
        }
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = start(bytes, PacketType::Accept)?;
        r.take(NONCE_LEN, "nonce")?;
        let platform = PlatformId(r.array("platform id")?);
        let suite = CipherSuite::from_wire(read_suite_name(&mut r)?);
        let x448 = r.array("x448 share")?;
        let kem_public = r.vec16(1, 4096, "kem public key")?;
        let head_len = r.position();
        let count = r.count(MAX_PASSWORD_ROLES, "jpake rounds")?;
        let jpake = (0..count)
            .map(|_| {
                let round1 = Round1::read(&mut r)?;
                let round2 = Round2::read(&mut r)?;
                if round1.role != round2.role {
                    return Err(DecodeError::InvalidName {
                        field: "jpake round 2 role",
                    });
                }
                Ok((round1, round2))
            })
            .collect::<Result<Vec<_>, _>>()?;
        reject_duplicates(&jpake, |(j, _)| (&j.role, 0), "jpake rounds")?;
        r.finish()?;
        Ok(Self {
            platform,
            suite,
            x448,
            kem_public,
            jpake,
            head_len,
            bytes,
        })
    }
}

impl<'a> Finish<'a> {
    pub(crate) fn encode_head(kem_ciphertext: &[u8]) -> Writer {
        let mut out = Writer::with_capacity(4096);
        out.u8(PacketType::Finish as u8).vec16(kem_ciphertext);
        out
    }

    pub(crate) fn encode_jpake(out: &mut Writer, rounds: &[Round2]) {
        out.u8(rounds.len() as u8);
        for round in rounds {
            round.write(out);
        }
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = start(bytes, PacketType::Finish)?;
        let kem_ciphertext = r.vec16(1, 4096, "kem ciphertext")?;
        let head_len = r.position();
        let count = r.count(MAX_PASSWORD_ROLES, "jpake round 2")?;
        let jpake = (0..count)
            .map(|_| Round2::read(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        reject_duplicates(&jpake, |j| (&j.role, 0), "jpake round 2")?;
        let keys_len = r.position();
        let authenticators = read_authenticators(&mut r)?;
        let auth_len = r.position();
        let finished = r.array("finished")?;
        r.finish()?;
        Ok(Self {
            kem_ciphertext,
            jpake,
            authenticators,
            finished,
            head_len,
            keys_len,
            auth_len,
            bytes,
        })
    }
}

impl<'a> Confirm<'a> {
    pub(crate) fn encode_head() -> Writer {
        let mut out = Writer::with_capacity(1024);
        out.u8(PacketType::Confirm as u8);
        out
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = start(bytes, PacketType::Confirm)?;
        let authenticators = read_authenticators(&mut r)?;
        let auth_len = r.position();
        let finished = r.array("finished")?;
        r.finish()?;
        Ok(Self {
            authenticators,
            finished,
            auth_len,
            bytes,
        })
    }
}

pub(crate) fn write_authenticator_count(out: &mut Writer, count: usize) {
    out.u8(count as u8);
}

pub(crate) fn write_mac_authenticator(
    out: &mut Writer,
    kind: RoleKind,
    role: &RoleName,
    tag: &[u8; MAC_LEN],
) {
    out.u8(kind as u8);
    write_role(out, role);
    out.bytes(tag);
}

pub(crate) fn write_certificate_authenticator(
    out: &mut Writer,
    role: &RoleName,
    chain: &[&[u8]],
    signature: &[u8],
) {
    out.u8(RoleKind::Certificate as u8);
    write_role(out, role);
    out.u8(chain.len() as u8);
    for certificate in chain {
        out.vec16(certificate);
    }
    out.vec16(signature);
}

pub(crate) fn read_authenticators<'a>(
    r: &mut Reader<'a>,
) -> Result<Vec<Authenticator<'a>>, DecodeError> {
    let count = r.count(MAX_AUTHENTICATORS, "authenticators")?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = r.u8("role kind")?;
        let kind = RoleKind::from_wire(kind).ok_or(DecodeError::UnknownType(kind))?;
        let role = read_role_name(r)?;
        let proof = match kind {
            RoleKind::SharedKey | RoleKind::Password => RoleProof::Mac {
                kind,
                tag: r.array("role mac")?,
            },
            RoleKind::Certificate => {
                let len = r.count(MAX_CHAIN_LEN, "certificate chain")?;
                if len == 0 {
                    return Err(DecodeError::BadLength {
                        field: "certificate chain",
                        len,
                        min: 1,
                        max: MAX_CHAIN_LEN,
                    });
                }
                let chain = (0..len)
                    .map(|_| r.vec16(1, MAX_CERT_LEN, "certificate"))
                    .collect::<Result<_, _>>()?;
                let signature = r.vec16(1, MAX_SIGNATURE_LEN, "signature")?;
                RoleProof::Certificate { chain, signature }
            }
        };
        out.push(Authenticator { role, proof });
    }
    reject_duplicates(&out, |a| (&a.role, a.proof.kind() as u8), "authenticators")?;
    Ok(out)
}
