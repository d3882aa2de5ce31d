//! The service layer of one platform: its components and their services,
//! what every peer offers, the calls waiting for replies and the calls being
//! served. The message layer calls in here (synchronously, from a peer's
//! actor) for every service message and session event; answers that must go
//! back at once are returned for the actor to send, never sent from here,
//! because the actor must never wait on its own queue.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use jadeite_security::{PlatformId, RoleName};
use tokio::sync::{mpsc, oneshot, watch};

use super::context::{CallContext, Caller, RoleMap};
use super::error::CallError;
use super::wire::{self, CallHeader, Directory, Envelope, Fault, Neighbour, Offer, Outcome};
use super::{Access, BoxFuture, ComponentId, MethodInfo, Scope, ServiceRef, check_access};
use crate::codec::CodecError;
use crate::frame::Channel;
use crate::platform::{Inner, lock, send_message};

/// Longest deadline a peer may ask us to keep a call running for.
const MAX_REMOTE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

tokio::task_local! {
    /// The deadline of the call being served, inherited by calls made from it.
    pub(crate) static CURRENT_DEADLINE: Instant;
}

/// Runs one method call for a component: decoding is done, access granted.
pub(crate) type Job = BoxFuture<()>;

/// The type-erased server side of one service of one component.
pub(crate) trait Dispatcher: Send + Sync {
    fn dispatch(
        &self,
        method: usize,
        context: CallContext,
        arguments: &[u8],
    ) -> Result<BoxFuture<Result<Vec<u8>, CodecError>>, CodecError>;
}

pub(crate) struct LocalService {
    pub(crate) name: &'static str,
    pub(crate) methods: &'static [MethodInfo],
    pub(crate) dispatcher: Arc<dyn Dispatcher>,
}

impl LocalService {
    /// Whether a caller without any role can reach some method of it.
    fn is_open(&self) -> bool {
        self.methods
            .iter()
            .any(|m| m.access == Access::Unrestricted)
    }
}

pub(crate) struct LocalComponent {
    pub(crate) mailbox: mpsc::Sender<Job>,
    /// Becomes `true` when the component stops; running calls then answer `Stopped`.
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) services: Vec<LocalService>,
}

/// What this platform knows of one peer's service layer.
#[derive(Default)]
struct PeerView {
    /// Verified roles of the peer's session.
    roles: Arc<BTreeSet<RoleName>>,
    session: bool,
    reachable: bool,
    name: Option<Arc<str>>,
    services: Vec<(ComponentId, Arc<str>)>,
    /// Peers it announced as reachable through it.
    neighbours: Vec<PlatformId>,
    /// The relay we reach it through, if we asked for one.
    via: Option<PlatformId>,
}

#[derive(Default)]
struct State {
    components: BTreeMap<ComponentId, LocalComponent>,
    next_component: u64,
    peers: HashMap<PlatformId, PeerView>,
}

struct PendingCall {
    peer: PlatformId,
    reply: oneshot::Sender<Result<Vec<u8>, CallError>>,
}

pub(crate) struct Services {
    own_id: PlatformId,
    own_name: Arc<str>,
    /// The platform's own provable roles: what a local call carries.
    own_verified: Arc<BTreeSet<RoleName>>,
    own_roles: Arc<BTreeSet<RoleName>>,
    role_map: RoleMap,
    pub(crate) call_timeout: Duration,
    state: Mutex<State>,
    calls: Mutex<HashMap<u64, PendingCall>>,
    /// Calls from peers being served, by (caller, call id), to cancel them.
    serving: Mutex<HashMap<(PlatformId, u64), AbortHandle>>,
    next_call: AtomicU64,
    /// Bumped on every change of what `search` can find.
    changes: watch::Sender<u64>,
    /// Why the last handshake this platform started with a peer failed,
    /// until a session with it is made.
    refusals: Mutex<HashMap<PlatformId, String>>,
}

