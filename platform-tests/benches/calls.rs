//! Small request/response service calls over loopback TCP: Jadeite's secure
//! remote call and same-platform call beside tarpc (plaintext) in one run.
//!
//! `cargo bench -p platform-tests --bench calls` prints, for each of two
//! topologies, one table per concurrency (1 and 64), the verdict on each
//! target and a table attributing the concurrency-1 latency. The cases:
//!
//! - **remote**: platforms A and B in this process, B listening on
//!   `tcp://127.0.0.1:0`, A dialed to it (one link, one session), both with
//!   one shared-key role `bench`; B runs one component providing `Echo`
//!   (`#[service(roles = ["bench"])]`), A calls it through `EchoClient`.
//! - **local**: the same component called from B itself (`Scope::Local`).
//! - **tarpc**: `#[tarpc::service]` with the same method, request and
//!   response types, over one loopback TCP connection (`TCP_NODELAY` set, as
//!   `jadeite-tcp` does), tarpc's serde transport with bincode, the server
//!   spawning a task per request as tarpc's examples do; plaintext.
//!
//! The request is a `u64` and a 48-byte `String`, the response the same
//! shape; the method returns the id plus one and the string.
//!
//! A sample at concurrency 1 is `n` calls in a row (sized for ~4 ms); at
//! concurrency 64, 64 tasks share `n` calls (each takes the next until all
//! are issued) and the sample times calls `n/16` to `n - 64` as they
//! complete: the steady state, without start-up and the final drain. Every
//! call's latency is recorded too.
//!
//! Attribution items (concurrency 1): **tcp echo**, `jadeite-tcp` frames of
//! the encoded request echoed by a task on the accepted connection (the
//! transport's floor); **message echo**, A `Platform::send`s the encoded
//! request to B, a task on B `receive`s and sends it back (the secure
//! message layer without the service layer); **crypto**, no I/O:
//! `SecureSession::seal_in_place` + `open` of a frame the size of the call
//! message and of one the size of the reply (77 and 64 plaintext bytes, the
//! 34-byte routing header as associated data): the cryptographic work on the
//! critical path of one remote call.
//!
//! Topologies. **shared**: one tokio multi-thread runtime with 2 workers
//! runs both ends of every case, as in `benches/messaging.rs`; a task woken
//! while its worker is busy may wake the other worker, so the result depends
//! on how many task hops a call takes. **split**: the client end (A, the
//! tarpc client, the callers) runs on a runtime with 1 worker and the server
//! end (B, its component, the tarpc server) on another, as two processes
//! with a core each would; local calls run on the server end's runtime.
//!
//! Method (see `benches/messaging.rs`): the machine has 2 shared, noisy
//! cores, so every item runs round-robin with all others (a 25 ms slice per
//! item per round). Throughput is reported from the 10th percentile of the
//! per-call time over samples (what it costs when nothing else ran), the
//! median beside it; latency as p50 and p99 of all single calls. Each sample
//! runs as tasks on the runtime of its client end.
//!
//! Without `--bench` (e.g. `cargo test --benches`) it runs a smoke version:
//! every item once with a few calls, checks the answers, and exits.
//! `JADEITE_BENCH_ROUNDS=N` changes the number of rounds (default 80; 10
//! gives figures in a few seconds). `JADEITE_BENCH_ONLY=TEXT` runs only the
//! items whose label (e.g. `remote c=1 split`, `tarpc`) contains `TEXT` and prints
//! one line per item instead of the tables: for profiling one case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jadeite::security::channel::DATA_HEADER_LEN;
use jadeite::security::{PlatformId, Received, SecureSession};
use jadeite::transport::{Connection, Transport};
use jadeite::{Component, Platform, Scope, service};
use jadeite_tcp::TcpTransport;
use platform_tests::{address, bench, session_pair, shared_key};
use serde::{Deserialize, Serialize};
use tarpc::server::Channel as _;
use tokio::runtime::{Handle, Runtime};

