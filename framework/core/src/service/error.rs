//! What can go wrong with a call, told apart so that callers can react:
//! retry elsewhere, ask for a role, give up.

use std::fmt;
use std::time::Duration;

use jadeite_security::{PlatformId, RoleName};
use thiserror::Error;

/// Why a call failed. A call runs at most once: none of these means it ran
/// twice, and only `ConnectionLost` and `Timeout` leave open whether it ran.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CallError {
    #[error("no service {service} is known there")]
    NoSuchService { service: String },
    #[error("service {service} has no method {method}")]
    NoSuchMethod { service: String, method: String },
    #[error("platform {platform} is unreachable: {reason}")]
    Unreachable {
        platform: PlatformId,
        reason: String,
    },
    #[error(
        "the connection to platform {platform} was lost while the call was in flight; it may or may not have run"
    )]
    ConnectionLost { platform: PlatformId },
    #[error("no answer within the deadline of {after:?}")]
    Timeout { after: Duration },
    #[error("access to {service}.{method} denied: {required}")]
    AccessDenied {
        service: String,
        method: String,
        required: Required,
    },
    #[error("the remote side failed: {0}")]
    Remote(RemoteFailure),
    #[error("malformed data: {detail}")]
    Malformed { detail: String },
    #[error("the platform is shut down")]
    Shutdown,
}

/// What an access rule asked for that the caller did not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// A trusted caller: local, or with at least one verified role.
    Trusted,
    /// One of these roles.
    AnyOf(Vec<RoleName>),
}

impl fmt::Display for Required {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trusted => f.write_str("the caller is not trusted (no verified role)"),
            Self::AnyOf(roles) => {
                let names: Vec<&str> = roles.iter().map(RoleName::as_str).collect();
                match names.as_slice() {
                    [one] => write!(f, "missing role {one}"),
                    many => write!(f, "missing one of the roles {}", many.join(", ")),
                }
            }
        }
    }
}

/// A failure on the side that ran (or was to run) the method.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The method panicked; the component lives on, only this call failed.
    #[error("the service method panicked: {message}")]
    Panicked { message: String },
    /// The component's mailbox was full.
    #[error("the component is overloaded")]
    Busy,
    /// The component was killed before the call finished.
    #[error("the component was stopped")]
    Stopped,
}