impl Services {
    pub(crate) fn new(
        own_id: PlatformId,
        own_name: &str,
        own_roles: BTreeSet<RoleName>,
        role_map: RoleMap,
        call_timeout: Duration,
    ) -> Self {
        let own_verified = Arc::new(own_roles);
        Self {
            own_id,
            own_name: Arc::from(own_name),
            own_roles: role_map.apply(&own_verified),
            own_verified,
            role_map,
            call_timeout,
            state: Mutex::new(State {
                next_component: 1,
                ..State::default()
            }),
            calls: Mutex::new(HashMap::new()),
            serving: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            changes: watch::channel(0).0,
            refusals: Mutex::new(HashMap::new()),
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    // -----------------------------------------------------------------------
    // Components
    // -----------------------------------------------------------------------

    pub(crate) fn next_component_id(&self) -> ComponentId {
        let mut state = lock(&self.state);
        let id = ComponentId(state.next_component);
        state.next_component += 1;
        id
    }

    pub(crate) fn register(&self, inner: &Arc<Inner>, id: ComponentId, component: LocalComponent) {
        lock(&self.state).components.insert(id, component);
        self.changed();
        self.announce(inner, None);
    }

    pub(crate) fn unregister(&self, inner: &Arc<Inner>, id: ComponentId) {
        if lock(&self.state).components.remove(&id).is_some() {
            self.changed();
            self.announce(inner, None);
        }
    }

    // -----------------------------------------------------------------------
    // Session events, from the peers' actors
    // -----------------------------------------------------------------------

    /// A handshake this platform started with `peer` failed.
    pub(crate) fn peer_refused(&self, peer: PlatformId, error: &crate::SendError) {
        let mut refusals = lock(&self.refusals);
        if refusals.len() < 4096 || refusals.contains_key(&peer) {
            refusals.insert(peer, error.to_string());
        }
        drop(refusals);
        self.changed();
    }

    /// Why `peer` cannot be reached, if its last handshake failed.
    pub(crate) fn refusal(&self, peer: PlatformId) -> Option<String> {
        lock(&self.refusals).get(&peer).cloned()
    }

    /// A session with `peer` is up: returns our directory for it.
    pub(crate) fn session_established(
        &self,
        inner: &Arc<Inner>,
        peer: PlatformId,
        roles: &Arc<BTreeSet<RoleName>>,
    ) -> Option<Vec<u8>> {
        lock(&self.refusals).remove(&peer);
        let mut state = lock(&self.state);
        let view = state.peers.entry(peer).or_default();
        view.roles = Arc::clone(roles);
        view.session = true;
        view.reachable = true;
        let directory = self.directory_for(&state, peer);
        drop(state);
        self.changed();
        // Our neighbours changed: tell the others.
        self.announce(inner, Some(peer));
        directory
    }

    /// A link to `peer` is back after all were lost; the session survived.
    pub(crate) fn peer_reachable(&self, inner: &Arc<Inner>, peer: PlatformId) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        let view = state.peers.get_mut(&peer)?;
        view.reachable = true;
        let directory = self.directory_for(&state, peer);
        drop(state);
        self.changed();
        self.announce(inner, Some(peer));
        directory
    }

    /// The last link to `peer` is gone: its services, and those of peers we
    /// reach through it, leave the search results, and calls waiting on any
    /// of them fail now rather than at their deadline.
    pub(crate) fn peer_unreachable(&self, inner: &Arc<Inner>, peer: PlatformId) {
        let mut lost = HashSet::from([peer]);
        {
            let mut state = lock(&self.state);
            for (id, view) in &mut state.peers {
                if *id == peer || view.via == Some(peer) {
                    view.reachable = false;
                    lost.insert(*id);
                }
            }
        }
        self.fail_calls_to(&lost);
        self.changed();
        self.announce(inner, None);
    }

    /// The peer's actor ended: nothing of it is kept.
    pub(crate) fn forget(&self, inner: &Arc<Inner>, peer: PlatformId) {
        let known = lock(&self.state).peers.remove(&peer).is_some();
        lock(&self.refusals).remove(&peer);
        self.fail_calls_to(&HashSet::from([peer]));
        if known {
            self.changed();
            self.announce(inner, None);
        }
    }

    fn fail_calls_to(&self, lost: &HashSet<PlatformId>) {
        let failed: Vec<(u64, PendingCall)> = {
            let mut calls = lock(&self.calls);
            let ids: Vec<u64> = calls
                .iter()
                .filter(|(_, call)| lost.contains(&call.peer))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| calls.remove(&id).map(|call| (id, call)))
                .collect()
        };
        for (_, call) in failed {
            let _ = call.reply.send(Err(CallError::ConnectionLost {
                platform: call.peer,
            }));
        }
    }

