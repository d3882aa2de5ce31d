//! A platform: one process's identity, roles and transports, and the message
//! layer that keeps one secure session per peer platform over any number of
//! links.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jadeite_security::{
    ChannelConfig, CipherSuite, Credentials, HandshakeConfig, PlatformId, RoleName,
    UnauthenticatedPolicy,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{PlatformError, SendError};
use crate::frame::{Channel, FrameKind, RoutingHeader};
use crate::peer::{self, LinkId, PeerCommand, PeerHandle, Reply, SessionInfo};
use crate::service::{
    CallError, Component, ComponentBuilder, RoleMap, Scope, ServiceHandle, ServiceInterface,
    ServiceRef, Services,
};
use crate::throttle::{GuessLimits, GuessThrottle};
use crate::transport::{Connection, Scheme, Transport, TransportAddress};

/// Bounds of the message layer. The defaults suit a service platform.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Sends in flight to one peer (waiting for a session or being sealed);
    /// senders beyond wait (backpressure) until `send_timeout`, then fail
    /// with `QueueFull`.
    pub queue_per_peer: usize,
    /// How long `send` waits for a session before failing with `Unreachable`.
    pub send_timeout: Duration,
    /// A handshake not finished by then is abandoned.
    pub handshake_timeout: Duration,
    /// Time a new link has to introduce itself.
    pub hello_timeout: Duration,
    /// Handshakes being answered at once, per remote host and in total.
    pub handshakes_per_host: usize,
    pub handshakes_total: usize,
    /// First wait before redialing a lost link; doubles up to `redial_max`.
    pub redial_first: Duration,
    pub redial_max: Duration,
    /// Largest application payload one message may carry.
    pub max_payload: usize,
    pub guessing: GuessLimits,
    /// Deadline of a service call unless the client sets its own; also how
    /// long `Platform::find` waits for a service to appear.
    pub call_timeout: Duration,
    /// Peer platforms known at once (each with its actor and session state).
    /// A link from an unknown platform id beyond it is refused, so hellos
    /// with made-up ids cost bounded memory.
    pub max_peers: usize,
    /// A session with no way left to reach its peer (no link, relay or
    /// redial) and nothing heard from it for this long is given up, so peers
    /// that are gone for good do not hold a place in `max_peers`. If the peer
    /// comes back, a new handshake makes a new session.
    pub idle_session: Duration,
    /// Whether application messages (`Platform::send` by a peer) are
    /// delivered to [`Platform::receive`]. A platform that only serves and
    /// calls services turns them off: they are dropped on arrival, and an
    /// unread queue can then never hold up a peer's service traffic. When on,
    /// a full queue (1024) holds up the peers that send to it until it is read.
    pub application_messages: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue_per_peer: 1024,
            send_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(5),
            handshakes_per_host: 8,
            handshakes_total: 128,
            redial_first: Duration::from_millis(100),
            redial_max: Duration::from_secs(10),
            max_payload: 1024 * 1024 - 1024,
            guessing: GuessLimits::default(),
            call_timeout: Duration::from_secs(30),
            max_peers: 4096,
            idle_session: Duration::from_secs(600),
            application_messages: true,
        }
    }
}

/// A message received from a peer platform, with the roles that peer proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub from: PlatformId,
    /// Verified roles of the sending platform; empty for an unauthenticated peer.
    pub roles: Arc<BTreeSet<RoleName>>,
    pub payload: Vec<u8>,
}

/// Builds a [`Platform`].
pub struct PlatformBuilder {
    name: String,
    credentials: Credentials,
    suites: Vec<CipherSuite>,
    unauthenticated: UnauthenticatedPolicy,
    channel: ChannelConfig,
    transports: Vec<Arc<dyn Transport>>,
    listen: Vec<TransportAddress>,
    connect: Vec<TransportAddress>,
    limits: Limits,
    role_map: RoleMap,
}

impl std::fmt::Debug for PlatformBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformBuilder")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("connect", &self.connect)
            .finish_non_exhaustive()
    }
}

impl PlatformBuilder {
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn suites(mut self, suites: Vec<CipherSuite>) -> Self {
        self.suites = suites;
        self
    }

