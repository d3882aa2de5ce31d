//! The secure channel's data path beside raw ChaCha20-Poly1305.
//!
//! Criterion groups (throughput in plaintext bytes per round trip):
//! - `channel/seal_in_place+open/<size>`: `SecureSession::seal_in_place` on
//!   one session and `open` on its peer, reusing one buffer (zero copy);
//! - `channel/seal+open/<size>`: `seal` (allocates the packet) then `open`;
//! - `channel/raw_aead/<size>`: `chacha20poly1305` directly, encrypt then
//!   decrypt in place on the same buffer, 13-byte header as AAD.
//!
//! The replay window alone is measured by `benches/replay.rs`; the table here
//! adds `ReplayWindow::check` + `accept` per message for comparison.
//!
//! After the groups, in the same process, a table gives our throughput over
//! raw throughput (10th percentile of short interleaved samples timed with
//! `Instant`; medians beside).
//! `JADEITE_BENCH_TABLE=0` skips the table, `=only` skips the criterion groups.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{ROUNDS, SLICE};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use criterion::{BenchmarkId, Criterion, Throughput};
use jadeite_security::channel::{DATA_HEADER_LEN, DATA_OVERHEAD};
use jadeite_security::replay::{DEFAULT_WINDOW_BITS, ReplayWindow};
use jadeite_security::{Credentials, Received, SecureSession};

const SIZES: [(usize, &str); 3] = [(64, "64B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

/// No routing header: the AAD is then exactly the 13-byte data header, as in
/// the raw baseline.
const ROUTING: &[u8] = &[];

/// An established pair: (initiator session, responder session).
fn sessions() -> (SecureSession, SecureSession) {
    let creds =
        || Credentials::new().with_shared_key(support::role("bench"), support::shared_key(3));
    let (i, r) = support::run(&support::config(creds()), &support::config(creds())).both();
    (i.session, r.session)
}

/// The zero-copy path: `packet` holds the 13 reserved header bytes and the
/// plaintext; seal appends the tag, open decrypts in place, and truncating the
/// tag leaves the buffer ready for the next message.
struct InPlace {
    sender: SecureSession,
    receiver: SecureSession,
    packet: Vec<u8>,
    now: Instant,
}

impl InPlace {
    fn new(size: usize) -> Self {
        let (sender, receiver) = sessions();
        let mut packet = Vec::with_capacity(DATA_OVERHEAD + size);
        packet.resize(DATA_HEADER_LEN + size, 0x42);
        Self {
            sender,
            receiver,
            packet,
            now: Instant::now(),
        }
    }

    fn round_trip(&mut self) {
        self.sender
            .seal_in_place(ROUTING, &mut self.packet, self.now)
            .expect("seal");
        let len = match self
            .receiver
            .open(ROUTING, &mut self.packet, self.now)
            .expect("open")
        {
            Received::Application(plaintext) => black_box(plaintext).len(),
            Received::Control => panic!("unexpected control message"),
        };
        self.packet.truncate(DATA_HEADER_LEN + len);
    }
}

/// The allocating path: `seal` builds a new packet per message.
struct Allocating {
    sender: SecureSession,
    receiver: SecureSession,
    plaintext: Vec<u8>,
    now: Instant,
}

impl Allocating {
    fn new(size: usize) -> Self {
        let (sender, receiver) = sessions();
        Self {
            sender,
            receiver,
            plaintext: vec![0x42; size],
            now: Instant::now(),
        }
    }

    fn round_trip(&mut self) {
        let mut packet = self
            .sender
            .seal(ROUTING, &self.plaintext, self.now)
            .expect("seal");
        match self
            .receiver
            .open(ROUTING, &mut packet, self.now)
            .expect("open")
        {
            Received::Application(plaintext) => {
                black_box(plaintext);
            }
            Received::Control => panic!("unexpected control message"),
        }
    }
}

/// The baseline: the same AEAD, same key setup once, same buffer, a 13-byte
/// AAD built per message from a counter, a nonce from the same counter.
struct Raw {
    cipher: ChaCha20Poly1305,
    buffer: Vec<u8>,
    counter: u64,
}

impl Raw {
    fn new(size: usize) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(&[7u8; 32].into()),
            buffer: vec![0x42; size],
            counter: 0,
        }
    }

    fn round_trip(&mut self) {
        let counter = self.counter;
        self.counter += 1;
        let mut aad = [0u8; DATA_HEADER_LEN];
        aad[0] = 0x10;
        aad[5..].copy_from_slice(&counter.to_be_bytes());
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        let nonce = Nonce::from(nonce);
        let tag: Tag = self
            .cipher
            .encrypt_inout_detached(&nonce, &aad, self.buffer.as_mut_slice().into())
            .expect("encrypt");
        self.cipher
            .decrypt_inout_detached(&nonce, &aad, self.buffer.as_mut_slice().into(), &tag)
            .expect("decrypt");
        black_box(&self.buffer);
    }
}

