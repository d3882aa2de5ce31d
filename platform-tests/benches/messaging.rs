//! The secure message layer over loopback TCP and WebSocket, beside the same
//! transport carrying unencrypted frames directly.
//!
//! `cargo bench -p platform-tests --bench messaging` prints three tables:
//!
//! 1. **One-way throughput**, 64 B and 1 KiB payloads, concurrency 1 and 64.
//!    *secure*: platform A `send`s to platform B (one link, one session), B's
//!    `receive` loop counts. *plain*: the same transport, one connection,
//!    frames of the payload size: at concurrency 1 one task calls
//!    `FrameSink::send` directly; at concurrency 64, 64 tasks feed one writer
//!    task (owning the sink) through a `tokio::sync::mpsc` channel of 1024, as
//!    the platform's link writer does. The receiver calls `FrameSource::recv`
//!    directly. Each sample sends `n` messages (sized for ~4 ms) split over
//!    the senders and times the receiver from message `n/16` to message `n`:
//!    the steady-state rate, without task start-up and pipeline fill.
//! 2. **Round-trip latency**: *secure* = A `send`s, a task on B `receive`s
//!    and `send`s the payload back, A `receive`s; *plain* = the same over the
//!    raw transport with an echo task on the accepted connection.
//! 3. **Where the time goes**: the same measurements through a model of the
//!    platform's data path built from public pieces (per-peer actor task fed
//!    by an mpsc with a oneshot reply per send, link writer task behind an
//!    mpsc, reader task, deliveries mpsc, the platform's frame layout and
//!    copies), with and without `SecureSession` sealing, plus the bare
//!    seal + open cost. Differences between adjacent rows attribute the gap.
//!
//! Method (see `framework/security/benches/common/mod.rs`): the machine has 2
//! shared, noisy cores, so every item runs round-robin with all others (a
//! 20 ms slice per item per round), in short samples; tables report the 10th
//! percentile of the per-message time (what it costs when nothing else ran)
//! with the median beside it. Latency tables report p50 and p99 of single
//! round trips. One tokio multi-thread runtime with 2 workers runs both ends.
//!
//! Without `--bench` (e.g. `cargo test --benches`) it runs a smoke version:
//! every item once with a few messages, checks what arrives, and exits.
//! `JADEITE_BENCH_ROUNDS=N` changes the number of rounds (default 25).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jadeite::Platform;
use jadeite::security::channel::{DATA_HEADER_LEN, DATA_OVERHEAD};
use jadeite::security::{PlatformId, Received, SecureSession};
use jadeite::transport::{
    Connection, FrameSink, FrameSource, Listener, Transport, TransportAddress,
};
use jadeite_tcp::TcpTransport;
use jadeite_websocket::WebSocketTransport;
use platform_tests::{address, bench, session_pair, shared_key};
use tokio::sync::{mpsc, oneshot};

const SIZES: [(usize, &str); 2] = [(64, "64B"), (1024, "1KiB")];
const CONCURRENCY: [usize; 2] = [1, 64];
/// The platform's link and command queues hold this many frames.
const QUEUE: usize = 1024;
/// Target duration of one throughput sample.
const TPUT_SAMPLE: Duration = Duration::from_millis(4);
/// Time each item gets per round.
const SLICE: Duration = Duration::from_millis(20);
const DEFAULT_ROUNDS: usize = 25;
/// Routing header of the model's frames: version, kind, two platform ids.
const ROUTING_LEN: usize = 34;
const TAG_LEN: usize = DATA_OVERHEAD - DATA_HEADER_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Tcp,
    Ws,
}

impl Net {
    fn name(self) -> &'static str {
        match self {
            Net::Tcp => "tcp",
            Net::Ws => "ws",
        }
    }

    fn transport(self) -> Arc<dyn Transport> {
        match self {
            Net::Tcp => Arc::new(TcpTransport::new()),
            Net::Ws => Arc::new(WebSocketTransport::new()),
        }
    }

    fn listen_address(self) -> TransportAddress {
        match self {
            Net::Tcp => address("tcp://127.0.0.1:0"),
            Net::Ws => address("ws://127.0.0.1:0/jadeite"),
        }
    }
}

