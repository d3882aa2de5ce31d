//! Who is calling: the caller's platform, its verified roles and the roles
//! this platform maps them to. Built only by the framework, from the session
//! a call arrived on (or from the platform's own roles for a local call);
//! nothing on the wire can set it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use jadeite_security::{PlatformId, RoleName};

/// Where a call came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A component of this platform.
    Local,
    /// Another platform, authenticated by its session.
    Remote {
        platform: PlatformId,
        /// The name the platform announced inside its session, once known.
        name: Option<Arc<str>>,
    },
}

/// The caller of a service method. Service methods take it as their first
/// argument (`cx: &CallContext`) when they care who calls.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub(crate) caller: Caller,
    pub(crate) caller_id: PlatformId,
    pub(crate) verified: Arc<BTreeSet<RoleName>>,
    pub(crate) roles: Arc<BTreeSet<RoleName>>,
    pub(crate) deadline: Instant,
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
}

impl CallContext {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The calling platform's id (this platform's own for a local call).
    pub fn caller_platform(&self) -> PlatformId {
        self.caller_id
    }

    pub fn is_local(&self) -> bool {
        self.caller == Caller::Local
    }

    /// The caller's roles after this platform's role map: what access rules
    /// check.
    pub fn roles(&self) -> &BTreeSet<RoleName> {
        &self.roles
    }

    /// The roles the caller proved in its handshake, before role mapping
    /// (this platform's own provable roles for a local call).
    pub fn verified_roles(&self) -> &BTreeSet<RoleName> {
        &self.verified
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Local, or holding at least one verified role: the default access rule.
    pub fn is_trusted(&self) -> bool {
        self.is_local() || !self.verified.is_empty()
    }

    /// When the caller stops waiting; calls made from inside the method
    /// inherit it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The service and method being called.
    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn method(&self) -> &'static str {
        self.method
    }
}

/// Extra local roles granted for verified ones, as Jadex's role map: a
/// platform that verified `inventory` may treat the caller as `trusted` or
/// `stock-reader` too. Mapping never removes a role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    map: BTreeMap<RoleName, BTreeSet<RoleName>>,
}

impl RoleMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Callers verified as `from` also hold `to`.
    pub fn map(mut self, from: RoleName, to: RoleName) -> Self {
        self.map.entry(from).or_default().insert(to);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `verified` plus every role it maps to. One level deep: a mapped role
    /// is not mapped again, so the result never depends on map order.
    pub fn apply(&self, verified: &Arc<BTreeSet<RoleName>>) -> Arc<BTreeSet<RoleName>> {
        let mapped = verified
            .iter()
            .filter_map(|role| self.map.get(role))
            .flatten();
        let mut roles: Option<BTreeSet<RoleName>> = None;
        for role in mapped {
            if !verified.contains(role) {
                roles
                    .get_or_insert_with(|| (**verified).clone())
                    .insert(role.clone());
            }
        }
        roles.map_or_else(|| Arc::clone(verified), Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::new(name).expect("valid")
    }

    #[test]
    fn mapping_adds_roles_one_level_deep() {
        let map = RoleMap::new()
            .map(role("inventory"), role("trusted"))
            .map(role("trusted"), role("admin"));
        let verified = Arc::new(BTreeSet::from([role("inventory")]));
        let roles = map.apply(&verified);
        assert_eq!(*roles, BTreeSet::from([role("inventory"), role("trusted")]));
        let none = Arc::new(BTreeSet::new());
        assert!(map.apply(&none).is_empty());
        // Nothing to add: the same set, not a copy.
        let plain = Arc::new(BTreeSet::from([role("logistics")]));
        assert!(Arc::ptr_eq(&map.apply(&plain), &plain));
    }
}
