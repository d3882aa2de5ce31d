//! One actor per peer platform. It owns the secure session with that peer,
//! the handshake in progress, the links that reach it and the messages
//! waiting for a session. Everything about one peer happens in this one task,
//! so no lock is held across a cryptographic operation.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jadeite_security::{
    Handshake, HandshakeError, Now, PacketType, PlatformId, Received, RoleName, SecureSession,
    SecurityEvent,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use jadeite_security::channel::{DATA_HEADER_LEN, DATA_OVERHEAD};

use crate::error::SendError;
use crate::frame::{Channel, FrameKind, ROUTING_HEADER_LEN, RoutingHeader};
use crate::platform::{Delivery, Inner, host_of, lock, peer_handle, redial};
use crate::throttle::Verdict;
use crate::transport::{Connection, TransportAddress};

/// The way into a peer's actor. `send_slots` bounds the sends in flight to
/// the peer (queued for a session or being sealed): a sender beyond the bound
/// waits for a slot, which is the layer's backpressure.
#[derive(Clone)]
pub(crate) struct PeerHandle {
    commands: mpsc::Sender<PeerCommand>,
    pub(crate) send_slots: Arc<Semaphore>,
}

impl std::ops::Deref for PeerHandle {
    type Target = mpsc::Sender<PeerCommand>;
    fn deref(&self) -> &Self::Target {
        &self.commands
    }
}

/// Where a send's outcome goes; holds the send's slot until it is answered.
pub(crate) struct Reply {
    outcome: oneshot::Sender<Result<(), SendError>>,
    _slot: OwnedSemaphorePermit,
}

impl Reply {
    pub(crate) fn new(
        outcome: oneshot::Sender<Result<(), SendError>>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            outcome,
            _slot: slot,
        }
    }

    fn send(self, result: Result<(), SendError>) {
        let _ = self.outcome.send(result);
    }
}

/// What a platform knows of its session with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The peer's verified roles; empty for an unauthenticated peer.
    pub roles: Arc<BTreeSet<RoleName>>,
    pub suite: jadeite_security::CipherSuite,
    /// Epoch this side seals under; grows with every completed rekey.
    pub send_epoch: u32,
    /// Direct links to the peer now open.
    pub links: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LinkId(pub(crate) u64);

/// Commands queued to a peer's actor.
pub(crate) enum PeerCommand {
    Send {
        channel: Channel,
        payload: Vec<u8>,
        reply: Reply,
        deadline: Instant,
    },
    LinkUp {
        link: LinkId,
        outgoing: mpsc::Sender<Vec<u8>>,
        remote: String,
        dialed: Option<TransportAddress>,
        /// The link belongs to a relay that forwards this peer's frames.
        relayed: bool,
        close: Arc<Notify>,
    },
    Frame {
        link: LinkId,
        header: RoutingHeader,
        frame: Vec<u8>,
    },
    LinkDown {
        link: LinkId,
    },
    /// A frame for this peer that another platform asked us to relay.
    Forward {
        frame: Vec<u8>,
    },
    /// Reach this peer through platform `via` when there is no direct link
    /// (`None`: not through a relay any more).
    Route {
        via: Option<PlatformId>,
    },
    Session {
        reply: oneshot::Sender<Option<SessionInfo>>,
    },
}

const COMMAND_QUEUE: usize = 1024;
const LINK_QUEUE: usize = 1024;
/// Data frames that arrive before our side of the handshake completes (they
/// can overtake the Confirm on another link) are held, up to this many.
const EARLY_FRAMES: usize = 256;
/// Distinct relayed sources one link may introduce: forged source ids cost bounded memory.
const RELAYED_SOURCES_PER_LINK: usize = 256;
/// Longest abort reason read from a peer.
const MAX_ABORT_REASON: usize = 256;

struct Link {
    id: LinkId,
    outgoing: mpsc::Sender<Vec<u8>>,
    remote: String,
    dialed: Option<TransportAddress>,
    /// A relay's link to us, carrying this peer's frames among others.
    relayed: bool,
    /// An authenticated frame of this peer's session arrived on it. The hello
    /// that opened a link is unauthenticated: anyone can claim any platform
    /// id, so data goes only on links the session itself has shown to reach
    /// the peer.
    proven: bool,
    opened: Instant,
    /// A handshake was started on it because the peer never answered its
    /// link proof (the peer lost its side of the session).
    rehandshaken: bool,
    /// Ends the link's reader (and so the connection).
    close: Arc<Notify>,
}

struct HandshakeRun {
    machine: Handshake,
    deadline: Instant,
    /// The host that made us answer, holding a handshake slot; `None` when we initiated.
    slot_host: Option<String>,
    /// The link the peer's Offer came on, when we answer.
    link: Option<LinkId>,
}

struct Session {
    session: SecureSession,
    roles: Arc<BTreeSet<RoleName>>,
}

struct Queued {
    channel: Channel,
    payload: Vec<u8>,
    reply: Reply,
    deadline: Instant,
}

struct PeerActor {
    inner: Weak<Inner>,
    own: PlatformId,
    peer: PlatformId,
    links: Vec<Link>,
    next_link: usize,
    via: Option<PlatformId>,
    handshake: Option<HandshakeRun>,
    session: Option<Session>,
    queue: VecDeque<Queued>,
    early: VecDeque<(LinkId, Vec<u8>)>,
    redial: Option<(TransportAddress, Instant, Duration)>,
    /// When the session last showed the peer alive (made, or a frame opened).
    last_heard: Instant,
}

