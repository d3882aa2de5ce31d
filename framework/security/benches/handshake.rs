//! Full handshakes in process, both sides, beside the primitives they run.
//!
//! Criterion groups (for the CLI/HTML reports):
//! - `handshake/<suite>/<case>`: one complete four-message handshake, both
//!   sides, for cases `none-accept` (no role, policy Accept), `shared-key`
//!   (0 passwords, one shared-key role), `passwords-1` and `passwords-3`.
//! - `handshake-primitives/...`: every primitive the handshake runs.
//!
//! After the groups, in the same process, a table compares each measured
//! handshake with the summed cost of its primitives (10th percentile of many
//! short interleaved samples timed with `Instant`, so that time other jobs
//! take from the shared machine drops out; medians beside). Set
//! `JADEITE_BENCH_TABLE=0` to skip the table, `=only` to skip the criterion
//! groups. See `docs/performance.md`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Item, ROUNDS, SLICE, Stat, load_average, measure, timed};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use ed448_goldilocks::Scalar;
use ed448_goldilocks::decaf::{CompressedDecaf, DecafPoint};
use jadeite_security::primitives::{
    HASH_LEN, KemAlgorithm, Transcript, X448Secret, hash, mac, random_array,
};
use jadeite_security::{
    CipherSuite, Credentials, Handshake, HandshakeConfig, UnauthenticatedPolicy,
};

// ---------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Roles {
    /// No role at all, both sides under `UnauthenticatedPolicy::Accept`.
    NoneAccept,
    /// One shared-key role (the "0 passwords" case: Refuse needs a verified role).
    SharedKey,
    /// This many password roles (J-PAKE runs), policy Refuse.
    Passwords(usize),
}

impl Roles {
    const ALL: [Roles; 4] = [
        Roles::NoneAccept,
        Roles::SharedKey,
        Roles::Passwords(1),
        Roles::Passwords(3),
    ];

    fn name(self) -> String {
        match self {
            Roles::NoneAccept => "none-accept".to_owned(),
            Roles::SharedKey => "shared-key".to_owned(),
            Roles::Passwords(n) => format!("passwords-{n}"),
        }
    }

    fn passwords(self) -> usize {
        match self {
            Roles::Passwords(n) => n,
            _ => 0,
        }
    }

    /// Roles proved with a MAC authenticator (shared keys and passwords).
    fn mac_roles(self) -> usize {
        match self {
            Roles::NoneAccept => 0,
            Roles::SharedKey => 1,
            Roles::Passwords(n) => n,
        }
    }

    fn credentials(self) -> Credentials {
        match self {
            Roles::NoneAccept => Credentials::new(),
            Roles::SharedKey => Credentials::new()
                .with_shared_key(support::role("inventory"), support::shared_key(7)),
            Roles::Passwords(n) => (0..n).fold(Credentials::new(), |c, i| {
                c.with_password(
                    support::role(&format!("logistics-{i}")),
                    support::password("correct horse battery staple"),
                )
            }),
        }
    }

    fn policy(self) -> UnauthenticatedPolicy {
        match self {
            Roles::NoneAccept => UnauthenticatedPolicy::Accept,
            _ => UnauthenticatedPolicy::Refuse,
        }
    }

    fn configs(self, suite: CipherSuite) -> (Arc<HandshakeConfig>, Arc<HandshakeConfig>) {
        (
            support::config_with(self.credentials(), &[suite], self.policy()),
            support::config_with(self.credentials(), &[suite], self.policy()),
        )
    }
}

fn suite_short(suite: CipherSuite) -> &'static str {
    match suite.kem() {
        KemAlgorithm::NewHope1024Cca => "newhope1024",
        KemAlgorithm::MlKem1024 => "mlkem1024",
    }
}