/// The stages of the data path, from the bare transport to the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The sender calls `FrameSink::send` itself (concurrency 1 only).
    PlainDirect,
    /// Senders -> mpsc -> writer task -> `FrameSink::send`.
    PlainQueued,
    /// The model of the platform's tasks and copies, no cryptography.
    ModelHops,
    /// The model with `SecureSession::seal_in_place` / `open`.
    ModelSealed,
    /// The real thing: `Platform::send` / `Platform::receive`.
    Platform,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::PlainDirect => "plain direct",
            Stage::PlainQueued => "plain + writer task",
            Stage::ModelHops => "model: platform tasks, no crypto",
            Stage::ModelSealed => "model: platform tasks + seal/open",
            Stage::Platform => "platform (secure)",
        }
    }
}

/// A connected pair over `net`: (dialing end, accepting end, the listener).
async fn raw_pair(net: Net) -> (Connection, Connection, Box<dyn Listener>) {
    let transport = net.transport();
    let mut listener = transport
        .listen(&net.listen_address())
        .await
        .expect("listen");
    let bound = listener.local_address().clone();
    let (dialed, accepted) = tokio::join!(transport.connect(&bound), listener.accept());
    (
        dialed.expect("connect"),
        accepted.expect("accept"),
        listener,
    )
}

/// Platforms A and B over `net`, one link, the session already made.
async fn platform_pair(net: Net) -> (Platform, Platform, PlatformId) {
    let b = Platform::builder("b")
        .credentials(shared_key("bench", 7))
        .transport(net.transport())
        .listen(net.listen_address())
        .start()
        .await
        .expect("b starts");
    let a = Platform::builder("a")
        .credentials(shared_key("bench", 7))
        .transport(net.transport())
        .start()
        .await
        .expect("a starts");
    let b_id = a.connect(&b.listen_addresses()[0]).await.expect("connect");
    a.send(b_id, b"hello".to_vec()).await.expect("first send");
    let first = b.receive().await.expect("first delivery");
    assert_eq!(first.payload, b"hello");
    (a, b, b_id)
}

/// The model's routing header: version 1, kind Data, two fixed platform ids.
fn routing_header() -> [u8; ROUTING_LEN] {
    let mut header = [7u8; ROUTING_LEN];
    header[0] = 1;
    header[1] = 3;
    header
}

/// Builds a data frame as `PeerActor::seal_and_transmit` does: one frame
/// buffer, `split_off` for the packet, seal in place (or a zero tag without a
/// session, so frames have the same length), `append` back.
fn model_frame(session: Option<&mut SecureSession>, payload: &[u8]) -> Vec<u8> {
    let header = routing_header();
    let mut frame = Vec::with_capacity(ROUTING_LEN + DATA_OVERHEAD + payload.len());
    frame.extend_from_slice(&header);
    frame.resize(ROUTING_LEN + DATA_HEADER_LEN, 0);
    frame.extend_from_slice(payload);
    let mut packet = frame.split_off(ROUTING_LEN);
    match session {
        Some(session) => session
            .seal_in_place(&header, &mut packet, Instant::now())
            .expect("seal"),
        None => packet.extend_from_slice(&[0; TAG_LEN]),
    }
    frame.append(&mut packet);
    frame
}

/// Opens a model frame as `PeerActor::open` does and copies the plaintext out.
fn model_open(session: Option<&mut SecureSession>, frame: &mut [u8]) -> Vec<u8> {
    let header = routing_header();
    match session {
        Some(session) => match session
            .open(&header, &mut frame[ROUTING_LEN..], Instant::now())
            .expect("open")
        {
            Received::Application(plaintext) => plaintext.to_vec(),
            Received::Control => Vec::new(),
        },
        None => frame[ROUTING_LEN + DATA_HEADER_LEN..frame.len() - TAG_LEN].to_vec(),
    }
}

enum ModelCommand {
    Send {
        payload: Vec<u8>,
        reply: oneshot::Sender<()>,
    },
    Frame(Vec<u8>),
}

/// One end of the model: an actor task that seals outgoing and opens
/// incoming messages (like one `PeerActor`), a writer task per link, a reader
/// task per link, and the deliveries channel.
struct ModelEnd {
    actor: mpsc::Sender<ModelCommand>,
    deliveries: mpsc::Receiver<Vec<u8>>,
}