    /// Fails every waiting call: the platform is shutting down.
    pub(crate) fn shutdown(&self) {
        let calls: Vec<PendingCall> = lock(&self.calls).drain().map(|(_, call)| call).collect();
        for call in calls {
            let _ = call.reply.send(Err(CallError::Shutdown));
        }
        for (_, handle) in lock(&self.serving).drain() {
            handle.abort();
        }
    }

    /// Sends our directory to every peer with a session (but `except`), in
    /// the background: called where waiting is not allowed.
    fn announce(&self, inner: &Arc<Inner>, except: Option<PlatformId>) {
        let messages: Vec<(PlatformId, Vec<u8>)> = {
            let state = lock(&self.state);
            state
                .peers
                .iter()
                .filter(|(id, view)| Some(**id) != except && view.session && view.reachable)
                .filter_map(|(id, _)| Some((*id, self.directory_for(&state, *id)?)))
                .collect()
        };
        if messages.is_empty() {
            return;
        }
        let inner = Arc::downgrade(inner);
        tokio::spawn(async move {
            for (peer, message) in messages {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                if let Err(error) = send_message(&strong, peer, Channel::Service, message).await {
                    tracing::debug!(%peer, %error, "directory not sent");
                }
            }
        });
    }

    /// What `peer` may see: every service if it is trusted, else only
    /// services with an unrestricted method; neighbours only for the trusted.
    fn directory_for(&self, state: &State, peer: PlatformId) -> Option<Vec<u8>> {
        let trusted = state.peers.get(&peer).is_some_and(|v| !v.roles.is_empty());
        let services = state
            .components
            .iter()
            .flat_map(|(id, component)| {
                component
                    .services
                    .iter()
                    .filter(|service| trusted || service.is_open())
                    .map(|service| Offer {
                        component: id.0,
                        service: service.name.to_owned(),
                    })
            })
            .take(wire::MAX_DIRECTORY_SERVICES)
            .collect();
        let neighbours = if trusted {
            state
                .peers
                .iter()
                .filter(|(id, view)| {
                    **id != peer && view.session && view.reachable && view.via.is_none()
                })
                .map(|(id, view)| Neighbour {
                    id: id.0,
                    name: view.name.as_deref().unwrap_or_default().to_owned(),
                })
                .take(wire::MAX_NEIGHBOURS)
                .collect()
        } else {
            Vec::new()
        };
        let directory = Envelope::Directory(Directory {
            platform_name: self.own_name.to_string(),
            services,
            neighbours,
        });
        wire::message(&directory, &[])
            .inspect_err(|error| tracing::warn!(%error, "directory not encoded"))
            .ok()
    }

    // -----------------------------------------------------------------------
    // Service messages, from the peers' actors
    // -----------------------------------------------------------------------