/// Runs one handshake with the tests' driver and checks it succeeded with the
/// expected role sets; returns the sizes of the four messages.
fn checked_run(roles: Roles, suite: CipherSuite) -> Vec<usize> {
    let (i, r) = roles.configs(suite);
    let outcome = support::run(&i, &r);
    let sizes = outcome.messages.iter().map(Vec::len).collect();
    let (a, b) = outcome.both();
    let expected = roles.mac_roles();
    assert_eq!(
        (a.peer_roles.len(), b.peer_roles.len()),
        (expected, expected)
    );
    assert_eq!((a.suite, b.suite), (suite, suite));
    sizes
}

const STEPS: [&str; 5] = [
    "I initiate",
    "R <- Offer",
    "I <- Accept",
    "R <- Finish",
    "I <- Confirm",
];

/// The same exchange as `support::run`, timing each of the five calls.
fn timed_handshake(i: &Arc<HandshakeConfig>, r: &Arc<HandshakeConfig>) -> [Duration; 5] {
    let t0 = Instant::now();
    let (mut initiator, offer) = Handshake::initiate(Arc::clone(i), None).expect("initiate");
    let t1 = Instant::now();
    let mut responder = Handshake::respond(Arc::clone(r));
    let accept = responder
        .receive(&offer, support::now())
        .expect("offer")
        .reply
        .expect("accept");
    let t2 = Instant::now();
    let finish = initiator
        .receive(&accept, support::now())
        .expect("accept")
        .reply
        .expect("finish");
    let t3 = Instant::now();
    let progress = responder.receive(&finish, support::now()).expect("finish");
    let confirm = progress.reply.expect("confirm");
    let t4 = Instant::now();
    let done = initiator
        .receive(&confirm, support::now())
        .expect("confirm");
    let t5 = Instant::now();
    black_box((progress.established, done.established));
    [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]
}

// ---------------------------------------------------------------------------
// Primitive fixtures

struct Fixtures {
    x448: X448Secret,
    x448_peer: [u8; 56],
    decaf_point: DecafPoint,
    decaf_scalar: Scalar,
    decaf_encoded: CompressedDecaf,
    mac_key: [u8; HASH_LEN],
    mac_input: [u8; 64],
    hash_input: Vec<u8>,
}

const HASH_BUFFER: usize = 16 * 1024;

impl Fixtures {
    fn new() -> Self {
        let x448 = X448Secret::generate().expect("rng");
        let x448_peer = X448Secret::generate().expect("rng").public_key();
        let decaf_scalar = wide_random_scalar();
        let decaf_point = &DecafPoint::generator() * &wide_random_scalar();
        let decaf_encoded = decaf_point.compress();
        Self {
            x448,
            x448_peer,
            decaf_point,
            decaf_scalar,
            decaf_encoded,
            mac_key: random_array().expect("rng"),
            mac_input: random_array().expect("rng"),
            hash_input: vec![0x5a; HASH_BUFFER],
        }
    }
}

/// What J-PAKE does: a scalar from 114 random bytes, reduced mod the group order.
fn wide_random_scalar() -> Scalar {
    Scalar::from_bytes_mod_order_wide(&random_array::<114>().expect("rng"))
}

struct KemFixture {
    kem: KemAlgorithm,
    public: Vec<u8>,
    secret: jadeite_security::primitives::KemDecapsulationKey,
    ciphertext: Vec<u8>,
}

impl KemFixture {
    fn new(kem: KemAlgorithm) -> Self {
        let (secret, public) = kem.generate().expect("kem keygen");
        let (ciphertext, _) = kem.encapsulate(&public).expect("kem encapsulate");
        Self {
            kem,
            public,
            secret,
            ciphertext,
        }
    }
}

// ---------------------------------------------------------------------------
// Criterion

fn criterion_handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for suite in CipherSuite::ALL {
        for roles in Roles::ALL {
            let (i, r) = roles.configs(suite);
            group.bench_function(BenchmarkId::new(suite_short(suite), roles.name()), |b| {
                b.iter(|| support::run(&i, &r))
            });
        }
    }
    group.finish();
}