impl ModelEnd {
    fn start(connection: Connection, mut session: Option<SecureSession>) -> Self {
        let Connection {
            mut sink,
            mut source,
            ..
        } = connection;
        let (outgoing, mut to_write) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            while let Some(frame) = to_write.recv().await {
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        });
        let (actor, mut commands) = mpsc::channel::<ModelCommand>(QUEUE);
        let reader_actor = actor.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = source.recv().await {
                if reader_actor.send(ModelCommand::Frame(frame)).await.is_err() {
                    break;
                }
            }
        });
        let (delivered, deliveries) = mpsc::channel::<Vec<u8>>(QUEUE.max(64));
        tokio::spawn(async move {
            while let Some(command) = commands.recv().await {
                match command {
                    ModelCommand::Send { payload, reply } => {
                        let frame = model_frame(session.as_mut(), &payload);
                        let sent = match outgoing.try_send(frame) {
                            Ok(()) => true,
                            Err(mpsc::error::TrySendError::Full(frame)) => {
                                outgoing.send(frame).await.is_ok()
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => false,
                        };
                        let _ = reply.send(());
                        if !sent {
                            break;
                        }
                    }
                    ModelCommand::Frame(mut frame) => {
                        let payload = model_open(session.as_mut(), &mut frame);
                        if delivered.send(payload).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Self { actor, deliveries }
    }
}

/// Sends through a model end and waits until its actor handed the frame to
/// the link, as `Platform::send` does.
async fn model_send(actor: &mpsc::Sender<ModelCommand>, payload: Vec<u8>) {
    let (reply, done) = oneshot::channel();
    actor
        .send(ModelCommand::Send { payload, reply })
        .await
        .expect("model actor running");
    done.await.expect("model actor replied");
}

/// The sending side of one throughput item.
enum Sender {
    Direct(Option<Box<dyn FrameSink>>),
    Queued(mpsc::Sender<Vec<u8>>),
    Model(mpsc::Sender<ModelCommand>),
    Platform(Platform, PlatformId),
}

impl Sender {
    /// Starts `concurrency` tasks sending `per_task` copies of `payload` each.
    fn spawn(
        &mut self,
        concurrency: usize,
        per_task: usize,
        payload: &[u8],
    ) -> Vec<tokio::task::JoinHandle<Option<Box<dyn FrameSink>>>> {
        (0..concurrency)
            .map(|_| {
                let payload = payload.to_vec();
                match self {
                    Sender::Direct(sink) => {
                        let mut sink = sink.take().expect("concurrency 1 for direct sends");
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                sink.send(payload.clone()).await.expect("send");
                            }
                            Some(sink)
                        })
                    }
                    Sender::Queued(queue) => {
                        let queue = queue.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                queue.send(payload.clone()).await.expect("writer running");
                            }
                            None
                        })
                    }
                    Sender::Model(actor) => {
                        let actor = actor.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                model_send(&actor, payload.clone()).await;
                            }
                            None
                        })
                    }
                    Sender::Platform(platform, to) => {
                        let (platform, to) = (platform.clone(), *to);
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                platform.send(to, payload.clone()).await.expect("send");
                            }
                            None
                        })
                    }
                }
            })
            .collect()
    }

    fn give_back(&mut self, sink: Option<Box<dyn FrameSink>>) {
        if let (Sender::Direct(slot), Some(sink)) = (self, sink) {
            *slot = Some(sink);
        }
    }
}

/// The receiving side of one throughput item.
enum Receiver {
    Direct(Box<dyn FrameSource>),
    Model(mpsc::Receiver<Vec<u8>>),
    Platform(Platform),
}

impl Receiver {
    /// The next payload's length.
    async fn next(&mut self) -> usize {
        match self {
            Receiver::Direct(source) => source.recv().await.expect("recv").expect("open").len(),
            Receiver::Model(deliveries) => deliveries.recv().await.expect("model running").len(),
            Receiver::Platform(platform) => {
                platform.receive().await.expect("running").payload.len()
            }
        }
    }
}