const CONCURRENCY: [usize; 2] = [1, 64];
/// 48 bytes.
const BODY: &str = "a small request body of forty-eight bytes, yes!!";
/// Target duration of one sample.
const SAMPLE: Duration = Duration::from_millis(4);
/// Time each item gets per round.
const SLICE: Duration = Duration::from_millis(25);
const DEFAULT_ROUNDS: usize = 80;
/// The ratio the concurrency-1 p50 may reach against tarpc's.
const LATENCY_TARGET: f64 = 1.2;
/// Batch plaintext of one call of this bench (record header, envelope,
/// arguments) and of its reply, as the platform seals them.
const CALL_PLAINTEXT: usize = 77;
const REPLY_PLAINTEXT: usize = 64;
/// Routing header of a data frame: version, kind, two platform ids.
const ROUTING_LEN: usize = 34;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Request {
    id: u64,
    body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Response {
    id: u64,
    body: String,
}

fn request(id: u64) -> Request {
    Request {
        id,
        body: BODY.to_owned(),
    }
}

fn answer(request: Request) -> Response {
    Response {
        id: request.id + 1,
        body: request.body,
    }
}

#[service(roles = ["bench"])]
trait Echo {
    async fn echo(&self, request: Request) -> Response;
}

struct Echoer;

impl Component for Echoer {}

impl Echo for Echoer {
    async fn echo(&self, request: Request) -> Response {
        answer(request)
    }
}

#[tarpc::service]
trait TarpcEcho {
    async fn echo(request: Request) -> Response;
}

#[derive(Clone)]
struct TarpcEchoer;

impl TarpcEcho for TarpcEchoer {
    async fn echo(self, _: tarpc::context::Context, request: Request) -> Response {
        answer(request)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Tarpc,
    Remote,
    Local,
    TcpEcho,
    MessageEcho,
    Crypto,
}

impl Case {
    /// Short name, for `JADEITE_BENCH_ONLY`.
    fn key(self) -> &'static str {
        match self {
            Case::Tarpc => "tarpc",
            Case::Remote => "remote",
            Case::Local => "local",
            Case::TcpEcho => "tcp-echo",
            Case::MessageEcho => "message-echo",
            Case::Crypto => "crypto",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Case::Tarpc => "tarpc (plaintext)",
            Case::Remote => "jadeite remote (secure)",
            Case::Local => "jadeite local",
            Case::TcpEcho => "tcp echo (jadeite-tcp frames)",
            Case::MessageEcho => "message echo (Platform::send)",
            Case::Crypto => "crypto: 2x seal + open, no I/O",
        }
    }
}

/// Where the two ends of a case run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// Both ends, client and server, on one runtime with 2 workers, as in
    /// `benches/messaging.rs`: any task may run on either core.
    Shared,
    /// The client end on a runtime of its own with 1 worker, the server end
    /// on another: as two processes with a core each would run.
    Split,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Shared => "shared",
            Topology::Split => "split",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Topology::Shared => "shared runtime (2 workers for both ends)",
            Topology::Split => "split runtimes (1 worker for the client end, 1 for the server end)",
        }
    }
}

/// The runtimes the client and the server end of one topology run on.
#[derive(Clone)]
struct Ends {
    topology: Topology,
    client: Handle,
    server: Handle,
}

/// Runs `future` as a task on `runtime` and waits for it.
async fn on<T: Send + 'static>(
    runtime: &Handle,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    runtime.spawn(future).await.expect("setup task")
}

/// Platforms A (client end) and B (server end) over TCP with the `bench`
/// role; B serves `Echo` and echoes application messages.
struct Platforms {
    a: Platform,
    b: Platform,
    b_id: PlatformId,
}

async fn platforms(ends: &Ends) -> Platforms {
    let b = on(&ends.server, async {
        let b = Platform::builder("b")
            .credentials(shared_key("bench", 7))
            .transport(Arc::new(TcpTransport::new()))
            .listen(address("tcp://127.0.0.1:0"))
            .start()
            .await
            .expect("b starts");
        // Leak the handle: the component lives as long as the platform.
        std::mem::forget(
            b.spawn(Echoer)
                .provide::<EchoServer>()
                .start()
                .await
                .expect("component starts"),
        );
        let echo = b.clone();
        tokio::spawn(async move {
            while let Some(delivery) = echo.receive().await {
                if echo.send(delivery.from, delivery.payload).await.is_err() {
                    break;
                }
            }
        });
        b
    })
    .await;
    let listening = b.listen_addresses()[0].clone();
    let (a, b_id) = on(&ends.client, async move {
        let a = Platform::builder("a")
            .credentials(shared_key("bench", 7))
            .transport(Arc::new(TcpTransport::new()))
            .start()
            .await
            .expect("a starts");
        let b_id = a.connect(&listening).await.expect("connect");
        (a, b_id)
    })
    .await;
    Platforms { a, b, b_id }
}

