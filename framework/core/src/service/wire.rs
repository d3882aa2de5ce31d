//! The service layer's messages, carried on the service channel of a secure
//! session. A message is an [`Envelope`] followed, for calls and successful
//! replies, by the encoded arguments or result, so those are never copied
//! into a second buffer. Roles never travel here: they come from the session.

use serde::{Deserialize, Serialize};

use jadeite_security::{PlatformId, RoleName};

use super::error::{CallError, RemoteFailure, Required};
use crate::codec::{self, CodecError};

/// Longest service, method or platform name accepted from a peer.
pub(crate) const MAX_NAME_LEN: usize = 256;
/// Most services one directory may announce.
pub(crate) const MAX_DIRECTORY_SERVICES: usize = 4096;
/// Most neighbours one directory may announce.
pub(crate) const MAX_NEIGHBOURS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Envelope {
    /// Followed by the encoded argument tuple.
    Call(CallHeader),
    /// Followed by the encoded result if `outcome` is `Ok`.
    Reply { id: u64, outcome: Outcome },
    /// The caller gave up (dropped its future or timed out): stop the work.
    Cancel { id: u64 },
    /// Everything the sender offers to this receiver, replacing what it
    /// announced before.
    Directory(Directory),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallHeader {
    pub(crate) id: u64,
    pub(crate) component: u64,
    pub(crate) service: String,
    pub(crate) method: String,
    /// What is left of the caller's deadline, in milliseconds: clocks of two
    /// machines are not comparable, durations are.
    pub(crate) timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Ok,
    Failed(Fault),
}

/// A failed call as it travels back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fault {
    NoSuchService {
        service: String,
    },
    NoSuchMethod {
        service: String,
        method: String,
    },
    AccessDenied {
        service: String,
        method: String,
        /// Empty: a trusted caller was required; otherwise one of these roles.
        any_of: Vec<String>,
    },
    Panicked {
        message: String,
    },
    Malformed {
        detail: String,
    },
    Timeout {
        after_ms: u64,
    },
    Busy,
    Stopped,
}

impl Fault {
    pub(crate) fn access_denied(service: &str, method: &str, required: &Required) -> Self {
        Self::AccessDenied {
            service: service.to_owned(),
            method: method.to_owned(),
            any_of: match required {
                Required::Trusted => Vec::new(),
                Required::AnyOf(roles) => roles.iter().map(|r| r.as_str().to_owned()).collect(),
            },
        }
    }

    pub(crate) fn malformed(error: &CodecError) -> Self {
        Self::Malformed {
            detail: error.to_string(),
        }
    }