/// A writer task that owns `sink` and sends what the returned queue gets.
fn writer_task(mut sink: Box<dyn FrameSink>) -> mpsc::Sender<Vec<u8>> {
    let (queue, mut frames) = mpsc::channel::<Vec<u8>>(QUEUE);
    tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });
    queue
}

/// One-way throughput of one stage, size and concurrency.
struct Throughput {
    sender: Sender,
    receiver: Receiver,
    payload: Vec<u8>,
    concurrency: usize,
    /// Messages per sample (a multiple of `concurrency`).
    count: usize,
    _keep: Vec<Box<dyn Listener>>,
}

impl Throughput {
    async fn new(net: Net, stage: Stage, size: usize, concurrency: usize) -> Self {
        let (sender, receiver, keep) = match stage {
            Stage::PlainDirect | Stage::PlainQueued => {
                let (dialed, accepted, listener) = raw_pair(net).await;
                let sender = if stage == Stage::PlainDirect {
                    Sender::Direct(Some(dialed.sink))
                } else {
                    Sender::Queued(writer_task(dialed.sink))
                };
                (sender, Receiver::Direct(accepted.source), vec![listener])
            }
            Stage::ModelHops | Stage::ModelSealed => {
                let (dialed, accepted, listener) = raw_pair(net).await;
                let (a, b) = if stage == Stage::ModelSealed {
                    let (a, b) = session_pair();
                    (Some(a), Some(b))
                } else {
                    (None, None)
                };
                let a = ModelEnd::start(dialed, a);
                let b = ModelEnd::start(accepted, b);
                (
                    Sender::Model(a.actor),
                    Receiver::Model(b.deliveries),
                    vec![listener],
                )
            }
            Stage::Platform => {
                let (a, b, b_id) = platform_pair(net).await;
                (Sender::Platform(a, b_id), Receiver::Platform(b), Vec::new())
            }
        };
        Self {
            sender,
            receiver,
            payload: vec![0x5a; size],
            concurrency,
            count: 16 * concurrency.max(16),
            _keep: keep,
        }
    }

    /// Sends `self.count` messages; seconds per message in the steady state.
    async fn sample(&mut self) -> f64 {
        let per_task = self.count / self.concurrency;
        let total = per_task * self.concurrency;
        let skip = total / 16;
        let senders = self.sender.spawn(self.concurrency, per_task, &self.payload);
        let mut from = Instant::now();
        for k in 0..total {
            let len = self.receiver.next().await;
            assert_eq!(len, self.payload.len(), "payload arrives whole");
            if k + 1 == skip {
                from = Instant::now();
            }
        }
        let elapsed = from.elapsed().as_secs_f64();
        for sender in senders {
            let sink = sender.await.expect("sender task");
            self.sender.give_back(sink);
        }
        elapsed / (total - skip) as f64
    }

    /// Sizes samples to about [`TPUT_SAMPLE`].
    async fn calibrate(&mut self) {
        self.sample().await;
        let per_message = self.sample().await.max(1e-8);
        let wanted = (TPUT_SAMPLE.as_secs_f64() / per_message) as usize;
        let unit = self.concurrency.max(16);
        self.count = (wanted / unit).clamp(16, 4096) * unit;
    }
}

/// How the echo is done.
enum Echo {
    Direct(Connection),
    Model(ModelEnd),
    Platform(Platform, PlatformId),
}

/// Round-trip latency of one stage and size.
struct RoundTrip {
    echo: Echo,
    payload: Vec<u8>,
    _keep: Vec<Box<dyn Listener>>,
}