/// One receive direction's replay bookkeeping, as `open` does it.
struct Replay {
    window: ReplayWindow,
    counter: u64,
}

impl Replay {
    fn new() -> Self {
        Self {
            window: ReplayWindow::new(DEFAULT_WINDOW_BITS),
            counter: 0,
        }
    }

    fn message(&mut self) {
        let counter = black_box(self.counter);
        self.counter += 1;
        self.window.check(counter).expect("fresh");
        self.window.accept(counter).expect("fresh");
    }
}

fn criterion_channel(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel");
    group
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut in_place = InPlace::new(size);
        group.bench_function(BenchmarkId::new("seal_in_place+open", label), |b| {
            b.iter(|| in_place.round_trip())
        });
        let mut allocating = Allocating::new(size);
        group.bench_function(BenchmarkId::new("seal+open", label), |b| {
            b.iter(|| allocating.round_trip())
        });
        let mut raw = Raw::new(size);
        group.bench_function(BenchmarkId::new("raw_aead", label), |b| {
            b.iter(|| raw.round_trip())
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// The ratio table
//
// Many short samples (~200 us each), interleaved across the items being
// compared, 10th percentile: on the shared machine a sample that other jobs
// interrupted is slower, never faster, so the low percentile is the cost of
// the code itself. Medians are printed beside it.

/// (p10, median) seconds per call of each closure.
fn measure(items: &mut [&mut dyn FnMut()]) -> Vec<(f64, f64)> {
    let count = items.len();
    let mut timed: Vec<common::Item<'_>> = items
        .iter_mut()
        .map(|f| {
            (
                String::new(),
                Box::new(common::timed(f)) as Box<dyn FnMut(u64) -> Vec<f64>>,
            )
        })
        .collect();
    let samples = common::measure(&mut timed);
    (0..count)
        .map(|k| {
            (
                common::Stat::P10.of(&samples, k, 0),
                common::Stat::Median.of(&samples, k, 0),
            )
        })
        .collect()
}

fn mib_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds / (1024.0 * 1024.0)
}

fn print_table() {
    eprintln!(
        "\nratio table: {ROUNDS} interleaved rounds of {} ms slices ...",
        SLICE.as_millis()
    );
    let load_before = common::load_average();
    let mut replay = Replay::new();
    let (replay_cost, _) = measure(&mut [&mut || replay.message()])[0];

    let mut rows = Vec::new();
    for (size, label) in SIZES {
        let mut in_place = InPlace::new(size);
        let mut allocating = Allocating::new(size);
        let mut raw = Raw::new(size);
        let t = measure(&mut [
            &mut || in_place.round_trip(),
            &mut || allocating.round_trip(),
            &mut || raw.round_trip(),
        ]);
        rows.push((size, label, t));
    }
    let load_after = common::load_average();

    println!(
        "\n== channel round trip (seal + open) vs. raw ChaCha20-Poly1305 (encrypt + decrypt in place): p10 of ~200 us samples (load average before {load_before}, after {load_after}) =="
    );
    for (size, label, t) in rows {
        let ((in_place, in_place_median), (allocating, _), (raw, raw_median)) = (t[0], t[1], t[2]);
        println!(
            "channel size={label:<6} seal_in_place+open={:>7.1} MiB/s ({:>7.2} us)  seal+open={:>7.1} MiB/s ({:>7.2} us)  raw={:>7.1} MiB/s ({:>7.2} us)  ratio in_place/raw={:.3} (median {:.3})  seal/raw={:.3}  overhead={:+.2} us/msg  replay check+accept={:.1} ns ({:.2}% of raw)",
            mib_per_s(size, in_place),
            in_place * 1e6,
            mib_per_s(size, allocating),
            allocating * 1e6,
            mib_per_s(size, raw),
            raw * 1e6,
            raw / in_place,
            raw_median / in_place_median,
            raw / allocating,
            (in_place - raw) * 1e6,
            replay_cost * 1e9,
            100.0 * replay_cost / raw,
        );
    }
}

fn main() {
    common::bench_main(criterion_channel, print_table);
}