    /// Handles one service message from `peer`; returns an answer to send
    /// back at once (a refused call), if any.
    pub(crate) fn on_message(
        &self,
        inner: &Arc<Inner>,
        peer: PlatformId,
        roles: &Arc<BTreeSet<RoleName>>,
        bytes: &[u8],
    ) -> Option<Vec<u8>> {
        let (envelope, body) = match wire::parse(bytes) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::debug!(%peer, %error, "malformed service message dropped");
                return None;
            }
        };
        match envelope {
            Envelope::Call(header) => self.serve_remote(inner, peer, roles, header, body),
            Envelope::Reply { id, outcome } => {
                self.complete(peer, id, outcome, body);
                None
            }
            Envelope::Cancel { id } => {
                if let Some(handle) = lock(&self.serving).remove(&(peer, id)) {
                    handle.abort();
                }
                None
            }
            Envelope::Directory(directory) => {
                self.on_directory(inner, peer, directory);
                None
            }
        }
    }

    fn complete(&self, peer: PlatformId, id: u64, outcome: Outcome, body: &[u8]) {
        let call = {
            let mut calls = lock(&self.calls);
            // Only the platform the call went to may answer it.
            if calls.get(&id).is_none_or(|call| call.peer != peer) {
                tracing::debug!(%peer, id, "reply to no call of this peer dropped");
                return;
            }
            calls.remove(&id)
        };
        if let Some(call) = call {
            let result = match outcome {
                Outcome::Ok => Ok(body.to_vec()),
                Outcome::Failed(fault) => Err(fault.into_call_error()),
            };
            let _ = call.reply.send(result);
        }
    }

    fn serve_remote(
        &self,
        inner: &Arc<Inner>,
        peer: PlatformId,
        roles: &Arc<BTreeSet<RoleName>>,
        header: CallHeader,
        arguments: &[u8],
    ) -> Option<Vec<u8>> {
        let timeout = Duration::from_millis(header.timeout_ms).min(MAX_REMOTE_TIMEOUT);
        let name = lock(&self.state)
            .peers
            .get(&peer)
            .and_then(|view| view.name.clone());
        let context = CallContext {
            caller: Caller::Remote {
                platform: peer,
                name,
            },
            caller_id: peer,
            verified: Arc::clone(roles),
            roles: self.role_map.apply(roles),
            deadline: Instant::now() + timeout,
            service: "",
            method: "",
        };
        let key = (peer, header.id);
        let (abort, registration) = AbortHandle::new_pair();
        let reply = ReplyTo::Remote {
            inner: Arc::downgrade(inner),
            peer,
            id: header.id,
        };
        let refused = match self.prepare(
            ComponentId(header.component),
            &header.service,
            &header.method,
            context,
            arguments,
            reply,
            Some(registration),
        ) {
            Ok((mailbox, job)) => {
                lock(&self.serving).insert(key, abort);
                match mailbox.try_send(job) {
                    Ok(()) => return None,
                    Err(mpsc::error::TrySendError::Full(_)) => Fault::Busy,
                    Err(mpsc::error::TrySendError::Closed(_)) => Fault::NoSuchService {
                        service: header.service,
                    },
                }
            }
            Err(fault) => fault,
        };
        lock(&self.serving).remove(&key);
        reply_message(header.id, Err(refused))
    }

    /// Looks the method up, checks access and decodes the arguments; returns
    /// the component's mailbox and the job to put into it.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        component: ComponentId,
        service: &str,
        method: &str,
        mut context: CallContext,
        arguments: &[u8],
        reply: ReplyTo,
        abort: Option<AbortRegistration>,
    ) -> Result<(mpsc::Sender<Job>, Job), Fault> {
        let no_service = || Fault::NoSuchService {
            service: service.to_owned(),
        };
        let (mailbox, stopped, provided, methods, dispatcher) = {
            let state = lock(&self.state);
            let found = state.components.get(&component).ok_or_else(no_service)?;
            let provided = found
                .services
                .iter()
                .find(|s| s.name == service)
                .ok_or_else(no_service)?;
            (
                found.mailbox.clone(),
                found.stopped.clone(),
                provided.name,
                provided.methods,
                Arc::clone(&provided.dispatcher),
            )
        };
        let (index, info) = methods
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == method)
            .ok_or_else(|| Fault::NoSuchMethod {
                service: service.to_owned(),
                method: method.to_owned(),
            })?;
        if let Some(required) = check_access(info.access, context.is_trusted(), &context.roles) {
            tracing::info!(caller = %context.caller_id, service, method, %required, "call refused");
            return Err(Fault::access_denied(service, method, &required));
        }
        context.service = provided;
        context.method = info.name;
        let deadline = context.deadline;
        let work = dispatcher
            .dispatch(index, context, arguments)
            .map_err(|error| Fault::malformed(&error))?;
        Ok((mailbox, job(work, deadline, stopped, reply, abort)))
    }

    fn on_directory(&self, inner: &Arc<Inner>, peer: PlatformId, directory: Directory) {
        let mut route = Vec::new();
        let mut unroute = Vec::new();
        let mut lost = HashSet::new();
        {
            let mut state = lock(&self.state);
            let neighbours: Vec<PlatformId> = directory
                .neighbours
                .iter()
                .map(Neighbour::platform)
                .filter(|id| *id != self.own_id && *id != peer)
                .collect();
            let view = state.peers.entry(peer).or_default();
            view.name = Some(Arc::from(directory.platform_name.as_str()));
            view.services = directory
                .services
                .into_iter()
                .map(|offer| {
                    (
                        ComponentId(offer.component),
                        Arc::from(offer.service.as_str()),
                    )
                })
                .collect();
            let trusted = !view.roles.is_empty();
            view.neighbours = if trusted { neighbours } else { Vec::new() };
            let announced: HashSet<PlatformId> = view.neighbours.iter().copied().collect();
            for neighbour in &announced {
                let known = state.peers.entry(*neighbour).or_default();
                if known.reachable {
                    continue;
                }
                if known.session && known.via == Some(peer) {
                    // Back behind the same relay; the end-to-end session held.
                    known.reachable = true;
                } else {
                    known.via = Some(peer);
                    route.push(*neighbour);
                }
            }
            for (id, view) in &mut state.peers {
                if view.via == Some(peer) && !announced.contains(id) {
                    view.via = None;
                    unroute.push(*id);
                    if view.reachable {
                        view.reachable = false;
                        lost.insert(*id);
                    }
                }
            }
        }
        self.fail_calls_to(&lost);
        self.changed();
        if !route.is_empty() || !unroute.is_empty() {
            let platform = Arc::downgrade(inner);
            tokio::spawn(async move {
                let changes = route
                    .into_iter()
                    .map(|id| (id, Some(peer)))
                    .chain(unroute.into_iter().map(|id| (id, None)));
                for (neighbour, via) in changes {
                    let Some(inner) = platform.upgrade() else {
                        return;
                    };
                    tracing::debug!(%neighbour, relay = %peer, routed = via.is_some(), "route through a relay changed");
                    crate::platform::route_via(&inner, neighbour, via).await;
                }
            });
        }
    }

    // -----------------------------------------------------------------------
    // Calls made by this platform
    // -----------------------------------------------------------------------

    /// Every service named `service` within `scope`: this platform's first,
    /// then the peers', by platform name.
    pub(crate) fn search(&self, service: &str, scope: &Scope) -> Vec<ServiceRef> {
        let state = lock(&self.state);
        let in_scope = |id: PlatformId, name: Option<&str>| match scope {
            Scope::Local => id == self.own_id,
            Scope::Platform(wanted) => id == *wanted,
            Scope::Named(wanted) => name == Some(wanted.as_str()),
            Scope::Global => true,
        };
        let mut found = Vec::new();
        if in_scope(self.own_id, Some(&self.own_name)) {
            for (id, component) in &state.components {
                if component.services.iter().any(|s| s.name == service) {
                    found.push(ServiceRef {
                        platform: self.own_id,
                        platform_name: Arc::clone(&self.own_name),
                        component: *id,
                        service: Arc::from(service),
                    });
                }
            }
        }
        let mut remote: Vec<ServiceRef> = state
            .peers
            .iter()
            .filter(|(_, view)| view.session && view.reachable)
            .filter(|(id, view)| in_scope(**id, view.name.as_deref()))
            .flat_map(|(id, view)| {
                view.services
                    .iter()
                    .filter(|(_, name)| &**name == service)
                    .map(|(component, name)| ServiceRef {
                        platform: *id,
                        platform_name: view.name.clone().unwrap_or_else(|| Arc::from("")),
                        component: *component,
                        service: Arc::clone(name),
                    })
            })
            .collect();
        remote.sort_by(|a, b| {
            (&a.platform_name, a.platform, a.component).cmp(&(
                &b.platform_name,
                b.platform,
                b.component,
            ))
        });
        found.extend(remote);
        found
    }

    pub(crate) fn is_local(&self, platform: PlatformId) -> bool {
        platform == self.own_id
    }

    /// Runs a call on a component of this platform, with its own roles.
    pub(crate) async fn call_local(
        &self,
        target: &ServiceRef,
        method: &'static str,
        arguments: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, CallError> {
        let context = CallContext {
            caller: Caller::Local,
            caller_id: self.own_id,
            verified: Arc::clone(&self.own_verified),
            roles: Arc::clone(&self.own_roles),
            deadline,
            service: "",
            method: "",
        };
        let (reply, outcome) = oneshot::channel();
        let (abort, registration) = AbortHandle::new_pair();
        // Dropping the caller's future cancels the work.
        let _cancel_on_drop = AbortOnDrop(abort);
        let (mailbox, job) = self
            .prepare(
                target.component,
                &target.service,
                method,
                context,
                &arguments,
                ReplyTo::Local(reply),
                Some(registration),
            )
            .map_err(Fault::into_call_error)?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout_at(deadline.into(), mailbox.send(job)).await {
            Err(_) => return Err(CallError::Remote(super::RemoteFailure::Busy)),
            Ok(Err(_)) => {
                return Err(CallError::NoSuchService {
                    service: target.service.to_string(),
                });
            }
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline.into(), outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Remote(super::RemoteFailure::Stopped)),
            Err(_) => Err(CallError::Timeout { after: timeout }),
        }
    }

    /// Sends a call to a peer and waits for its reply.
    pub(crate) async fn call_remote(
        &self,
        inner: &Arc<Inner>,
        target: &ServiceRef,
        method: &'static str,
        arguments: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, CallError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let peer = target.platform;
        let header = Envelope::Call(CallHeader {
            id,
            component: target.component.0,
            service: target.service.to_string(),
            method: method.to_owned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        });
        let message = wire::message(&header, &arguments).map_err(|error| CallError::Malformed {
            detail: error.to_string(),
        })?;
        let (reply, outcome) = oneshot::channel();
        lock(&self.calls).insert(id, PendingCall { peer, reply });
        let mut pending = PendingGuard {
            inner: Arc::downgrade(inner),
            peer,
            id,
            sent: false,
        };
        match tokio::time::timeout_at(
            deadline.into(),
            send_message(inner, peer, Channel::Service, message),
        )
        .await
        {
            Err(_) => return Err(CallError::Timeout { after: timeout }),
            Ok(Err(error)) => return Err(CallError::from_send(peer, error)),
            Ok(Ok(())) => pending.sent = true,
        }
        let result = match tokio::time::timeout_at(deadline.into(), outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Shutdown),
            Err(_) => Err(CallError::Timeout { after: timeout }),
        };
        if !matches!(result, Err(CallError::Timeout { .. })) {
            // Answered (or failed for good): nothing left to cancel.
            pending.sent = false;
        }
        result
    }
}