impl RoundTrip {
    async fn new(net: Net, stage: Stage, size: usize) -> Self {
        let (echo, keep) = match stage {
            Stage::PlainDirect | Stage::PlainQueued => {
                let (dialed, accepted, listener) = raw_pair(net).await;
                let Connection {
                    mut sink,
                    mut source,
                    ..
                } = accepted;
                tokio::spawn(async move {
                    while let Ok(Some(frame)) = source.recv().await {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                });
                (Echo::Direct(dialed), vec![listener])
            }
            Stage::ModelHops | Stage::ModelSealed => {
                let (dialed, accepted, listener) = raw_pair(net).await;
                let (a, b) = if stage == Stage::ModelSealed {
                    let (a, b) = session_pair();
                    (Some(a), Some(b))
                } else {
                    (None, None)
                };
                let a = ModelEnd::start(dialed, a);
                let mut b = ModelEnd::start(accepted, b);
                tokio::spawn(async move {
                    while let Some(payload) = b.deliveries.recv().await {
                        model_send(&b.actor, payload).await;
                    }
                });
                (Echo::Model(a), vec![listener])
            }
            Stage::Platform => {
                let (a, b, b_id) = platform_pair(net).await;
                tokio::spawn(async move {
                    while let Some(delivery) = b.receive().await {
                        if b.send(delivery.from, delivery.payload).await.is_err() {
                            break;
                        }
                    }
                });
                (Echo::Platform(a, b_id), Vec::new())
            }
        };
        Self {
            echo,
            payload: vec![0x5a; size],
            _keep: keep,
        }
    }

    /// One round trip, in seconds.
    async fn sample(&mut self) -> f64 {
        let payload = self.payload.clone();
        let start = Instant::now();
        let len = match &mut self.echo {
            Echo::Direct(connection) => {
                connection.sink.send(payload).await.expect("send");
                connection
                    .source
                    .recv()
                    .await
                    .expect("recv")
                    .expect("open")
                    .len()
            }
            Echo::Model(end) => {
                model_send(&end.actor, payload).await;
                end.deliveries.recv().await.expect("model running").len()
            }
            Echo::Platform(platform, to) => {
                platform.send(*to, payload).await.expect("send");
                platform.receive().await.expect("running").payload.len()
            }
        };
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(len, self.payload.len(), "echo arrives whole");
        elapsed
    }
}

/// `seal_in_place` + `open` of one model frame, no I/O.
struct Crypto {
    sender: SecureSession,
    receiver: SecureSession,
    payload: Vec<u8>,
}

impl Crypto {
    fn new(size: usize) -> Self {
        let (sender, receiver) = session_pair();
        Self {
            sender,
            receiver,
            payload: vec![0x5a; size],
        }
    }

    /// Seconds per seal + open, over `iters` messages.
    fn sample(&mut self, iters: usize) -> f64 {
        let start = Instant::now();
        for _ in 0..iters {
            let mut frame = model_frame(Some(&mut self.sender), &self.payload);
            let plaintext = model_open(Some(&mut self.receiver), &mut frame);
            assert_eq!(plaintext.len(), self.payload.len());
        }
        start.elapsed().as_secs_f64() / iters as f64
    }
}

enum Bench {
    Throughput(Throughput),
    RoundTrip(RoundTrip),
    /// Boxed: two sessions make it several times the size of the others.
    Crypto(Box<Crypto>),
}

struct Item {
    net: Option<Net>,
    stage: Option<Stage>,
    size: usize,
    label: &'static str,
    concurrency: usize,
    bench: Bench,
    /// Seconds per message (throughput, crypto) or per round trip.
    samples: Vec<f64>,
}

impl Item {
    /// Runs samples for about `slice`, or exactly one when `slice` is zero.
    async fn run(&mut self, slice: Duration) {
        let start = Instant::now();
        loop {
            match &mut self.bench {
                Bench::Throughput(t) => {
                    let s = t.sample().await;
                    self.samples.push(s);
                }
                Bench::RoundTrip(r) => {
                    for _ in 0..8 {
                        let s = r.sample().await;
                        self.samples.push(s);
                    }
                }
                Bench::Crypto(c) => {
                    let s = c.sample(if slice.is_zero() { 1 } else { 100 });
                    self.samples.push(s);
                    tokio::task::yield_now().await;
                }
            }
            if start.elapsed() >= slice {
                break;
            }
        }
    }

    fn percentile(&self, fraction: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1);
        sorted[index]
    }

    fn is(
        &self,
        net: Net,
        stage: Stage,
        size: usize,
        concurrency: usize,
        round_trip: bool,
    ) -> bool {
        self.net == Some(net)
            && self.stage == Some(stage)
            && self.size == size
            && self.concurrency == concurrency
            && matches!(self.bench, Bench::RoundTrip(_)) == round_trip
    }
}