fn criterion_primitives(c: &mut Criterion) {
    let f = Fixtures::new();
    let mut group = c.benchmark_group("handshake-primitives");
    group
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    group.bench_function("x448/generate", |b| b.iter(X448Secret::generate));
    group.bench_function("x448/public_key", |b| b.iter(|| f.x448.public_key()));
    group.bench_function("x448/diffie_hellman", |b| {
        b.iter(|| f.x448.diffie_hellman(black_box(&f.x448_peer)))
    });
    for kem in CipherSuite::ALL.map(CipherSuite::kem) {
        let k = KemFixture::new(kem);
        let name = format!("{kem:?}");
        group.bench_function(format!("kem/{name}/generate"), |b| {
            b.iter(|| k.kem.generate())
        });
        group.bench_function(format!("kem/{name}/encapsulate"), |b| {
            b.iter(|| k.kem.encapsulate(black_box(&k.public)))
        });
        group.bench_function(format!("kem/{name}/decapsulate"), |b| {
            b.iter(|| k.secret.decapsulate(black_box(&k.ciphertext)))
        });
    }
    group.bench_function("decaf448/scalar_mul", |b| {
        b.iter(|| black_box(&f.decaf_point) * black_box(&f.decaf_scalar))
    });
    group.bench_function("decaf448/decompress", |b| {
        b.iter(|| black_box(&f.decaf_encoded).decompress())
    });
    group.bench_function("decaf448/compress", |b| {
        b.iter(|| black_box(&f.decaf_point).compress())
    });
    group.bench_function("decaf448/wide_random_scalar", |b| {
        b.iter(wide_random_scalar)
    });
    group.bench_function("blake2b/mac_64B", |b| {
        b.iter(|| mac::<HASH_LEN>(black_box(&f.mac_key), &[black_box(&f.mac_input)]))
    });
    group.bench_function("blake2b/hash_16KiB", |b| {
        b.iter(|| hash(&[black_box(&f.hash_input)]))
    });
    group.bench_function("blake2b/transcript_current", |b| {
        let mut t = Transcript::new(b"bench");
        t.absorb(&f.hash_input[..1000]);
        b.iter(|| black_box(&t).current())
    });
    group.bench_function("getrandom/114B", |b| b.iter(random_array::<114>));
    group.finish();
}

// ---------------------------------------------------------------------------
// The ratio table: many short samples timed with Instant, interleaved.
//
// The machine is shared (2 cores, other builds running), so a long batch
// almost always includes time the thread spent descheduled. Each sample is
// therefore short (one handshake, or enough primitive calls for ~200 us),
// every item gets a slice of each round (so slow drifts hit all alike), and
// the table uses the 10th percentile of the samples: the cost when nothing
// else ran. Medians are printed beside it.

/// Per-operation costs in seconds.
#[derive(Debug, Default)]
struct Costs {
    x448_generate: f64,
    x448_ladder: f64,
    x448_dh: f64,
    kem: Vec<(KemAlgorithm, [f64; 3])>,
    decaf_mul: f64,
    decaf_decompress: f64,
    decaf_compress: f64,
    blake2b_small: f64,
    blake2b_per_byte: f64,
    getrandom: f64,
}

impl Costs {
    fn kem(&self, kem: KemAlgorithm) -> [f64; 3] {
        self.kem
            .iter()
            .find(|(k, _)| *k == kem)
            .map(|(_, c)| *c)
            .expect("measured kem")
    }
}

/// How many times a handshake (both sides together) runs each primitive.
#[derive(Debug)]
struct Counts {
    x448_generate: f64,
    x448_ladder: f64,
    x448_dh: f64,
    kem: [f64; 3],
    decaf_mul: f64,
    decaf_decompress: f64,
    decaf_compress: f64,
    blake2b_small: f64,
    blake2b_bytes: f64,
    getrandom: f64,
}

/// Per side, per password role, one J-PAKE run does (see src/jpake.rs):
/// start 4 mul / 0 dec / 6 comp; receive_round1 4/4/2; round2 2/3/3;
/// finish 4/6/2 -> 14 mul, 13 decompressions, 13 compressions; 29 small
/// Blake2b calls (password scalar 4, 6 challenges x 4, key 1); 5 random scalars.
const JPAKE_MUL_PER_SIDE: f64 = 14.0;
const JPAKE_DECOMPRESS_PER_SIDE: f64 = 13.0;
const JPAKE_COMPRESS_PER_SIDE: f64 = 13.0;
const JPAKE_BLAKE2B_PER_SIDE: f64 = 29.0;
const JPAKE_RANDOM_PER_SIDE: f64 = 5.0;