    pub fn unauthenticated(mut self, policy: UnauthenticatedPolicy) -> Self {
        self.unauthenticated = policy;
        self
    }

    pub fn channel(mut self, channel: ChannelConfig) -> Self {
        self.channel = channel;
        self
    }

    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transports.push(transport);
        self
    }

    pub fn listen(mut self, address: TransportAddress) -> Self {
        self.listen.push(address);
        self
    }

    /// A peer to dial once started, retrying with backoff until it answers;
    /// like every dialed link, it is redialed whenever it is lost.
    pub fn connect(mut self, address: TransportAddress) -> Self {
        self.connect.push(address);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets `Limits::application_messages`, leaving the other limits as
    /// they are.
    pub fn application_messages(mut self, on: bool) -> Self {
        self.limits.application_messages = on;
        self
    }

    /// Extra local roles for callers verified with certain roles.
    pub fn role_map(mut self, role_map: RoleMap) -> Self {
        self.role_map = role_map;
        self
    }

    /// Validates the configuration, binds every listen address and starts serving.
    pub async fn start(self) -> Result<Platform, PlatformError> {
        let id = PlatformId::random().map_err(|_| PlatformError::Randomness)?;
        let own_roles: BTreeSet<RoleName> = self
            .credentials
            .provable_roles()
            .map(|(role, _)| role.clone())
            .collect();
        let mut security = HandshakeConfig::new(id, self.credentials);
        security.suites = self.suites;
        security.unauthenticated = self.unauthenticated;
        security.channel = self.channel;
        security.validate()?;
        if self.limits.redial_first.is_zero() || self.limits.redial_first > self.limits.redial_max {
            return Err(PlatformError::Limits(
                "redial_first must be positive and at most redial_max",
            ));
        }
        if self.limits.handshakes_per_host == 0
            || self.limits.handshakes_total == 0
            || self.limits.max_peers == 0
        {
            return Err(PlatformError::Limits(
                "handshakes_per_host, handshakes_total and max_peers must be positive",
            ));
        }
        let transports: HashMap<Scheme, Arc<dyn Transport>> = self
            .transports
            .into_iter()
            .map(|t| (t.scheme(), t))
            .collect();
        let (deliveries_tx, deliveries_rx) = mpsc::channel(self.limits.queue_per_peer.max(64));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let services = Services::new(
            id,
            &self.name,
            own_roles,
            self.role_map,
            self.limits.call_timeout,
        );
        let inner = Arc::new(Inner {
            services,
            name: self.name,
            id,
            security: Arc::new(security),
            transports,
            peers: Mutex::new(HashMap::new()),
            deliveries: deliveries_tx,
            throttle: Mutex::new(GuessThrottle::new(self.limits.guessing.clone())),
            handshakes: HandshakeSlots::default(),
            limits: self.limits,
            next_link: AtomicU64::new(1),
            shutdown: shutdown_rx,
        });
        let platform = Platform {
            inner,
            deliveries: Arc::new(tokio::sync::Mutex::new(deliveries_rx)),
            shutdown: Arc::new(shutdown_tx),
            listening: Arc::new(Mutex::new(Vec::new())),
        };
        for address in &self.connect {
            platform.transport(address.scheme())?;
        }
        for address in &self.listen {
            platform.listen(address).await?;
        }
        for address in self.connect {
            tokio::spawn(dial_until_answered(
                Arc::downgrade(&platform.inner),
                address,
            ));
        }
        Ok(platform)
    }
}

/// A running platform. Cheap to clone; all clones are the same platform.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
    deliveries: Arc<tokio::sync::Mutex<mpsc::Receiver<Delivery>>>,
    shutdown: Arc<watch::Sender<bool>>,
    listening: Arc<Mutex<Vec<TransportAddress>>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("name", &self.inner.name)
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) id: PlatformId,
    pub(crate) security: Arc<HandshakeConfig>,
    transports: HashMap<Scheme, Arc<dyn Transport>>,
    peers: Mutex<HashMap<PlatformId, PeerHandle>>,
    pub(crate) deliveries: mpsc::Sender<Delivery>,
    pub(crate) throttle: Mutex<GuessThrottle>,
    pub(crate) handshakes: HandshakeSlots,
    pub(crate) limits: Limits,
    next_link: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) services: Services,
}

