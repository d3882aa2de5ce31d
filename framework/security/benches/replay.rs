use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jadeite_security::replay::{DEFAULT_WINDOW_BITS, ReplayWindow};

/// Counters permuted within chunks of this many, far less than the window.
const CHUNK: u64 = 2048;

fn bench_replay(c: &mut Criterion) {
    c.bench_function("accept_in_order", |b| {
        let mut w = ReplayWindow::new(DEFAULT_WINDOW_BITS);
        let mut next = 0u64;
        b.iter(|| {
            let r = w.accept(black_box(next));
            next += 1;
            r
        });
    });

    c.bench_function("accept_shuffled_within_window", |b| {
        let mut w = ReplayWindow::new(DEFAULT_WINDOW_BITS);
        let mut i = 0u64;
        b.iter(|| {
            // Multiplying by an odd constant permutes each power-of-two chunk.
            let counter = (i & !(CHUNK - 1)) | (i.wrapping_mul(0x9E37_79B9) & (CHUNK - 1));
            i += 1;
            w.accept(black_box(counter))
        });
    });

    c.bench_function("check_duplicate", |b| {
        let mut w = ReplayWindow::new(DEFAULT_WINDOW_BITS);
        for counter in 0..1000 {
            w.accept(counter).expect("fresh counter");
        }
        b.iter(|| w.check(black_box(500)));
    });
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