/// A tarpc server on the server end and a client on the client end.
async fn tarpc_client(ends: &Ends) -> TarpcEchoClient {
    let listener = on(&ends.server, async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("tarpc listens")
    })
    .await;
    let bound = listener.local_addr().expect("bound address");
    ends.server.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).expect("nodelay");
            let transport = tarpc::serde_transport::Transport::from((
                stream,
                tarpc::tokio_serde::formats::Bincode::default(),
            ));
            let channel = tarpc::server::BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(TarpcEchoer.serve())
                    .for_each(|request| async move {
                        tokio::spawn(request);
                    }),
            );
        }
    });
    on(&ends.client, async move {
        let stream = tokio::net::TcpStream::connect(bound)
            .await
            .expect("tarpc connects");
        stream.set_nodelay(true).expect("nodelay");
        let transport = tarpc::serde_transport::Transport::from((
            stream,
            tarpc::tokio_serde::formats::Bincode::default(),
        ));
        TarpcEchoClient::new(tarpc::client::Config::default(), transport).spawn()
    })
    .await
}

/// A `jadeite-tcp` connection from the client end whose far end, on the
/// server end, echoes every frame.
async fn tcp_echo(ends: &Ends) -> Connection {
    let transport = TcpTransport::new();
    let listen = transport.clone();
    let mut listener = on(&ends.server, async move {
        listen
            .listen(&address("tcp://127.0.0.1:0"))
            .await
            .expect("listen")
    })
    .await;
    let bound = listener.local_address().clone();
    let accepted = ends.server.spawn(async move {
        let Connection {
            mut sink,
            mut source,
            ..
        } = listener.accept().await.expect("accept");
        tokio::spawn(async move {
            while let Ok(Some(frame)) = source.recv().await {
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        });
    });
    let dialed = on(&ends.client, async move {
        transport.connect(&bound).await.expect("connect")
    })
    .await;
    accepted.await.expect("accepting task");
    dialed
}

/// The sessions of both ends, for the crypto item.
struct Sessions {
    client: SecureSession,
    server: SecureSession,
}

impl Sessions {
    /// Seals `len` plaintext bytes on `from` and opens them on `to`, in the
    /// frame layout of the platform (header reserved in front, sealed in place).
    fn seal_open(from: &mut SecureSession, to: &mut SecureSession, len: usize) {
        let header = [7u8; ROUTING_LEN];
        let mut packet = Vec::with_capacity(DATA_HEADER_LEN + len + 16);
        packet.resize(DATA_HEADER_LEN + len, 0x5a);
        from.seal_in_place(&header, &mut packet, Instant::now())
            .expect("seal");
        match to.open(&header, &mut packet, Instant::now()).expect("open") {
            Received::Application(plaintext) => assert_eq!(plaintext.len(), len),
            Received::Control => panic!("a data message"),
        }
    }

    fn call(&mut self) {
        Self::seal_open(&mut self.client, &mut self.server, CALL_PLAINTEXT);
        Self::seal_open(&mut self.server, &mut self.client, REPLY_PLAINTEXT);
    }
}

/// One way of making a call; the clonable ones run at any concurrency.
enum Caller {
    Tarpc(TarpcEchoClient),
    Jadeite(EchoClient),
    Frames(Connection),
    Messages(Platform, PlatformId),
    /// Boxed: two sessions make it several times the size of the others.
    Crypto(Box<Sessions>),
}

impl Caller {
    fn try_clone(&self) -> Option<Self> {
        match self {
            Caller::Tarpc(client) => Some(Caller::Tarpc(client.clone())),
            Caller::Jadeite(client) => Some(Caller::Jadeite(client.clone())),
            Caller::Frames(_) | Caller::Messages(..) | Caller::Crypto(_) => None,
        }
    }

    /// One call with request `id`; checks the answer.
    async fn call(&mut self, id: u64) {
        let response = match self {
            Caller::Tarpc(client) => client
                .echo(tarpc::context::current(), request(id))
                .await
                .expect("tarpc call"),
            Caller::Jadeite(client) => client.echo(request(id)).await.expect("jadeite call"),
            Caller::Frames(connection) => {
                let bytes = jadeite::codec::encode(&request(id)).expect("encodes");
                connection.sink.send(bytes).await.expect("send");
                let echoed = connection.source.recv().await.expect("recv").expect("open");
                answer(jadeite::codec::decode(&echoed).expect("decodes"))
            }
            Caller::Messages(platform, to) => {
                let bytes = jadeite::codec::encode(&request(id)).expect("encodes");
                platform.send(*to, bytes).await.expect("send");
                let echoed = platform.receive().await.expect("running");
                answer(jadeite::codec::decode(&echoed.payload).expect("decodes"))
            }
            Caller::Crypto(sessions) => {
                sessions.call();
                // Yield now and then, as a call would: the runtime's other
                // tasks (the idle platforms' timers) are not starved.
                if id.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
                answer(request(id))
            }
        };
        assert_eq!(response.id, id + 1, "the answer to this call");
        assert_eq!(response.body.len(), BODY.len());
    }
}

/// Fewest calls in one sample: enough to skip the start and the drain.
fn min_calls(concurrency: usize) -> usize {
    16 * concurrency.max(1)
}

struct Item {
    topology: Topology,
    case: Case,
    concurrency: usize,
    /// The runtime the calls are made on.
    runtime: Handle,
    /// `None` only while a sample runs.
    caller: Option<Caller>,
    /// Calls per sample.
    count: usize,
    /// Seconds per call, one per sample.
    samples: Vec<f64>,
    /// Seconds, one per call.
    latencies: Vec<f64>,
    /// Calls made, calibration and warm-up included.
    made: usize,
}

impl Item {
    fn new(ends: &Ends, case: Case, concurrency: usize, caller: Caller) -> Self {
        Self {
            topology: ends.topology,
            case,
            concurrency,
            runtime: ends.client.clone(),
            caller: Some(caller),
            count: min_calls(concurrency),
            samples: Vec::new(),
            latencies: Vec::new(),
            made: 0,
        }
    }

    /// One sample of `self.count` calls, made on the item's runtime;
    /// returns seconds per call.
    async fn sample(&mut self) -> f64 {
        self.made += self.count;
        let total = self.count;
        if self.concurrency == 1 {
            let mut caller = self.caller.take().expect("the caller is back");
            let (caller, latencies, elapsed) = self
                .runtime
                .spawn(async move {
                    let mut latencies = Vec::with_capacity(total);
                    let start = Instant::now();
                    for id in 0..total {
                        let begun = Instant::now();
                        caller.call(id as u64).await;
                        latencies.push(begun.elapsed().as_secs_f64());
                    }
                    (caller, latencies, start.elapsed())
                })
                .await
                .expect("caller task");
            self.caller = Some(caller);
            self.latencies.extend(latencies);
            return elapsed.as_secs_f64() / total as f64;
        }
        let skip = total / 16;
        let until = total - self.concurrency;
        let issued = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let marks: Arc<[OnceLock<Instant>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
        let per_task = 2 * total / self.concurrency;
        let caller = self.caller.as_ref().expect("the caller is back");
        let tasks: Vec<_> = (0..self.concurrency)
            .map(|_| {
                let mut caller = caller.try_clone().expect("a clonable caller");
                let (issued, done, marks) = (issued.clone(), done.clone(), marks.clone());
                self.runtime.spawn(async move {
                    let mut latencies = Vec::with_capacity(per_task);
                    loop {
                        let id = issued.fetch_add(1, Ordering::Relaxed);
                        if id >= total {
                            break;
                        }
                        let begun = Instant::now();
                        caller.call(id as u64).await;
                        let now = Instant::now();
                        latencies.push((now - begun).as_secs_f64());
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if finished == skip {
                            let _ = marks[0].set(now);
                        } else if finished == until {
                            let _ = marks[1].set(now);
                        }
                    }
                    latencies
                })
            })
            .collect();
        for task in tasks {
            self.latencies.extend(task.await.expect("caller task"));
        }
        let (from, to) = (
            *marks[0].get().expect("start mark"),
            *marks[1].get().expect("end mark"),
        );
        (to - from).as_secs_f64() / (until - skip) as f64
    }

    /// Sizes samples to about [`SAMPLE`].
    async fn calibrate(&mut self) {
        self.sample().await;
        let per_call = self.sample().await.max(1e-8);
        let unit = self.concurrency.max(16);
        let wanted = (SAMPLE.as_secs_f64() / per_call) as usize;
        self.count = (wanted / unit).clamp(4, 4096) * unit;
    }

    /// Runs samples for about `slice`, or exactly one when `slice` is zero.
    async fn run(&mut self, slice: Duration) {
        let start = Instant::now();
        loop {
            let s = self.sample().await;
            self.samples.push(s);
            if start.elapsed() >= slice {
                break;
            }
        }
    }

    fn label(&self) -> String {
        format!(
            "{} c={} {}",
            self.case.key(),
            self.concurrency,
            self.topology.name()
        )
    }

    fn per_call(&self, fraction: f64) -> f64 {
        percentile(&self.samples, fraction)
    }

    fn latency(&self, fraction: f64) -> f64 {
        percentile(&self.latencies, fraction)
    }
}

fn percentile(values: &[f64], fraction: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1);
    sorted[index]
}

fn find(items: &[Item], topology: Topology, case: Case, concurrency: usize) -> &Item {
    items
        .iter()
        .find(|i| {
            // One crypto item serves both topologies: it does no I/O.
            (i.topology == topology || case == Case::Crypto)
                && i.case == case
                && i.concurrency == concurrency
        })
        .expect("item exists")
}

/// Every item of one topology; the platforms stay up as long as the items.
async fn build_items(ends: &Ends) -> (Vec<Item>, Platforms) {
    let platforms = platforms(ends).await;
    let tarpc = tarpc_client(ends).await;
    let remote: EchoClient = platforms
        .a
        .find(Scope::Platform(platforms.b_id))
        .await
        .expect("remote Echo found");
    let local: EchoClient = platforms
        .b
        .find(Scope::Local)
        .await
        .expect("local Echo found");
    // Same-platform calls are made on B's runtime.
    let local_ends = Ends {
        client: ends.server.clone(),
        ..ends.clone()
    };
    let mut items = Vec::new();
    for concurrency in CONCURRENCY {
        items.push(Item::new(
            ends,
            Case::Tarpc,
            concurrency,
            Caller::Tarpc(tarpc.clone()),
        ));
        items.push(Item::new(
            ends,
            Case::Remote,
            concurrency,
            Caller::Jadeite(remote.clone()),
        ));
        items.push(Item::new(
            &local_ends,
            Case::Local,
            concurrency,
            Caller::Jadeite(local.clone()),
        ));
    }
    items.push(Item::new(
        ends,
        Case::TcpEcho,
        1,
        Caller::Frames(tcp_echo(ends).await),
    ));
    items.push(Item::new(
        ends,
        Case::MessageEcho,
        1,
        Caller::Messages(platforms.a.clone(), platforms.b_id),
    ));
    if ends.topology == Topology::Shared {
        let (client, server) = session_pair();
        items.push(Item::new(
            ends,
            Case::Crypto,
            1,
            Caller::Crypto(Box::new(Sessions { client, server })),
        ));
    }
    (items, platforms)
}

fn us(seconds: f64) -> f64 {
    seconds * 1e6
}

fn print_tables(items: &[Item], topology: Topology) {
    println!();
    println!("# {}", topology.title());
    for concurrency in CONCURRENCY {
        let tarpc = find(items, topology, Case::Tarpc, concurrency);
        println!();
        println!(
            "## {}, concurrency {concurrency}: throughput (from the p10 per-call time; median in parentheses) and latency",
            topology.name()
        );
        println!();
        println!(
            "| case | calls/s | (median) | vs tarpc | (median) | p50 latency | p99 latency | p50 vs tarpc | p99 vs tarpc |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for item in items.iter().filter(|i| {
            i.topology == topology && i.concurrency == concurrency && i.case != Case::Crypto
        }) {
            println!(
                "| {} | {:.0} | ({:.0}) | **{:.3}** | ({:.3}) | {:.1} us | {:.1} us | **{:.3}** | {:.3} |",
                item.case.name(),
                1.0 / item.per_call(0.1),
                1.0 / item.per_call(0.5),
                tarpc.per_call(0.1) / item.per_call(0.1),
                tarpc.per_call(0.5) / item.per_call(0.5),
                us(item.latency(0.5)),
                us(item.latency(0.99)),
                item.latency(0.5) / tarpc.latency(0.5),
                item.latency(0.99) / tarpc.latency(0.99),
            );
        }
    }
    println!();
    println!("## {}: targets", topology.name());
    println!();
    let remote = find(items, topology, Case::Remote, 64);
    let tarpc = find(items, topology, Case::Tarpc, 64);
    let ratio = tarpc.per_call(0.1) / remote.per_call(0.1);
    println!(
        "secure remote throughput at concurrency 64 >= tarpc's: {:.0} vs {:.0} calls/s, ratio {:.3} (median {:.3}): {}",
        1.0 / remote.per_call(0.1),
        1.0 / tarpc.per_call(0.1),
        ratio,
        tarpc.per_call(0.5) / remote.per_call(0.5),
        if ratio >= 1.0 { "met" } else { "not met" },
    );
    let remote = find(items, topology, Case::Remote, 1);
    let tarpc = find(items, topology, Case::Tarpc, 1);
    let ratio = remote.latency(0.5) / tarpc.latency(0.5);
    println!(
        "secure remote p50 latency at concurrency 1 within {LATENCY_TARGET}x tarpc's: {:.1} vs {:.1} us, ratio {:.3} (p10 ratio {:.3}): {}",
        us(remote.latency(0.5)),
        us(tarpc.latency(0.5)),
        ratio,
        remote.latency(0.1) / tarpc.latency(0.1),
        if ratio <= LATENCY_TARGET {
            "met"
        } else {
            "not met"
        },
    );
    println!();
    println!(
        "## {}: where the time goes at concurrency 1 (single calls, us)",
        topology.name()
    );
    println!();
    println!("| case | p10 | p50 | p99 |");
    println!("|---|---|---|---|");
    for case in [
        Case::TcpEcho,
        Case::Tarpc,
        Case::MessageEcho,
        Case::Remote,
        Case::Local,
        Case::Crypto,
    ] {
        let item = find(items, topology, case, 1);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            case.name(),
            us(item.latency(0.1)),
            us(item.latency(0.5)),
            us(item.latency(0.99)),
        );
    }
}