/// Counts handshakes being answered, per remote host and in total.
#[derive(Debug, Default)]
pub(crate) struct HandshakeSlots {
    total: AtomicUsize,
    per_host: Mutex<HashMap<String, usize>>,
}

impl HandshakeSlots {
    /// Takes a slot for `host`, or returns `false` if a bound is reached.
    pub(crate) fn acquire(&self, host: &str, per_host: usize, total: usize) -> bool {
        let mut hosts = lock(&self.per_host);
        let count = hosts.entry(host.to_owned()).or_insert(0);
        if *count >= per_host || self.total.load(Ordering::Relaxed) >= total {
            if *count == 0 {
                hosts.remove(host);
            }
            return false;
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn release(&self, host: &str) {
        let mut hosts = lock(&self.per_host);
        if let Some(count) = hosts.get_mut(host) {
            *count -= 1;
            if *count == 0 {
                hosts.remove(host);
            }
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The host part of a transport's remote address: guessing limits apply per host.
pub(crate) fn host_of(remote: &str) -> &str {
    remote.rsplit_once(':').map_or(remote, |(host, _)| host)
}

impl Platform {
    pub fn builder(name: impl Into<String>) -> PlatformBuilder {
        PlatformBuilder {
            name: name.into(),
            credentials: Credentials::new(),
            suites: CipherSuite::ALL.to_vec(),
            unauthenticated: UnauthenticatedPolicy::Refuse,
            channel: ChannelConfig::default(),
            transports: Vec::new(),
            listen: Vec::new(),
            connect: Vec::new(),
            limits: Limits::default(),
            role_map: RoleMap::new(),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub fn id(&self) -> PlatformId {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The addresses this platform listens on (with real ports).
    pub fn listen_addresses(&self) -> Vec<TransportAddress> {
        lock(&self.listening).clone()
    }

    fn transport(&self, scheme: Scheme) -> Result<Arc<dyn Transport>, PlatformError> {
        self.inner
            .transports
            .get(&scheme)
            .cloned()
            .ok_or(PlatformError::NoTransport(scheme.as_str()))
    }

    /// Starts listening on one more address.
    pub async fn listen(
        &self,
        address: &TransportAddress,
    ) -> Result<TransportAddress, PlatformError> {
        let mut listener = self.transport(address.scheme())?.listen(address).await?;
        let bound = listener.local_address().clone();
        lock(&self.listening).push(bound.clone());
        let inner = Arc::clone(&self.inner);
        let mut shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(connection) => {
                            let inner = Arc::clone(&inner);
                            tokio::spawn(async move {
                                let remote = connection.remote.clone();
                                if let Err(error) = open_link(&inner, connection, None).await {
                                    tracing::debug!(%remote, %error, "inbound link refused");
                                }
                            });
                        }
                        Err(error) => tracing::debug!(%error, "accept failed"),
                    },
                    _ = shutdown.changed() => break,
                }
            }
        });
        tracing::info!(platform = %self.inner.name, %bound, "listening");
        Ok(bound)
    }

    /// Opens a link to `address` and returns the id of the platform there.
    /// The secure session is made on the first message.
    pub async fn connect(&self, address: &TransportAddress) -> Result<PlatformId, PlatformError> {
        let connection = self.transport(address.scheme())?.connect(address).await?;
        open_link(&self.inner, connection, Some(address.clone())).await
    }

    /// Sends `payload` to platform `to`, making the session first if needed.
    /// Returns once the sealed message is handed to a link: delivery is
    /// at most once, never twice. The receiver gets it from [`Platform::receive`].
    pub async fn send(&self, to: PlatformId, payload: Vec<u8>) -> Result<(), SendError> {
        send_message(&self.inner, to, Channel::Application, payload).await
    }

    /// The next message from any peer; `None` after shutdown.
    pub async fn receive(&self) -> Option<Delivery> {
        self.deliveries.lock().await.recv().await
    }

    /// Peer platforms this platform keeps state for: those with a session,
    /// a link, a handshake or messages in flight.
    pub fn known_peers(&self) -> usize {
        lock(&self.inner.peers).len()
    }

    /// The verified roles of `peer`, if a session with it exists.
    pub async fn peer_roles(&self, peer: PlatformId) -> Option<Arc<BTreeSet<RoleName>>> {
        self.session_info(peer).await.map(|info| info.roles)
    }

    /// The session with `peer`, if one exists.
    pub async fn session_info(&self, peer: PlatformId) -> Option<SessionInfo> {
        let handle = lock(&self.inner.peers).get(&peer).cloned()?;
        let (reply, info) = oneshot::channel();
        handle.send(PeerCommand::Session { reply }).await.ok()?;
        info.await.ok().flatten()
    }

    /// Reaches `peer` through platform `via` (a relay) when there is no
    /// direct link. The service layer does this by itself for the platforms
    /// its peers announce as their neighbours.
    pub async fn route_via(&self, peer: PlatformId, via: PlatformId) {
        route_via(&self.inner, peer, Some(via)).await;
    }

    /// Stops listening, stops every component and ends every link and session.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.inner.services.shutdown();
        lock(&self.inner.peers).clear();
    }

    /// A component to start on this platform: name it, say which services it
    /// provides, then `start` it.
    pub fn spawn<C: Component>(&self, component: C) -> ComponentBuilder<C> {
        ComponentBuilder::new(self.clone(), component)
    }

    /// Every instance of service `C` known now within `scope`: this
    /// platform's first, then its peers' (announced when their sessions
    /// start and whenever they change).
    pub fn search<C: ServiceInterface>(&self, scope: Scope) -> Vec<ServiceRef> {
        self.inner.services.search(C::NAME, &scope)
    }

    /// A client for the first instance of `C` within `scope`, waiting up to
    /// `Limits::call_timeout` for one to be announced.
    pub async fn find<C: ServiceInterface>(&self, scope: Scope) -> Result<C, CallError> {
        self.find_within(scope, self.inner.services.call_timeout)
            .await
    }

    /// As [`Platform::find`], waiting at most `patience`. Looking on one
    /// platform (`Scope::Platform`) whose handshake failed gives up at once
    /// with `Unreachable` and the reason.
    pub async fn find_within<C: ServiceInterface>(
        &self,
        scope: Scope,
        patience: Duration,
    ) -> Result<C, CallError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut changes = self.inner.services.subscribe();
        loop {
            if let Some(target) = self.search::<C>(scope.clone()).into_iter().next() {
                return Ok(self.client(target));
            }
            if let Scope::Platform(platform) = scope
                && let Some(reason) = self.inner.services.refusal(platform)
            {
                return Err(CallError::Unreachable { platform, reason });
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(CallError::Shutdown),
                Err(_) => {
                    return Err(CallError::NoSuchService {
                        service: C::NAME.to_owned(),
                    });
                }
            }
        }
    }

    /// A client for a service instance found by [`Platform::search`].
    pub fn client<C: ServiceInterface>(&self, target: ServiceRef) -> C {
        C::from_handle(ServiceHandle::new::<C>(self.clone(), target))
    }
}

/// Sends one message on `channel` to `to`: waits for a send slot
/// (backpressure) and for the session, both bounded by the send timeout.
pub(crate) async fn send_message(
    inner: &Arc<Inner>,
    to: PlatformId,
    channel: Channel,
    payload: Vec<u8>,
) -> Result<(), SendError> {
    if payload.len() > inner.limits.max_payload {
        return Err(SendError::TooLarge {
            len: payload.len(),
            max: inner.limits.max_payload,
        });
    }
    if *inner.shutdown.borrow() {
        return Err(SendError::Shutdown);
    }
    let peer = peer_handle(inner, to);
    let deadline = Instant::now() + inner.limits.send_timeout;
    let slot = tokio::time::timeout_at(
        deadline.into(),
        Arc::clone(&peer.send_slots).acquire_owned(),
    )
    .await
    .map_err(|_| SendError::QueueFull(to))?
    .map_err(|_| SendError::Shutdown)?;
    let (reply, outcome) = oneshot::channel();
    let command = PeerCommand::Send {
        channel,
        payload,
        reply: Reply::new(reply, slot),
        deadline,
    };
    tokio::time::timeout_at(deadline.into(), peer.send(command))
        .await
        .map_err(|_| SendError::QueueFull(to))?
        .map_err(|_| SendError::Shutdown)?;
    outcome.await.unwrap_or(Err(SendError::Shutdown))
}

pub(crate) async fn route_via(inner: &Arc<Inner>, peer: PlatformId, via: Option<PlatformId>) {
    let _ = peer_handle(inner, peer)
        .send(PeerCommand::Route { via })
        .await;
}

impl Drop for Inner {
    fn drop(&mut self) {
        tracing::debug!(platform = %self.name, "platform dropped");
    }
}

impl Inner {
    pub(crate) fn peers(&self) -> &Mutex<HashMap<PlatformId, PeerHandle>> {
        &self.peers
    }
}

/// The handle of the actor for `peer`, started on first use.
pub(crate) fn peer_handle(inner: &Arc<Inner>, peer: PlatformId) -> PeerHandle {
    let mut peers = lock(&inner.peers);
    if let Some(handle) = peers.get(&peer).filter(|h| !h.is_closed()) {
        return handle.clone();
    }
    let handle = peer::spawn(Arc::downgrade(inner), peer);
    peers.insert(peer, handle.clone());
    handle
}

/// Hello exchange on a fresh connection, then hands it to the peer's actor.
async fn open_link(
    inner: &Arc<Inner>,
    mut connection: Connection,
    dialed: Option<TransportAddress>,
) -> Result<PlatformId, PlatformError> {
    let hello = RoutingHeader {
        kind: FrameKind::Hello,
        source: inner.id,
        destination: PlatformId([0; 16]),
    };
    connection
        .sink
        .send(hello.frame(inner.name.as_bytes()))
        .await?;
    let frame = tokio::time::timeout(inner.limits.hello_timeout, connection.source.recv())
        .await
        .map_err(|_| PlatformError::HelloTimeout)??
        .ok_or(PlatformError::BadHello)?;
    let (header, _) = RoutingHeader::decode(&frame).map_err(|_| PlatformError::BadHello)?;
    if header.kind != FrameKind::Hello {
        return Err(PlatformError::BadHello);
    }
    if header.source == inner.id {
        return Err(PlatformError::SelfConnection);
    }
    let peer = header.source;
    if !peer::has_room_for(inner, peer) {
        return Err(PlatformError::TooManyPeers);
    }
    let link = LinkId(inner.next_link.fetch_add(1, Ordering::Relaxed));
    peer::attach_link(Arc::clone(inner), peer, link, connection, dialed);
    Ok(peer)
}

/// Dials a configured peer until it answers once; from then on the link's
/// own redial keeps it up.
async fn dial_until_answered(inner: std::sync::Weak<Inner>, address: TransportAddress) {
    let mut wait = match inner.upgrade() {
        Some(inner) => inner.limits.redial_first,
        None => return,
    };
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if *strong.shutdown.borrow() {
            return;
        }
        match redial(&strong, &address).await {
            Ok(peer) => {
                tracing::info!(platform = %strong.name, %address, %peer, "connected");
                return;
            }
            Err(error) => {
                tracing::debug!(platform = %strong.name, %address, %error, "dial failed; retrying");
            }
        }
        let mut shutdown = strong.shutdown.clone();
        let max = strong.limits.redial_max;
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = (wait * 2).min(max);
    }
}

/// Dials `address` again for the actor of `peer` after a lost link.
pub(crate) async fn redial(
    inner: &Arc<Inner>,
    address: &TransportAddress,
) -> Result<PlatformId, PlatformError> {
    let transport = inner
        .transports
        .get(&address.scheme())
        .cloned()
        .ok_or(PlatformError::NoTransport(address.scheme().as_str()))?;
    let connection = transport.connect(address).await?;
    open_link(inner, connection, Some(address.clone())).await
}
