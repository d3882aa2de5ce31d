//! Services: plain Rust traits marked `#[service]`, provided by components
//! and called across platforms with the caller's verified roles.
//!
//! The `#[service]` macro turns a trait into three things: the trait itself
//! (methods returning `Send` futures), `<Trait>Client` (a typed proxy whose
//! methods return [`Call`]) and `<Trait>Server` (the server-side dispatch, a
//! [`ServiceDispatch`] for every type implementing the trait). Everything
//! else lives here: access rules, the call context, the directory of
//! services, and the calls themselves.

mod call;
mod component;
mod context;
mod error;
mod registry;
mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jadeite_security::{PlatformId, RoleName};

use crate::codec::CodecError;

pub use call::{Call, ServiceHandle};
pub use component::{
    Component, ComponentBuilder, ComponentContext, ComponentError, ComponentHandle,
};
pub use context::{CallContext, Caller, RoleMap};
pub use error::{CallError, RemoteFailure, Required};
pub(crate) use registry::Services;

/// What arguments and results of service methods must be: encodable,
/// decodable without borrowing, and sendable to the component's task.
pub trait Wire: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> Wire for T {}

/// A future boxed so that it can be stored and sent between tasks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Who may call a method. Checked before the method runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The default, as in Jadex: the caller is trusted, i.e. local or
    /// holding at least one role verified in the handshake.
    Trusted,
    /// The caller holds at least one of these roles (after role mapping).
    AnyRole(&'static [&'static str]),
    /// Anyone who reaches the platform, unauthenticated peers included.
    Unrestricted,
}

/// A method of a service interface as the dispatch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    pub name: &'static str,
    pub access: Access,
}

/// A service interface, implemented by the generated `<Trait>Client`.
pub trait ServiceInterface: Sized + Send + Sync + 'static {
    /// The name the service is found and called by, the trait's name unless
    /// `#[service(name = "...")]` says otherwise.
    const NAME: &'static str;
    /// Every method, in declaration order; calls name them by index into this.
    const METHODS: &'static [MethodInfo];

    fn from_handle(handle: ServiceHandle) -> Self;
    fn handle(&self) -> &ServiceHandle;
}

/// The server side of a service interface for component type `C`,
/// implemented by the generated `<Trait>Server` for every `C: Trait`.
pub trait ServiceDispatch<C>: 'static {
    type Interface: ServiceInterface;

    /// Decodes the arguments of method `method` (an index into
    /// `Interface::METHODS`) and returns the future that runs it and encodes
    /// its result. Arguments that do not decode fail here, before the method
    /// runs.
    fn dispatch(
        component: &Arc<C>,
        method: usize,
        context: CallContext,
        arguments: &[u8],
    ) -> Result<BoxFuture<Result<Vec<u8>, CodecError>>, CodecError>;
}

/// One component of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(pub u64);

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One service instance somewhere: found by [`Platform::search`](crate::Platform::search),
/// turned into a client by [`Platform::client`](crate::Platform::client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    pub platform: PlatformId,
    /// The platform's name as it announced it inside its session (local: our own).
    pub platform_name: Arc<str>,
    pub component: ComponentId,
    pub service: Arc<str>,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} ({}) component {}",
            self.service, self.platform_name, self.platform, self.component
        )
    }
}

/// Where to look for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// This platform only.
    Local,
    /// The platform with this id.
    Platform(PlatformId),
    /// Platforms that announced this name.
    Named(String),
    /// This platform and every platform it has a session with, directly or
    /// through a relay.
    Global,
}

/// The roles in `access` that `roles` lacks, or `None` if the rule admits a
/// caller with these roles and trust.
pub(crate) fn check_access(
    access: Access,
    trusted: bool,
    roles: &std::collections::BTreeSet<RoleName>,
) -> Option<Required> {
    match access {
        Access::Unrestricted => None,
        Access::Trusted => (!trusted).then_some(Required::Trusted),
        Access::AnyRole(wanted) => {
            if wanted.iter().any(|role| roles.contains(*role)) {
                None
            } else {
                Some(Required::AnyOf(
                    wanted
                        .iter()
                        .filter_map(|role| RoleName::new(*role).ok())
                        .collect(),
                ))
            }
        }
    }
}