fn find(
    items: &[Item],
    net: Net,
    stage: Stage,
    size: usize,
    concurrency: usize,
    round_trip: bool,
) -> &Item {
    items
        .iter()
        .find(|i| i.is(net, stage, size, concurrency, round_trip))
        .expect("item exists")
}

async fn build_items() -> Vec<Item> {
    let mut items = Vec::new();
    for net in [Net::Tcp, Net::Ws] {
        for (size, label) in SIZES {
            for concurrency in CONCURRENCY {
                for stage in [
                    Stage::PlainDirect,
                    Stage::PlainQueued,
                    Stage::ModelHops,
                    Stage::ModelSealed,
                    Stage::Platform,
                ] {
                    if stage == Stage::PlainDirect && concurrency > 1 {
                        continue;
                    }
                    let bench = Throughput::new(net, stage, size, concurrency).await;
                    items.push(Item {
                        net: Some(net),
                        stage: Some(stage),
                        size,
                        label,
                        concurrency,
                        bench: Bench::Throughput(bench),
                        samples: Vec::new(),
                    });
                }
            }
            for stage in [
                Stage::PlainDirect,
                Stage::ModelHops,
                Stage::ModelSealed,
                Stage::Platform,
            ] {
                let bench = RoundTrip::new(net, stage, size).await;
                items.push(Item {
                    net: Some(net),
                    stage: Some(stage),
                    size,
                    label,
                    concurrency: 1,
                    bench: Bench::RoundTrip(bench),
                    samples: Vec::new(),
                });
            }
        }
    }
    for (size, label) in SIZES {
        items.push(Item {
            net: None,
            stage: None,
            size,
            label,
            concurrency: 1,
            bench: Bench::Crypto(Box::new(Crypto::new(size))),
            samples: Vec::new(),
        });
    }
    items
}

fn mib_per_s(size: usize, seconds_per_message: f64) -> f64 {
    size as f64 / seconds_per_message / (1024.0 * 1024.0)
}

fn us(seconds: f64) -> f64 {
    seconds * 1e6
}