    pub(crate) fn into_call_error(self) -> CallError {
        match self {
            Self::NoSuchService { service } => CallError::NoSuchService { service },
            Self::NoSuchMethod { service, method } => CallError::NoSuchMethod { service, method },
            Self::AccessDenied {
                service,
                method,
                any_of,
            } => CallError::AccessDenied {
                service,
                method,
                required: if any_of.is_empty() {
                    Required::Trusted
                } else {
                    // Names the peer sent that are not role names are dropped, not shown.
                    Required::AnyOf(
                        any_of
                            .into_iter()
                            .filter_map(|r| RoleName::new(r).ok())
                            .collect(),
                    )
                },
            },
            Self::Panicked { message } => CallError::Remote(RemoteFailure::Panicked { message }),
            Self::Malformed { detail } => CallError::Malformed { detail },
            Self::Timeout { after_ms } => CallError::Timeout {
                after: std::time::Duration::from_millis(after_ms),
            },
            Self::Busy => CallError::Remote(RemoteFailure::Busy),
            Self::Stopped => CallError::Remote(RemoteFailure::Stopped),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Directory {
    pub(crate) platform_name: String,
    pub(crate) services: Vec<Offer>,
    /// Platforms the sender has a direct session with and will relay to.
    pub(crate) neighbours: Vec<Neighbour>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Offer {
    pub(crate) component: u64,
    pub(crate) service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Neighbour {
    pub(crate) id: [u8; 16],
    pub(crate) name: String,
}

impl Neighbour {
    pub(crate) fn platform(&self) -> PlatformId {
        PlatformId(self.id)
    }
}

/// An envelope followed by `body` (already encoded), as one message.
pub(crate) fn message(envelope: &Envelope, body: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64 + body.len());
    codec::encode_into(envelope, &mut out)?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits a message into its envelope and body; rejects names and lists
/// beyond the limits, so what a peer sends costs bounded memory to keep.
pub(crate) fn parse(bytes: &[u8]) -> Result<(Envelope, &[u8]), CodecError> {
    let (envelope, body) = codec::decode_prefix::<Envelope>(bytes)?;
    let too_long = |name: &str| name.len() > MAX_NAME_LEN;
    let bad = match &envelope {
        Envelope::Call(header) => too_long(&header.service) || too_long(&header.method),
        Envelope::Directory(directory) => {
            too_long(&directory.platform_name)
                || directory.services.len() > MAX_DIRECTORY_SERVICES
                || directory.neighbours.len() > MAX_NEIGHBOURS
                || directory
                    .services
                    .iter()
                    .any(|offer| too_long(&offer.service))
                || directory.neighbours.iter().any(|n| too_long(&n.name))
        }
        Envelope::Reply { .. } | Envelope::Cancel { .. } => false,
    };
    if bad {
        return Err(CodecError::Decode(
            "a name or list beyond its limit".to_owned(),
        ));
    }
    let trailing = matches!(
        &envelope,
        Envelope::Cancel { .. }
            | Envelope::Directory(_)
            | Envelope::Reply {
                outcome: Outcome::Failed(_),
                ..
            }
    ) && !body.is_empty();
    if trailing {
        return Err(CodecError::TrailingBytes(body.len()));
    }
    Ok((envelope, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<(Envelope, Vec<u8>)> {
        vec![
            (
                Envelope::Call(CallHeader {
                    id: 7,
                    component: 1,
                    service: "Payment".into(),
                    method: "charge".into(),
                    timeout_ms: 30_000,
                }),
                codec::encode(&(1u64, 250u64)).expect("encodes"),
            ),
            (
                Envelope::Reply {
                    id: 7,
                    outcome: Outcome::Ok,
                },
                codec::encode(&"receipt").expect("encodes"),
            ),
            (
                Envelope::Reply {
                    id: 8,
                    outcome: Outcome::Failed(Fault::AccessDenied {
                        service: "Payment".into(),
                        method: "charge".into(),
                        any_of: vec!["checkout".into()],
                    }),
                },
                Vec::new(),
            ),
            (Envelope::Cancel { id: 9 }, Vec::new()),
            (
                Envelope::Directory(Directory {
                    platform_name: "payments".into(),
                    services: vec![Offer {
                        component: 1,
                        service: "Payment".into(),
                    }],
                    neighbours: vec![Neighbour {
                        id: [3; 16],
                        name: "logistics".into(),
                    }],
                }),
                Vec::new(),
            ),
        ]
    }

    #[test]
    fn messages_round_trip() {
        for (envelope, body) in samples() {
            let bytes = message(&envelope, &body).expect("encodes");
            let (parsed, rest) = parse(&bytes).expect("parses");
            assert_eq!((parsed, rest), (envelope, body.as_slice()));
        }
    }

    #[test]
    fn truncated_and_random_messages_are_errors() {
        for (envelope, body) in samples() {
            let bytes = message(&envelope, &body).expect("encodes");
            let envelope_len = bytes.len() - body.len();
            for cut in 0..envelope_len {
                assert!(parse(&bytes[..cut]).is_err(), "{envelope:?} cut at {cut}");
            }
        }
        // Deterministic pseudo-random bytes: never a panic, never a huge allocation.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let len = (state % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn oversized_names_and_trailing_bytes_are_rejected() {
        let long = Envelope::Call(CallHeader {
            id: 1,
            component: 1,
            service: "x".repeat(MAX_NAME_LEN + 1),
            method: "m".into(),
            timeout_ms: 1,
        });
        let bytes = message(&long, &[]).expect("encodes");
        assert!(parse(&bytes).is_err());
        let cancel = message(&Envelope::Cancel { id: 1 }, &[0]).expect("encodes");
        assert_eq!(parse(&cancel), Err(CodecError::TrailingBytes(1)));
    }
}