/// Forgets a call that is no longer awaited and, if it went out without
/// an answer, asks the peer to stop working on it.
struct PendingGuard {
    inner: Weak<Inner>,
    peer: PlatformId,
    id: u64,
    sent: bool,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        lock(&inner.services.calls).remove(&self.id);
        if !self.sent {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (peer, id) = (self.peer, self.id);
        let Ok(message) = wire::message(&Envelope::Cancel { id }, &[]) else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = send_message(&inner, peer, Channel::Service, message).await {
                tracing::debug!(%peer, id, %error, "cancel not sent");
            }
        });
    }
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the outcome of a served call goes.
enum ReplyTo {
    Local(oneshot::Sender<Result<Vec<u8>, CallError>>),
    Remote {
        inner: Weak<Inner>,
        peer: PlatformId,
        id: u64,
    },
}

impl ReplyTo {
    async fn send(self, outcome: Result<Vec<u8>, Fault>) {
        match self {
            Self::Local(reply) => {
                let _ = reply.send(outcome.map_err(Fault::into_call_error));
            }
            Self::Remote { inner, peer, id } => {
                let Some(inner) = inner.upgrade() else { return };
                lock(&inner.services.serving).remove(&(peer, id));
                let max = inner.limits.max_payload;
                let outcome = match outcome {
                    Ok(result) if result.len() + 64 > max => Err(Fault::Malformed {
                        detail: format!(
                            "the result of {} bytes exceeds the message limit of {max}",
                            result.len()
                        ),
                    }),
                    other => other,
                };
                let Some(message) = reply_message(id, outcome) else {
                    return;
                };
                if let Err(error) = send_message(&inner, peer, Channel::Service, message).await {
                    tracing::debug!(%peer, id, %error, "reply not sent");
                }
            }
        }
    }
}