pub(crate) fn spawn(inner: Weak<Inner>, peer: PlatformId) -> PeerHandle {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (own, slots) = inner.upgrade().map_or((PlatformId([0; 16]), 1), |i| {
        (i.id, i.limits.queue_per_peer)
    });
    let actor = PeerActor {
        inner,
        own,
        peer,
        links: Vec::new(),
        next_link: 0,
        via: None,
        handshake: None,
        session: None,
        queue: VecDeque::new(),
        early: VecDeque::new(),
        redial: None,
        last_heard: Instant::now(),
    };
    tokio::spawn(actor.run(rx));
    PeerHandle {
        commands: tx,
        send_slots: Arc::new(Semaphore::new(slots.max(1))),
    }
}

/// Starts the reader and writer tasks of a link to `peer`.
pub(crate) fn attach_link(
    inner: Arc<Inner>,
    peer: PlatformId,
    link: LinkId,
    connection: Connection,
    dialed: Option<TransportAddress>,
) {
    let Connection {
        mut sink,
        mut source,
        remote,
    } = connection;
    let (outgoing, mut to_write) = mpsc::channel::<Vec<u8>>(LINK_QUEUE);
    tokio::spawn(async move {
        while let Some(frame) = to_write.recv().await {
            if let Err(error) = sink.send(frame).await {
                tracing::debug!(%error, "link write failed");
                break;
            }
        }
        let _ = sink.close().await;
    });
    let own = inner.id;
    let mut shutdown = inner.shutdown.clone();
    let weak = Arc::downgrade(&inner);
    let close = Arc::new(Notify::new());
    tokio::spawn(async move {
        let up = |dialed: Option<TransportAddress>, relayed| PeerCommand::LinkUp {
            link,
            outgoing: outgoing.clone(),
            remote: remote.clone(),
            dialed,
            relayed,
            close: Arc::clone(&close),
        };
        let Some(handle) = deliver(&inner, peer, up(dialed, false)).await else {
            return;
        };
        drop(inner);
        let mut relayed: HashSet<PlatformId> = HashSet::new();
        loop {
            let frame = tokio::select! {
                frame = source.recv() => frame,
                _ = shutdown.changed() => break,
                () = close.notified() => {
                    tracing::debug!(%remote, "link closed by its peer's actor");
                    break;
                }
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%remote, %error, "link closed on a bad frame");
                    break;
                }
            };
            let Ok((header, _)) = RoutingHeader::decode(&frame) else {
                tracing::debug!(%remote, "link closed on a malformed routing header");
                break;
            };
            let Some(inner) = weak.upgrade() else { break };
            if header.kind == FrameKind::Hello {
                continue;
            }
            if header.destination != own {
                // Relay: forward untouched to a peer we already know, never create one.
                let target = lock(inner.peers()).get(&header.destination).cloned();
                if let Some(target) = target {
                    let _ = target.try_send(PeerCommand::Forward { frame });
                }
                continue;
            }
            let target = if header.source == peer {
                handle.clone()
            } else {
                // A frame relayed by this link's peer from another platform: the
                // reply goes back the same way.
                let first = !relayed.contains(&header.source);
                if first
                    && (relayed.len() >= RELAYED_SOURCES_PER_LINK
                        || !has_room_for(&inner, header.source))
                {
                    continue;
                }
                if first {
                    relayed.insert(header.source);
                    if deliver(&inner, header.source, up(None, true))
                        .await
                        .is_none()
                    {
                        continue;
                    }
                }
                peer_handle(&inner, header.source)
            };
            drop(inner);
            if target
                .send(PeerCommand::Frame {
                    link,
                    header,
                    frame,
                })
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = handle.send(PeerCommand::LinkDown { link }).await;
        if let Some(inner) = weak.upgrade() {
            for source in relayed {
                let target = lock(inner.peers()).get(&source).cloned();
                if let Some(target) = target {
                    let _ = target.send(PeerCommand::LinkDown { link }).await;
                }
            }
        }
    });
}

/// Sends `command` to `peer`'s actor, starting a new one if the old one
/// ended in the meantime (an idle actor ends itself). The handle it used.
async fn deliver(inner: &Arc<Inner>, peer: PlatformId, command: PeerCommand) -> Option<PeerHandle> {
    let handle = peer_handle(inner, peer);
    match handle.send(command).await {
        Ok(()) => Some(handle),
        Err(mpsc::error::SendError(command)) => {
            let handle = peer_handle(inner, peer);
            handle.send(command).await.ok().map(|()| handle)
        }
    }
}

/// Whether one more peer fits `Limits::max_peers` (a known peer always does).
pub(crate) fn has_room_for(inner: &Inner, peer: PlatformId) -> bool {
    let peers = lock(inner.peers());
    peers.contains_key(&peer) || peers.len() < inner.limits.max_peers
}