impl Counts {
    fn of(roles: Roles, message_sizes: &[usize], kem: KemAlgorithm) -> Self {
        let passwords = roles.passwords() as f64;
        let message_bytes: usize = message_sizes.iter().sum();
        Self {
            x448_generate: 2.0,
            x448_ladder: 2.0,
            x448_dh: 2.0,
            kem: [1.0, 1.0, 1.0],
            decaf_mul: 2.0 * JPAKE_MUL_PER_SIDE * passwords,
            decaf_decompress: 2.0 * JPAKE_DECOMPRESS_PER_SIDE * passwords,
            decaf_compress: 2.0 * JPAKE_COMPRESS_PER_SIDE * passwords,
            // Key schedule, finished MACs, transcript snapshots, epoch keys: 17
            // per side; each MAC-proved role adds role key + tag, written and
            // verified (4 per side).
            blake2b_small: 34.0
                + 8.0 * roles.mac_roles() as f64
                + 2.0 * JPAKE_BLAKE2B_PER_SIDE * passwords,
            // Each side absorbs every message into its transcript and hashes
            // the KEM key and ciphertext once more into the hybrid IKM.
            blake2b_bytes: 2.0 * message_bytes as f64
                + 2.0 * (kem.public_key_len() + kem.ciphertext_len()) as f64,
            // Two nonces, ML-KEM seed and encapsulation coins (NewHope draws
            // its own, about as many); 5 scalars per J-PAKE side.
            getrandom: 4.0 + 2.0 * JPAKE_RANDOM_PER_SIDE * passwords,
        }
    }

    /// (X448 + KEM, J-PAKE decaf448, Blake2b + getrandom) in seconds.
    fn cost(&self, c: &Costs, kem: KemAlgorithm) -> (f64, f64, f64) {
        let k = c.kem(kem);
        let public_key = self.x448_generate * c.x448_generate
            + self.x448_ladder * c.x448_ladder
            + self.x448_dh * c.x448_dh
            + self.kem[0] * k[0]
            + self.kem[1] * k[1]
            + self.kem[2] * k[2];
        let jpake = self.decaf_mul * c.decaf_mul
            + self.decaf_decompress * c.decaf_decompress
            + self.decaf_compress * c.decaf_compress;
        let symmetric = self.blake2b_small * c.blake2b_small
            + self.blake2b_bytes * c.blake2b_per_byte
            + self.getrandom * c.getrandom;
        (public_key, jpake, symmetric)
    }
}

/// Public-key work (X448, KEM, decaf448) of one handshake step, for the
/// sub-step breakdown. Per password role the steps run J-PAKE start (I),
/// start + receive_round1 + round2 (R), receive_round1 + finish + round2 (I),
/// finish (R); the (mul, decompress, compress) counts below add up to the
/// per-side totals of `JPAKE_*_PER_SIDE`, both sides together.
fn step_primitives(step: usize, passwords: f64, c: &Costs, kem: KemAlgorithm) -> f64 {
    let k = c.kem(kem);
    let (x448, kem_cost, mul, dec, comp) = match step {
        0 => (c.x448_generate + c.x448_ladder, 0.0, 4.0, 0.0, 6.0),
        1 => (
            c.x448_generate + c.x448_ladder + c.x448_dh,
            k[0],
            10.0,
            7.0,
            11.0,
        ),
        2 => (c.x448_dh, k[1], 10.0, 13.0, 7.0),
        3 => (0.0, k[2], 4.0, 6.0, 2.0),
        _ => (0.0, 0.0, 0.0, 0.0, 0.0),
    };
    x448 + kem_cost
        + passwords * (mul * c.decaf_mul + dec * c.decaf_decompress + comp * c.decaf_compress)
}

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