fn reply_message(id: u64, outcome: Result<Vec<u8>, Fault>) -> Option<Vec<u8>> {
    let encoded = match outcome {
        Ok(result) => wire::message(
            &Envelope::Reply {
                id,
                outcome: Outcome::Ok,
            },
            &result,
        ),
        Err(fault) => wire::message(
            &Envelope::Reply {
                id,
                outcome: Outcome::Failed(fault),
            },
            &[],
        ),
    };
    encoded
        .inspect_err(|error| tracing::warn!(%error, "reply not encoded"))
        .ok()
}

/// One served call: the method, bounded by the deadline and the component's
/// life, isolated from panics, answered exactly once unless cancelled.
fn job(
    work: BoxFuture<Result<Vec<u8>, CodecError>>,
    deadline: Instant,
    mut stopped: watch::Receiver<bool>,
    reply: ReplyTo,
    abort: Option<AbortRegistration>,
) -> Job {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let run = async move {
        let outcome = tokio::select! {
            biased;
            result = AssertUnwindSafe(CURRENT_DEADLINE.scope(deadline, work)).catch_unwind() => {
                match result {
                    Ok(Ok(bytes)) => Ok(bytes),
                    Ok(Err(error)) => Err(Fault::malformed(&error)),
                    Err(panic) => Err(Fault::Panicked { message: panic_message(panic.as_ref()) }),
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => Err(Fault::Timeout {
                after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            _ = stopped.wait_for(|stopped| *stopped) => Err(Fault::Stopped),
        };
        reply.send(outcome).await;
    };
    match abort {
        Some(registration) => Box::pin(Abortable::new(run, registration).map(|_| ())),
        None => Box::pin(run),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl CallError {
    fn from_send(peer: PlatformId, error: crate::SendError) -> Self {
        use crate::SendError;
        match error {
            SendError::TooLarge { len, max } => Self::Malformed {
                detail: format!("the call of {len} bytes exceeds the message limit of {max}"),
            },
            SendError::Shutdown => Self::Shutdown,
            other => Self::Unreachable {
                platform: peer,
                reason: other.to_string(),
            },
        }
    }
}