impl PeerActor {
    async fn run(mut self, mut commands: mpsc::Receiver<PeerCommand>) {
        loop {
            let wake = self.next_wakeup();
            let command = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => Some(command),
                    None => break,
                },
                _ = sleep_until(wake) => None,
            };
            let Some(inner) = self.inner.upgrade() else {
                break;
            };
            if *inner.shutdown.borrow() {
                break;
            }
            let mut next = match command {
                Some(command) => Some(command),
                None => {
                    self.on_timer(&inner).await;
                    None
                }
            };
            while let Some(command) = next {
                next = self.handle(&inner, command, &mut commands).await;
            }
            if self.is_idle(&inner) && commands.is_empty() {
                // Nothing to keep: a hello whose link is gone, a handshake
                // that failed, a session unheard of for `idle_session` with
                // no way to reach the peer. Ending here keeps ids of peers
                // long gone from piling up.
                commands.close();
                if commands.is_empty() {
                    let mut peers = lock(inner.peers());
                    if peers
                        .get(&self.peer)
                        .is_some_and(|handle| handle.is_closed())
                    {
                        peers.remove(&self.peer);
                    }
                    drop(peers);
                    inner.services.forget(&inner, self.peer);
                    return;
                }
            }
        }
        for queued in self.queue.drain(..) {
            queued.reply.send(Err(SendError::Shutdown));
        }
    }

    fn is_idle(&self, inner: &Inner) -> bool {
        (self.unreachable_and_quiet() && self.session.is_none())
            || self
                .idle_until(inner)
                .is_some_and(|at| Instant::now() >= at)
    }

    /// No link, route, redial, handshake or waiting message.
    fn unreachable_and_quiet(&self) -> bool {
        self.links.is_empty()
            && self.via.is_none()
            && self.handshake.is_none()
            && self.queue.is_empty()
            && self.early.is_empty()
            && self.redial.is_none()
    }

    /// When a session that cannot reach its peer is given up.
    fn idle_until(&self, inner: &Inner) -> Option<Instant> {
        (self.session.is_some() && self.unreachable_and_quiet())
            .then(|| self.last_heard + inner.limits.idle_session)
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let session = self.session.as_ref().and_then(|s| s.session.next_timeout());
        let handshake = self.handshake.as_ref().map(|h| h.deadline);
        let queue = self.queue.front().map(|q| q.deadline);
        let redial = self.redial.as_ref().map(|(_, at, _)| *at);
        let unproven = self
            .links
            .iter()
            .filter(|l| !l.proven && !l.relayed)
            .map(|l| l.opened + self.unproven_link_lifetime())
            .min();
        let idle = self
            .inner
            .upgrade()
            .and_then(|inner| self.idle_until(&inner));
        [session, handshake, queue, redial, unproven, idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long a link may stay without an authenticated frame: time to say
    /// hello and finish a handshake. A half-open connection is closed then.
    fn unproven_link_lifetime(&self) -> Duration {
        self.inner
            .upgrade()
            .map_or(Duration::from_secs(15), |inner| {
                inner.limits.hello_timeout + inner.limits.handshake_timeout
            })
    }

    /// Handles `command`; returns a command it took from `commands` while
    /// batching sends but could not add to the batch.
    async fn handle(
        &mut self,
        inner: &Arc<Inner>,
        command: PeerCommand,
        commands: &mut mpsc::Receiver<PeerCommand>,
    ) -> Option<PeerCommand> {
        match command {
            PeerCommand::Send {
                channel,
                payload,
                reply,
                deadline,
            } => {
                if self.session.is_some() && self.can_send_data() {
                    return self
                        .send_batch(inner, channel, payload, reply, commands)
                        .await;
                }
                self.enqueue(inner, channel, payload, reply, deadline).await;
            }
            PeerCommand::LinkUp {
                link,
                outgoing,
                remote,
                dialed,
                relayed,
                close,
            } => {
                // The dialing side makes the session at once, so that the
                // service layers exchange their directories without waiting
                // for a first message.
                let eager = dialed.is_some();
                if dialed.is_some() {
                    self.redial = None;
                }
                self.links.push(Link {
                    id: link,
                    outgoing,
                    remote,
                    dialed,
                    relayed,
                    proven: false,
                    opened: Instant::now(),
                    rehandshaken: false,
                    close,
                });
                if self.session.is_some() {
                    // Show the peer that this link reaches us, so that it
                    // sends on it too (and we do once it answers in kind).
                    self.prove_link(inner, link).await;
                }
                self.start_handshake(inner, eager).await;
            }
            PeerCommand::LinkDown { link } => self.on_link_down(inner, link),
            PeerCommand::Frame {
                link,
                header,
                frame,
            } => self.on_frame(inner, link, header, frame).await,
            PeerCommand::Forward { frame } => {
                self.transmit_on(inner, frame, true).await;
            }
            PeerCommand::Route { via } => {
                self.via = via;
                self.start_handshake(inner, via.is_some()).await;
            }
            PeerCommand::Session { reply } => {
                let _ = reply.send(self.session.as_ref().map(|s| SessionInfo {
                    roles: Arc::clone(&s.roles),
                    suite: s.session.suite(),
                    send_epoch: s.session.send_epoch(),
                    links: self.links.iter().filter(|l| l.proven).count(),
                }));
            }
        }
        None
    }

    /// Seals `payload` together with the sends already waiting in `commands`
    /// (as many as fit one batch) into one data message: under load one AEAD
    /// operation and one frame carry many messages. Returns the first waiting
    /// command that is not a send or does not fit.
    async fn send_batch(
        &mut self,
        inner: &Arc<Inner>,
        channel: Channel,
        payload: Vec<u8>,
        reply: Reply,
        commands: &mut mpsc::Receiver<PeerCommand>,
    ) -> Option<PeerCommand> {
        let mut batch = Batch::new(&self.header(FrameKind::Data).encode());
        batch.push(channel, &payload, Some(reply));
        let mut left_over = None;
        while !batch.is_full() {
            match commands.try_recv() {
                Ok(PeerCommand::Send {
                    channel,
                    payload,
                    reply,
                    ..
                }) if batch.fits(payload.len()) => {
                    batch.push(channel, &payload, Some(reply));
                }
                Ok(other) => {
                    left_over = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        self.transmit_batch(inner, batch).await;
        left_over
    }

    async fn enqueue(
        &mut self,
        inner: &Arc<Inner>,
        channel: Channel,
        payload: Vec<u8>,
        reply: Reply,
        deadline: Instant,
    ) {
        if self.queue.len() >= inner.limits.queue_per_peer {
            reply.send(Err(SendError::QueueFull(self.peer)));
            return;
        }
        self.queue.push_back(Queued {
            channel,
            payload,
            reply,
            deadline,
        });
        self.start_handshake(inner, false).await;
    }

    /// Sends one message the layer itself produced (a service reply, a
    /// directory) on the session now, bypassing the command queue: the actor
    /// must never wait for its own queue. Dropped if there is no session.
    async fn send_inline(
        &mut self,
        inner: &Arc<Inner>,
        channel: Channel,
        message: Option<Vec<u8>>,
    ) {
        let Some(message) = message else {
            return;
        };
        if self.session.is_none() || !self.can_send_data() {
            tracing::debug!(peer = %self.peer, "no session for a layer message; dropped");
            return;
        }
        let mut batch = Batch::new(&self.header(FrameKind::Data).encode());
        batch.push(channel, &message, None);
        self.transmit_batch(inner, batch).await;
    }

    /// Seals an empty link-channel message onto `link` alone: the peer's
    /// proof that the link reaches this platform's session.
    async fn prove_link(&mut self, inner: &Arc<Inner>, link: LinkId) {
        let mut batch = Batch::new(&self.header(FrameKind::Data).encode());
        batch.push(Channel::Link, &[], None);
        let Batch { mut frame, .. } = batch;
        if self.seal(inner, &mut frame).await.is_err() {
            return;
        }
        if let Some(target) = self.links.iter().find(|l| l.id == link) {
            let _ = target.outgoing.try_send(frame);
        }
    }

    /// Marks `link` as reaching the peer's session; if it is the first such
    /// link, the peer is reachable again and waiting messages go out.
    async fn mark_proven(&mut self, inner: &Arc<Inner>, link: LinkId) {
        let was_reachable = self.can_send_data();
        let Some(target) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        if target.proven {
            return;
        }
        target.proven = true;
        if !was_reachable && self.session.is_some() {
            let update = inner.services.peer_reachable(inner, self.peer);
            self.send_inline(inner, Channel::Service, update).await;
            self.flush_queue(inner).await;
        }
    }

    /// Closes a link that never showed it reaches the peer. Relayed links
    /// are a relay's connection, shared with others: they are only forgotten.
    fn close_unproven(&mut self, link: Option<LinkId>) {
        self.links.retain(|l| {
            let doomed = !l.proven && link.is_none_or(|id| id == l.id);
            if doomed && !l.relayed {
                tracing::debug!(peer = %l.remote, "closing an unauthenticated link");
                l.close.notify_one();
            }
            !doomed
        });
    }

    /// A handshake may go on any link: it authenticates itself.
    fn can_handshake(&self) -> bool {
        !self.links.is_empty() || self.via.is_some()
    }

    /// Data goes only on proven links, or through the relay.
    fn can_send_data(&self) -> bool {
        self.links.iter().any(|l| l.proven) || self.via.is_some()
    }

    /// Starts a handshake if messages wait for a session, or `eagerly` when
    /// none is needed yet; flushes the queue if a session exists.
    async fn start_handshake(&mut self, inner: &Arc<Inner>, eagerly: bool) {
        if self.session.is_some() || self.handshake.is_some() || (self.queue.is_empty() && !eagerly)
        {
            self.flush_queue(inner).await;
            return;
        }
        if !self.can_handshake() {
            return;
        }
        match Handshake::initiate(Arc::clone(&inner.security), Some(self.peer)) {
            Ok((machine, offer)) => {
                let deadline = Instant::now() + inner.limits.handshake_timeout;
                self.handshake = Some(HandshakeRun {
                    machine,
                    deadline,
                    slot_host: None,
                    link: None,
                });
                self.send_frame(inner, FrameKind::Handshake, &offer, None)
                    .await;
            }
            Err(error) => self.fail_handshake(
                inner,
                SendError::Handshake {
                    peer: self.peer,
                    error,
                },
            ),
        }
    }

    async fn flush_queue(&mut self, inner: &Arc<Inner>) {
        if self.session.is_none() || !self.can_send_data() {
            return;
        }
        while let Some(first) = self.queue.pop_front() {
            let mut batch = Batch::new(&self.header(FrameKind::Data).encode());
            batch.push(first.channel, &first.payload, Some(first.reply));
            while !batch.is_full()
                && self
                    .queue
                    .front()
                    .is_some_and(|next| batch.fits(next.payload.len()))
            {
                if let Some(next) = self.queue.pop_front() {
                    batch.push(next.channel, &next.payload, Some(next.reply));
                }
            }
            self.transmit_batch(inner, batch).await;
        }
    }

    /// A handshake this side started failed: the messages waiting for it
    /// fail with `error`, and the service layer learns why the peer cannot
    /// be reached (so that looking for its services fails now, not later).
    fn fail_handshake(&mut self, inner: &Arc<Inner>, error: SendError) {
        inner.services.peer_refused(self.peer, &error);
        for queued in self.queue.drain(..) {
            queued.reply.send(Err(error.clone()));
        }
    }

    fn header(&self, kind: FrameKind) -> RoutingHeader {
        RoutingHeader {
            kind,
            source: self.own,
            destination: self.peer,
        }
    }

    /// Seals a batch and hands it to a link; every sender in it learns the outcome.
    async fn transmit_batch(&mut self, inner: &Arc<Inner>, batch: Batch) {
        let Batch {
            mut frame, replies, ..
        } = batch;
        let result = self.seal_and_transmit(inner, &mut frame).await;
        for reply in replies {
            reply.send(result.clone());
        }
    }

    /// `frame` is the routing header, the channel's reserved header, then the
    /// plaintext; it is sealed in place.
    async fn seal_and_transmit(
        &mut self,
        inner: &Arc<Inner>,
        frame: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        self.seal(inner, frame).await?;
        if self.transmit(inner, std::mem::take(frame)).await {
            self.poll_session(inner).await;
            Ok(())
        } else {
            Err(SendError::Unreachable(self.peer))
        }
    }

    /// Seals `frame` (routing header, the channel's reserved header, the
    /// plaintext) in place. A session that refuses (its counter at the
    /// reject limit) gets to send its rekey first.
    async fn seal(&mut self, inner: &Arc<Inner>, frame: &mut Vec<u8>) -> Result<(), SendError> {
        let Some(session) = self.session.as_mut() else {
            return Err(SendError::Unreachable(self.peer));
        };
        let mut packet = frame.split_off(ROUTING_HEADER_LEN);
        if let Err(error) =
            session
                .session
                .seal_in_place(&frame[..ROUTING_HEADER_LEN], &mut packet, Instant::now())
        {
            tracing::warn!(peer = %self.peer, %error, "cannot seal; rekeying");
            self.poll_session(inner).await;
            return Err(SendError::Unreachable(self.peer));
        }
        frame.append(&mut packet);
        Ok(())
    }

    /// Sends control packets the session has (rekey), if any.
    async fn poll_session(&mut self, inner: &Arc<Inner>) {
        let header = self.header(FrameKind::Data).encode();
        loop {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            match session.session.poll_transmit(&header, Instant::now()) {
                Ok(Some(packet)) => {
                    let mut frame = header.to_vec();
                    frame.extend_from_slice(&packet);
                    self.transmit(inner, frame).await;
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(peer = %self.peer, %error, "session cannot send control messages");
                    return;
                }
            }
        }
    }

    async fn send_frame(
        &mut self,
        inner: &Arc<Inner>,
        kind: FrameKind,
        body: &[u8],
        link: Option<LinkId>,
    ) {
        let frame = self.header(kind).frame(body);
        if let Some(link) = link.and_then(|id| self.links.iter().find(|l| l.id == id)) {
            let _ = link.outgoing.send(frame).await;
            return;
        }
        self.transmit_on(inner, frame, true).await;
    }

    /// Hands a data frame to one proven link, round robin; through the
    /// relay if there is none.
    async fn transmit(&mut self, inner: &Arc<Inner>, frame: Vec<u8>) -> bool {
        self.transmit_on(inner, frame, false).await
    }

    /// As `transmit`; with `any_link`, unproven links count too (for frames
    /// that authenticate themselves or are not ours: handshakes, relaying).
    async fn transmit_on(&mut self, inner: &Arc<Inner>, frame: Vec<u8>, any_link: bool) -> bool {
        let mut frame = frame;
        let count = self.links.len();
        let mut waiting_on = None;
        for _ in 0..count {
            self.next_link = (self.next_link + 1) % count;
            let link = &self.links[self.next_link];
            if !(any_link || link.proven) {
                continue;
            }
            waiting_on.get_or_insert(self.next_link);
            match link.outgoing.try_send(frame) {
                Ok(()) => return true,
                Err(
                    mpsc::error::TrySendError::Full(back) | mpsc::error::TrySendError::Closed(back),
                ) => frame = back,
            }
        }
        if let Some(link) = waiting_on.and_then(|index| self.links.get(index)) {
            // Every link is busy: wait for one (backpressure), bounded.
            let sent =
                tokio::time::timeout(inner.limits.send_timeout, link.outgoing.send(frame)).await;
            return matches!(sent, Ok(Ok(())));
        }
        if let Some(via) = self.via {
            let relay = lock(inner.peers()).get(&via).cloned();
            if let Some(relay) = relay {
                return relay.send(PeerCommand::Forward { frame }).await.is_ok();
            }
        }
        false
    }

    fn on_link_down(&mut self, inner: &Arc<Inner>, link: LinkId) {
        let Some(position) = self.links.iter().position(|l| l.id == link) else {
            return;
        };
        let lost = self.links.remove(position);
        tracing::debug!(peer = %self.peer, remote = %lost.remote, "link lost");
        if self.links.is_empty()
            && let Some(address) = lost.dialed
        {
            let first = inner.limits.redial_first;
            self.redial = Some((address, Instant::now() + first, first));
        }
        if lost.proven && !self.can_send_data() {
            inner.services.peer_unreachable(inner, self.peer);
        }
    }

    async fn on_frame(
        &mut self,
        inner: &Arc<Inner>,
        link: LinkId,
        header: RoutingHeader,
        frame: Vec<u8>,
    ) {
        let body = &frame[ROUTING_HEADER_LEN..];
        match header.kind {
            FrameKind::Handshake => self.on_handshake(inner, link, body).await,
            FrameKind::Data => {
                if self.session.is_none() {
                    if self.handshake.is_some() && self.early.len() < EARLY_FRAMES {
                        self.early.push_back((link, frame));
                    }
                    return;
                }
                self.open(inner, link, &header, frame).await;
            }
            FrameKind::Abort => {
                if self.initiated_handshake() {
                    let reason = &body[..body.len().min(MAX_ABORT_REASON)];
                    let reason = String::from_utf8_lossy(reason).into_owned();
                    tracing::info!(peer = %self.peer, %reason, "handshake refused by the peer");
                    self.drop_handshake(inner);
                    self.fail_handshake(
                        inner,
                        SendError::Refused {
                            peer: self.peer,
                            reason,
                        },
                    );
                }
            }
            FrameKind::Hello => {}
        }
    }

    async fn open(
        &mut self,
        inner: &Arc<Inner>,
        link: LinkId,
        header: &RoutingHeader,
        mut frame: Vec<u8>,
    ) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let routing = header.encode();
        let roles = Arc::clone(&session.roles);
        let received =
            match session
                .session
                .open(&routing, &mut frame[ROUTING_HEADER_LEN..], Instant::now())
            {
                Ok(received) => received,
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "data message dropped");
                    return;
                }
            };
        self.last_heard = Instant::now();
        self.mark_proven(inner, link).await;
        match received {
            Received::Application(plaintext) => {
                let Some(messages) = split_batch(plaintext) else {
                    // Authentic but malformed: the peer is broken, not an attacker.
                    tracing::warn!(peer = %self.peer, "malformed batch dropped");
                    return;
                };
                let mut answers = Vec::new();
                for (channel, payload) in messages {
                    match channel {
                        Channel::Application => {
                            let delivery = Delivery {
                                from: self.peer,
                                roles: Arc::clone(&roles),
                                payload: payload.to_vec(),
                            };
                            // Backpressure: a reader slower than its peers
                            // holds them up. A platform that never reads
                            // turns application messages off instead, so an
                            // unread queue cannot stall its service traffic.
                            if !inner.limits.application_messages {
                                tracing::debug!(peer = %self.peer, "application message dropped: this platform does not receive them");
                            } else if inner.deliveries.send(delivery).await.is_err() {
                                tracing::debug!("deliveries closed");
                                return;
                            }
                        }
                        Channel::Service => {
                            answers.extend(
                                inner.services.on_message(inner, self.peer, &roles, payload),
                            );
                        }
                        // Its arrival proved the link; nothing else to do.
                        Channel::Link => {}
                    }
                }
                for answer in answers {
                    self.send_inline(inner, Channel::Service, Some(answer))
                        .await;
                }
            }
            Received::Control => self.poll_session(inner).await,
        }
    }

    async fn on_handshake(&mut self, inner: &Arc<Inner>, link: LinkId, body: &[u8]) {
        let remote = self
            .links
            .iter()
            .find(|l| l.id == link)
            .map(|l| l.remote.clone())
            .unwrap_or_default();
        let host = host_of(&remote).to_owned();
        if PacketType::of(body) == Some(PacketType::Offer) {
            // Both sides started at once: the smaller platform id's handshake wins.
            if self.initiated_handshake() && self.own < self.peer {
                return;
            }
            // One answer at a time per claimed id: a second Offer on another
            // link (perhaps from someone else claiming the same id) waits
            // for the first to end rather than cancelling it.
            if let Some(HandshakeRun {
                link: Some(answering),
                ..
            }) = &self.handshake
                && *answering != link
            {
                tracing::debug!(peer = %self.peer, %host, "offer ignored: already answering one");
                return;
            }
            if let Verdict::Refuse { for_another } =
                lock(&inner.throttle).check(&host, Instant::now())
            {
                tracing::info!(%host, wait_ms = for_another.as_millis() as u64, "handshake refused: password guessing limit");
                self.close_unproven(Some(link));
                return;
            }
            // A repeated Offer on the same link gives its slot back first.
            self.drop_handshake(inner);
            if !inner.handshakes.acquire(
                &host,
                inner.limits.handshakes_per_host,
                inner.limits.handshakes_total,
            ) {
                tracing::info!(%host, "handshake refused: too many in progress");
                self.close_unproven(Some(link));
                return;
            }
            let machine = Handshake::respond(Arc::clone(&inner.security));
            let deadline = Instant::now() + inner.limits.handshake_timeout;
            self.handshake = Some(HandshakeRun {
                machine,
                deadline,
                slot_host: Some(host.clone()),
                link: Some(link),
            });
        }
        let Some(run) = self.handshake.as_mut() else {
            return;
        };
        let result = run.machine.receive(body, Now::system());
        let events = run.machine.take_events();
        for event in &events {
            if let SecurityEvent::PasswordRoleFailed { role } = event {
                lock(&inner.throttle).record_failure(&host, role.as_str(), Instant::now());
            }
        }
        match result {
            Ok(progress) => {
                if let Some(reply) = progress.reply {
                    self.send_frame(inner, FrameKind::Handshake, &reply, Some(link))
                        .await;
                }
                if let Some(established) = progress.established {
                    self.drop_handshake(inner);
                    if established.peer != self.peer {
                        tracing::warn!(claimed = %self.peer, proved = %established.peer, "peer id mismatch; session refused");
                        return;
                    }
                    if events.is_empty() && !established.peer_roles.is_empty() {
                        lock(&inner.throttle).record_success(&host);
                    }
                    // Platform ids are not secrets: whoever holds a role we
                    // accept can claim any id. A new handshake may replace a
                    // live session only if it proves at least the same roles,
                    // so nobody takes over a peer's traffic with less.
                    if let Some(current) = &self.session
                        && !established.peer_roles.is_superset(&current.roles)
                    {
                        tracing::warn!(peer = %self.peer, %remote, "a handshake with fewer roles than the live session was discarded");
                        self.close_unproven(Some(link));
                        return;
                    }
                    tracing::info!(peer = %self.peer, suite = %established.suite, roles = ?established.peer_roles, "session established");
                    self.last_heard = Instant::now();
                    let roles = Arc::new(established.peer_roles);
                    self.session = Some(Session {
                        session: established.session,
                        roles: Arc::clone(&roles),
                    });
                    if let Some(proven) = self.links.iter_mut().find(|l| l.id == link) {
                        proven.proven = true;
                    }
                    let directory = inner.services.session_established(inner, self.peer, &roles);
                    self.send_inline(inner, Channel::Service, directory).await;
                    for (early_link, frame) in std::mem::take(&mut self.early) {
                        if let Ok((header, _)) = RoutingHeader::decode(&frame) {
                            self.open(inner, early_link, &header, frame).await;
                        }
                    }
                    let others: Vec<LinkId> = self
                        .links
                        .iter()
                        .filter(|l| !l.proven)
                        .map(|l| l.id)
                        .collect();
                    for other in others {
                        self.prove_link(inner, other).await;
                    }
                    self.flush_queue(inner).await;
                }
            }
            Err(error) => {
                tracing::info!(peer = %self.peer, %remote, %error, "handshake failed");
                let initiated = self.initiated_handshake();
                self.drop_handshake(inner);
                if initiated {
                    self.fail_handshake(
                        inner,
                        SendError::Handshake {
                            peer: self.peer,
                            error,
                        },
                    );
                } else {
                    // Tell the initiator now rather than let it wait for its timeout.
                    let reason = error.to_string();
                    self.send_frame(inner, FrameKind::Abort, reason.as_bytes(), Some(link))
                        .await;
                    self.close_unproven(Some(link));
                }
            }
        }
    }

    /// The peer never answered the link proof on `link`: it has no session
    /// with us any more (it gave it up, idle). A new handshake on that link,
    /// which replaces ours if it proves the same roles, brings both sides
    /// back to one session. Tried once per link; the link then has another
    /// lifetime to be proven in.
    async fn rehandshake(&mut self, inner: &Arc<Inner>, link: LinkId) {
        let Some(target) = self.links.iter_mut().find(|l| l.id == link) else {
            return;
        };
        target.rehandshaken = true;
        target.opened = Instant::now();
        match Handshake::initiate(Arc::clone(&inner.security), Some(self.peer)) {
            Ok((machine, offer)) => {
                tracing::info!(peer = %self.peer, "link proof unanswered; making the session again");
                self.handshake = Some(HandshakeRun {
                    machine,
                    deadline: Instant::now() + inner.limits.handshake_timeout,
                    slot_host: None,
                    link: None,
                });
                self.send_frame(inner, FrameKind::Handshake, &offer, Some(link))
                    .await;
            }
            Err(error) => tracing::warn!(peer = %self.peer, %error, "cannot start a handshake"),
        }
    }

    /// Whether the handshake in progress is one this side started.
    fn initiated_handshake(&self) -> bool {
        self.handshake
            .as_ref()
            .is_some_and(|h| h.slot_host.is_none())
    }

    fn drop_handshake(&mut self, inner: &Arc<Inner>) {
        if let Some(HandshakeRun {
            slot_host: Some(host),
            ..
        }) = self.handshake.take()
        {
            inner.handshakes.release(&host);
        }
    }

    async fn on_timer(&mut self, inner: &Arc<Inner>) {
        let now = Instant::now();
        if self.handshake.as_ref().is_some_and(|h| now >= h.deadline) {
            let answered_on = self.handshake.as_ref().and_then(|h| h.link);
            let initiated = self.initiated_handshake();
            self.drop_handshake(inner);
            if initiated {
                self.fail_handshake(
                    inner,
                    SendError::Handshake {
                        peer: self.peer,
                        error: HandshakeError::Closed,
                    },
                );
            } else if let Some(link) = answered_on {
                self.close_unproven(Some(link));
            }
        }
        let lifetime = self.unproven_link_lifetime();
        let stale: Vec<(LinkId, bool)> = self
            .links
            .iter()
            .filter(|l| !l.proven && !l.relayed && now >= l.opened + lifetime)
            .filter(|l| self.handshake.as_ref().is_none_or(|h| h.link != Some(l.id)))
            .map(|l| (l.id, l.rehandshaken))
            .collect();
        for (link, rehandshaken) in stale {
            if self.session.is_some() && self.handshake.is_none() && !rehandshaken {
                self.rehandshake(inner, link).await;
            } else {
                self.close_unproven(Some(link));
            }
        }
        while self.queue.front().is_some_and(|q| now >= q.deadline) {
            if let Some(queued) = self.queue.pop_front() {
                queued.reply.send(Err(SendError::Unreachable(self.peer)));
            }
        }
        if let Some((address, at, backoff)) = self.redial.clone()
            && now >= at
        {
            let next = (backoff * 2).min(inner.limits.redial_max);
            self.redial = Some((address.clone(), now + next, next));
            let inner = Arc::clone(inner);
            tokio::spawn(async move {
                if let Err(error) = redial(&inner, &address).await {
                    tracing::debug!(%address, %error, "redial failed");
                }
            });
        }
        self.poll_session(inner).await;
    }
}

/// Plaintext bytes one batch gathers at most; a single larger message goes alone.
const BATCH_BYTES: usize = 64 * 1024;
/// Messages one batch gathers at most.
const BATCH_MESSAGES: usize = 256;
/// Each message in a batch: the length of what follows the length (4 bytes
/// big-endian), its channel (1 byte), then its bytes.
const RECORD_HEADER_LEN: usize = 5;

/// Messages being gathered into one data message, already in frame layout.
struct Batch {
    frame: Vec<u8>,
    messages: usize,
    replies: Vec<Reply>,
}

impl Batch {
    fn new(routing_header: &[u8; ROUTING_HEADER_LEN]) -> Self {
        let mut frame = Vec::with_capacity(1024);
        frame.extend_from_slice(routing_header);
        frame.resize(ROUTING_HEADER_LEN + DATA_HEADER_LEN, 0);
        Self {
            frame,
            messages: 0,
            replies: Vec::new(),
        }
    }

    fn plaintext_len(&self) -> usize {
        self.frame.len() - ROUTING_HEADER_LEN - DATA_HEADER_LEN
    }

    fn is_full(&self) -> bool {
        self.messages >= BATCH_MESSAGES || self.plaintext_len() >= BATCH_BYTES
    }

    fn fits(&self, len: usize) -> bool {
        self.plaintext_len() + RECORD_HEADER_LEN + len <= BATCH_BYTES
    }

    /// Appends one message; `reply` learns the outcome of the whole batch.
    /// `platform.send` bounds the length by `max_payload`.
    fn push(&mut self, channel: Channel, payload: &[u8], reply: Option<Reply>) {
        let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
        self.frame
            .reserve(RECORD_HEADER_LEN + payload.len() + DATA_OVERHEAD);
        self.frame.extend_from_slice(&len.to_be_bytes());
        self.frame.push(channel as u8);
        self.frame.extend_from_slice(payload);
        self.messages += 1;
        self.replies.extend(reply);
    }
}

/// The messages of an opened batch with their channels, or `None` if its
/// records are malformed or name an unknown channel.
fn split_batch(mut plaintext: &[u8]) -> Option<Vec<(Channel, &[u8])>> {
    let mut messages = Vec::new();
    while !plaintext.is_empty() {
        let (len, rest) = plaintext.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if len == 0 || len > rest.len() {
            return None;
        }
        let (record, rest) = rest.split_at(len);
        let channel = Channel::from_byte(record[0])?;
        messages.push((channel, &record[1..]));
        plaintext = rest;
    }
    (!messages.is_empty()).then_some(messages)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Reply {
        let slot = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a free slot");
        Reply::new(oneshot::channel().0, slot)
    }

    fn batch_of(messages: &[(Channel, &[u8])]) -> Vec<u8> {
        let mut batch = Batch::new(&[0; ROUTING_HEADER_LEN]);
        for (channel, message) in messages {
            batch.push(*channel, message, Some(reply()));
        }
        batch.frame[ROUTING_HEADER_LEN + DATA_HEADER_LEN..].to_vec()
    }

    #[test]
    fn batches_split_back_into_their_messages() {
        let messages: [(Channel, &[u8]); 4] = [
            (Channel::Application, b"one"),
            (Channel::Service, b""),
            (Channel::Application, &[7; 300]),
            (Channel::Service, b"four"),
        ];
        let plaintext = batch_of(&messages);
        assert_eq!(split_batch(&plaintext), Some(messages.to_vec()));
    }

    #[test]
    fn malformed_batches_are_refused_whole() {
        let plaintext = batch_of(&[(Channel::Application, b"abc"), (Channel::Service, b"defg")]);
        // Any truncation cuts a record short.
        for cut in 1..plaintext.len() {
            if cut == RECORD_HEADER_LEN + 3 {
                continue; // exactly the first record: well formed
            }
            assert_eq!(split_batch(&plaintext[..cut]), None, "cut at {cut}");
        }
        assert_eq!(split_batch(&[]), None);
        assert_eq!(split_batch(&[0xff, 0xff, 0xff, 0xff, 1]), None);
        // A record without its channel byte, and an unknown channel.
        assert_eq!(split_batch(&[0, 0, 0, 0]), None);
        assert_eq!(split_batch(&[0, 0, 0, 2, 9, b'x']), None);
    }

    #[test]
    fn a_batch_is_bounded() {
        let mut batch = Batch::new(&[0; ROUTING_HEADER_LEN]);
        assert!(batch.fits(BATCH_BYTES - RECORD_HEADER_LEN));
        assert!(!batch.fits(BATCH_BYTES));
        for _ in 0..BATCH_MESSAGES {
            batch.push(Channel::Application, b"x", None);
        }
        assert!(batch.is_full());
    }
}