fn print_tables(items: &[Item]) {
    println!();
    println!("## One-way throughput (p10 of per-message time; median in parentheses)");
    println!();
    println!(
        "| transport | size | concurrency | secure msg/s | secure MiB/s | plain msg/s | plain MiB/s | secure/plain | (median) | target >= 0.80 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for net in [Net::Tcp, Net::Ws] {
        for (size, label) in SIZES {
            for concurrency in CONCURRENCY {
                let plain_stage = if concurrency == 1 {
                    Stage::PlainDirect
                } else {
                    Stage::PlainQueued
                };
                let secure = find(items, net, Stage::Platform, size, concurrency, false);
                let plain = find(items, net, plain_stage, size, concurrency, false);
                let (s10, p10) = (secure.percentile(0.1), plain.percentile(0.1));
                let (s50, p50) = (secure.percentile(0.5), plain.percentile(0.5));
                let ratio = p10 / s10;
                println!(
                    "| {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.1} | **{:.3}** | {:.3} | {} |",
                    net.name(),
                    label,
                    concurrency,
                    1.0 / s10,
                    mib_per_s(size, s10),
                    1.0 / p10,
                    mib_per_s(size, p10),
                    ratio,
                    p50 / s50,
                    if ratio >= 0.8 { "met" } else { "not met" },
                );
            }
        }
    }
    println!();
    println!("## Round-trip latency (single round trips)");
    println!();
    println!(
        "| transport | size | secure p50 | secure p99 | plain p50 | plain p99 | p50 overhead | p10 overhead | target < 15% |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for net in [Net::Tcp, Net::Ws] {
        for (size, label) in SIZES {
            let secure = find(items, net, Stage::Platform, size, 1, true);
            let plain = find(items, net, Stage::PlainDirect, size, 1, true);
            let overhead = secure.percentile(0.5) / plain.percentile(0.5) - 1.0;
            println!(
                "| {} | {} | {:.1} us | {:.1} us | {:.1} us | {:.1} us | **{:+.0}%** | {:+.0}% | {} |",
                net.name(),
                label,
                us(secure.percentile(0.5)),
                us(secure.percentile(0.99)),
                us(plain.percentile(0.5)),
                us(plain.percentile(0.99)),
                overhead * 100.0,
                (secure.percentile(0.1) / plain.percentile(0.1) - 1.0) * 100.0,
                if overhead < 0.15 { "met" } else { "not met" },
            );
        }
    }
    println!();
    println!("## Where the time goes: throughput (us per message, p10; median in parentheses)");
    println!();
    println!(
        "| transport | size | conc | plain direct | + writer task | model: platform tasks | + seal/open | platform |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for net in [Net::Tcp, Net::Ws] {
        for (size, label) in SIZES {
            for concurrency in CONCURRENCY {
                let cell = |stage: Stage| {
                    if stage == Stage::PlainDirect && concurrency > 1 {
                        return "-".to_owned();
                    }
                    let item = find(items, net, stage, size, concurrency, false);
                    format!(
                        "{:.2} ({:.2})",
                        us(item.percentile(0.1)),
                        us(item.percentile(0.5))
                    )
                };
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    net.name(),
                    label,
                    concurrency,
                    cell(Stage::PlainDirect),
                    cell(Stage::PlainQueued),
                    cell(Stage::ModelHops),
                    cell(Stage::ModelSealed),
                    cell(Stage::Platform),
                );
            }
        }
    }
    println!();
    println!("## Where the time goes: round trip (us, p50; p10 in parentheses)");
    println!();
    println!("| transport | size | plain echo | model: platform tasks | + seal/open | platform |");
    println!("|---|---|---|---|---|---|");
    for net in [Net::Tcp, Net::Ws] {
        for (size, label) in SIZES {
            let cell = |stage: Stage| {
                let item = find(items, net, stage, size, 1, true);
                format!(
                    "{:.1} ({:.1})",
                    us(item.percentile(0.5)),
                    us(item.percentile(0.1))
                )
            };
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                net.name(),
                label,
                cell(Stage::PlainDirect),
                cell(Stage::ModelHops),
                cell(Stage::ModelSealed),
                cell(Stage::Platform),
            );
        }
    }
    println!();
    for item in items.iter().filter(|i| matches!(i.bench, Bench::Crypto(_))) {
        println!(
            "seal_in_place + open of one {} frame (model layout, no I/O): {:.2} us p10, {:.2} us median",
            item.label,
            us(item.percentile(0.1)),
            us(item.percentile(0.5)),
        );
    }
    println!();
    for item in items {
        if let (Some(net), Some(stage)) = (item.net, item.stage) {
            let kind = if matches!(item.bench, Bench::RoundTrip(_)) {
                "rtt".to_owned()
            } else {
                format!("tput c={}", item.concurrency)
            };
            println!(
                "{:<3} {:<5} {:<10} {:<34} samples={}",
                net.name(),
                item.label,
                kind,
                stage.name(),
                item.samples.len()
            );
        }
    }
}

async fn bench(full: bool) {
    let started = Instant::now();
    let mut items = build_items().await;
    if !full {
        for item in &mut items {
            item.run(Duration::ZERO).await;
            assert!(!item.samples.is_empty());
        }
        println!(
            "messaging bench smoke run: {} items ok in {:.1} s (run with `cargo bench` for figures)",
            items.len(),
            started.elapsed().as_secs_f64()
        );
        return;
    }
    let rounds = bench::rounds(DEFAULT_ROUNDS);
    println!("load average before: {}", bench::load_average());
    for item in &mut items {
        if let Bench::Throughput(t) = &mut item.bench {
            t.calibrate().await;
        }
        item.run(Duration::ZERO).await; // warm up
        item.samples.clear();
    }
    for _ in 0..rounds {
        for item in &mut items {
            item.run(SLICE).await;
        }
    }
    print_tables(&items);
    println!();
    println!(
        "{} items, {} rounds, {:.0} s; load average after: {}",
        items.len(),
        rounds,
        started.elapsed().as_secs_f64(),
        bench::load_average()
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The whole bench runs as a task, so both ends run on the two workers.
    runtime
        .block_on(async { tokio::spawn(bench(full)).await })
        .expect("bench task");
}