fn us(seconds: f64) -> String {
    format!("{:.2} us", seconds * 1e6)
}

fn print_table() {
    let f = Fixtures::new();
    let kems: Vec<KemFixture> = CipherSuite::ALL
        .map(|s| KemFixture::new(s.kem()))
        .into_iter()
        .collect();
    let cases: Vec<(CipherSuite, Roles)> = CipherSuite::ALL
        .into_iter()
        .flat_map(|s| Roles::ALL.map(move |r| (s, r)))
        .collect();
    let sizes: Vec<Vec<usize>> = cases.iter().map(|&(s, r)| checked_run(r, s)).collect();
    let configs: Vec<_> = cases.iter().map(|&(s, r)| r.configs(s)).collect();

    let mut items: Vec<Item<'_>> = vec![
        (
            "x448 generate".into(),
            Box::new(timed(|| {
                black_box(X448Secret::generate().expect("rng"));
            })),
        ),
        (
            "x448 public_key (ladder)".into(),
            Box::new(timed(|| {
                black_box(f.x448.public_key());
            })),
        ),
        (
            "x448 diffie_hellman".into(),
            Box::new(timed(|| {
                black_box(f.x448.diffie_hellman(black_box(&f.x448_peer)).expect("dh"));
            })),
        ),
        (
            "decaf448 scalar mul".into(),
            Box::new(timed(|| {
                black_box(black_box(&f.decaf_point) * black_box(&f.decaf_scalar));
            })),
        ),
        (
            "decaf448 decompress".into(),
            Box::new(timed(|| {
                black_box(black_box(&f.decaf_encoded).decompress());
            })),
        ),
        (
            "decaf448 compress".into(),
            Box::new(timed(|| {
                black_box(black_box(&f.decaf_point).compress());
            })),
        ),
        (
            "blake2b mac 64 B".into(),
            Box::new(timed(|| {
                black_box(mac::<HASH_LEN>(
                    black_box(&f.mac_key),
                    &[black_box(&f.mac_input)],
                ));
            })),
        ),
        (
            "blake2b hash 16 KiB".into(),
            Box::new(timed(|| {
                black_box(hash(&[black_box(&f.hash_input)]));
            })),
        ),
        (
            "getrandom 114 B".into(),
            Box::new(timed(|| {
                black_box(random_array::<114>().expect("rng"));
            })),
        ),
    ];
    for k in &kems {
        items.push((
            format!("{:?} generate", k.kem),
            Box::new(timed(|| {
                black_box(k.kem.generate().expect("keygen"));
            })),
        ));
        items.push((
            format!("{:?} encapsulate", k.kem),
            Box::new(timed(|| {
                black_box(k.kem.encapsulate(black_box(&k.public)).expect("encaps"));
            })),
        ));
        items.push((
            format!("{:?} decapsulate", k.kem),
            Box::new(timed(|| {
                black_box(
                    k.secret
                        .decapsulate(black_box(&k.ciphertext))
                        .expect("decaps"),
                );
            })),
        ));
    }
    let primitive_items = items.len();
    for ((i, r), &(suite, roles)) in configs.iter().zip(&cases) {
        items.push((
            format!("handshake {} {}", suite_short(suite), roles.name()),
            Box::new(move |iters| {
                let mut totals = vec![0.0; 1 + STEPS.len()];
                for _ in 0..iters {
                    let start = Instant::now();
                    let steps = timed_handshake(i, r);
                    totals[0] += start.elapsed().as_secs_f64();
                    for (t, s) in totals[1..].iter_mut().zip(steps) {
                        *t += s.as_secs_f64();
                    }
                }
                totals
            }),
        ));
    }

    eprintln!(
        "\nratio table: {} items x {ROUNDS} interleaved rounds of {} ms slices ...",
        items.len(),
        SLICE.as_millis()
    );
    let load_before = load_average();
    let samples = measure(&mut items);
    let load_after = load_average();
    let index = |name: &str| {
        items
            .iter()
            .position(|(n, _)| n == name)
            .expect("item exists")
    };
    let costs = |stat: Stat| {
        let at = |name: &str| stat.of(&samples, index(name), 0);
        Costs {
            x448_generate: at("x448 generate"),
            x448_ladder: at("x448 public_key (ladder)"),
            x448_dh: at("x448 diffie_hellman"),
            kem: kems
                .iter()
                .map(|k| {
                    let name = format!("{:?}", k.kem);
                    (
                        k.kem,
                        [
                            at(&format!("{name} generate")),
                            at(&format!("{name} encapsulate")),
                            at(&format!("{name} decapsulate")),
                        ],
                    )
                })
                .collect(),
            decaf_mul: at("decaf448 scalar mul"),
            decaf_decompress: at("decaf448 decompress"),
            decaf_compress: at("decaf448 compress"),
            blake2b_small: at("blake2b mac 64 B"),
            blake2b_per_byte: at("blake2b hash 16 KiB") / HASH_BUFFER as f64,
            getrandom: at("getrandom 114 B"),
        }
    };
    let (p10, median) = (costs(Stat::P10), costs(Stat::Median));

    println!("\n== primitive costs (load average before {load_before}, after {load_after}) ==");
    println!(
        "  {:<32} {:>12} {:>12} {:>8}",
        "", "p10", "median", "samples"
    );
    for (k, (name, _)) in items.iter().enumerate().take(primitive_items) {
        println!(
            "  {name:<32} {:>12} {:>12} {:>8}",
            us(Stat::P10.of(&samples, k, 0)),
            us(Stat::Median.of(&samples, k, 0)),
            samples[k].len()
        );
    }

    println!(
        "\n== handshake (both sides) vs. the sum of its primitives: p10 of per-handshake samples; median-based ratio beside =="
    );
    for (k, &(suite, roles)) in cases.iter().enumerate() {
        let item = primitive_items + k;
        let counts = Counts::of(roles, &sizes[k], suite.kem());
        let measured = Stat::P10.of(&samples, item, 0);
        let (pk, jpake, sym) = counts.cost(&p10, suite.kem());
        let primitives = pk + jpake + sym;
        let median_ratio = Stat::Median.of(&samples, item, 0) / {
            let (pk, jpake, sym) = counts.cost(&median, suite.kem());
            pk + jpake + sym
        };
        println!(
            "handshake suite={:<11} passwords={} roles={:<11}  measured={:>10}  primitives={:>10}  ratio={:.3}  (median ratio={:.3}, n={})  [x448+kem {}, j-pake {}, blake2b+rng {}, residual {}]",
            suite_short(suite),
            roles.passwords(),
            roles.name(),
            ms(measured),
            ms(primitives),
            measured / primitives,
            median_ratio,
            samples[item].len(),
            ms(pk),
            ms(jpake),
            ms(sym),
            ms(measured - primitives),
        );
    }

    println!(
        "\n== per-step breakdown (p10 per call; prim = X448/KEM/decaf448 work of that step only) =="
    );
    for (k, &(suite, roles)) in cases.iter().enumerate() {
        let item = primitive_items + k;
        let steps: Vec<String> = STEPS
            .iter()
            .enumerate()
            .map(|(s, name)| {
                let p = step_primitives(s, roles.passwords() as f64, &p10, suite.kem());
                format!(
                    "{name}: {} (prim {})",
                    ms(Stat::P10.of(&samples, item, 1 + s)),
                    ms(p)
                )
            })
            .collect();
        println!(
            "{:<11} {:<11} {}",
            suite_short(suite),
            roles.name(),
            steps.join(" | ")
        );
    }
    println!(
        "\nmessage sizes (Offer, Accept, Finish, Confirm) in bytes: {}",
        cases
            .iter()
            .zip(&sizes)
            .map(|(&(s, r), z)| format!("{}/{} {:?}", suite_short(s), r.name(), z))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

// ---------------------------------------------------------------------------

fn main() {
    common::bench_main(
        |c| {
            criterion_handshake(c);
            criterion_primitives(c);
        },
        print_table,
    );
}