fn print_counts(items: &[Item]) {
    println!();
    for item in items {
        println!(
            "{:<30} {:<6} c={:<3} calls/sample={:<6} samples={:<5} calls={}",
            item.case.name(),
            item.topology.name(),
            item.concurrency,
            item.count,
            item.samples.len(),
            item.latencies.len(),
        );
    }
}

async fn bench(full: bool, split: Ends) {
    let started = Instant::now();
    let here = Handle::current();
    let shared = Ends {
        topology: Topology::Shared,
        client: here.clone(),
        server: here,
    };
    let (mut items, shared_platforms) = build_items(&shared).await;
    let (split_items, split_platforms) = build_items(&split).await;
    items.extend(split_items);
    let only = std::env::var("JADEITE_BENCH_ONLY").ok();
    if let Some(only) = &only {
        items.retain(|item| item.label().contains(only.as_str()));
    }
    if !full {
        for item in &mut items {
            item.run(Duration::ZERO).await;
            assert_eq!(item.latencies.len(), item.count);
        }
        println!(
            "calls bench smoke run: {} items ok in {:.1} s (run with `cargo bench` for figures)",
            items.len(),
            started.elapsed().as_secs_f64()
        );
        return;
    }
    let rounds = bench::rounds(DEFAULT_ROUNDS);
    println!("load average before: {}", bench::load_average());
    for item in &mut items {
        item.calibrate().await;
        item.run(Duration::ZERO).await; // warm up
        item.samples.clear();
        item.latencies.clear();
    }
    for _ in 0..rounds {
        for item in &mut items {
            item.run(SLICE).await;
        }
    }
    if only.is_some() {
        for item in &items {
            println!(
                "{:<22} {:.0} calls/s (median {:.0}), latency p10 {:.1} us, p50 {:.1} us, p99 {:.1} us, {} samples, {} calls made",
                item.label(),
                1.0 / item.per_call(0.1),
                1.0 / item.per_call(0.5),
                us(item.latency(0.1)),
                us(item.latency(0.5)),
                us(item.latency(0.99)),
                item.samples.len(),
                item.made,
            );
        }
    } else {
        print_tables(&items, Topology::Shared);
        print_tables(&items, Topology::Split);
        print_counts(&items);
    }
    println!();
    println!(
        "{} items, {} rounds, {:.0} s; load average after: {}",
        items.len(),
        rounds,
        started.elapsed().as_secs_f64(),
        bench::load_average()
    );
    for platforms in [shared_platforms, split_platforms] {
        platforms.a.shutdown();
        platforms.b.shutdown();
    }
}

fn runtime(workers: usize, name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let shared = runtime(2, "shared");
    let (client, server) = (runtime(1, "client-end"), runtime(1, "server-end"));
    let split = Ends {
        topology: Topology::Split,
        client: client.handle().clone(),
        server: server.handle().clone(),
    };
    // The driver runs as a task of the shared runtime, so that in the shared
    // topology both ends run on its two workers.
    shared
        .block_on(async { tokio::spawn(bench(full, split)).await })
        .expect("bench task");
}
