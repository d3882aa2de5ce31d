//! Timing helpers shared by the benchmarks' ratio tables.
//!
//! The machine is shared (2 cores, other builds running), so a long batch
//! almost always includes time the thread spent descheduled. Each sample is
//! therefore short (one handshake, or enough calls for ~200 us), every item
//! gets a slice of each round (so slow drifts hit all alike), and tables use
//! the 10th percentile of the samples: the cost when nothing else ran.
//! Medians are printed beside it.
#![allow(dead_code)] // each bench uses a different subset

use std::time::{Duration, Instant};

use criterion::Criterion;

/// A measured item: runs `iters` iterations, returns total seconds per component.
pub type Item<'a> = (String, Box<dyn FnMut(u64) -> Vec<f64> + 'a>);

pub const ROUNDS: usize = 25;
/// Target length of one sample.
pub const SAMPLE: Duration = Duration::from_micros(200);
/// Time each item gets per round.
pub const SLICE: Duration = Duration::from_millis(20);

/// Per item, per sample, per component: seconds per iteration.
pub type Samples = Vec<Vec<Vec<f64>>>;

pub fn measure(items: &mut [Item<'_>]) -> Samples {
    let plan: Vec<(u64, usize)> = items
        .iter_mut()
        .map(|(_, f)| {
            f(1); // warm up
            let mut one = f(1)[0];
            if one < 10e-6 {
                one = f(1000)[0] / 1000.0;
            }
            let one = one.max(1e-9);
            let per_sample = ((SAMPLE.as_secs_f64() / one) as u64).max(1);
            let per_round = ((SLICE.as_secs_f64() / (one * per_sample as f64)) as usize).max(1);
            (per_sample, per_round)
        })
        .collect();
    let mut samples: Samples = vec![Vec::new(); items.len()];
    for _ in 0..ROUNDS {
        for (k, (_, f)) in items.iter_mut().enumerate() {
            let (iters, count) = plan[k];
            for _ in 0..count {
                let totals = f(iters);
                samples[k].push(totals.iter().map(|t| t / iters as f64).collect());
            }
        }
    }
    samples
}

/// The 10th percentile (what the table reports) or the median.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    P10,
    Median,
}

impl Stat {
    pub fn of(self, samples: &Samples, item: usize, component: usize) -> f64 {
        let mut v: Vec<f64> = samples[item].iter().map(|r| r[component]).collect();
        v.sort_by(f64::total_cmp);
        match self {
            Stat::P10 => v[v.len() / 10],
            Stat::Median => v[v.len() / 2],
        }
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".to_owned())
}

pub fn timed(mut f: impl FnMut()) -> impl FnMut(u64) -> Vec<f64> {
    move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        vec![start.elapsed().as_secs_f64()]
    }
}

/// The benches' `main`: criterion groups unless `JADEITE_BENCH_TABLE=only`,
/// then the ratio table when really benchmarking (not under `cargo test`)
/// unless `JADEITE_BENCH_TABLE=0`.
pub fn bench_main(groups: impl FnOnce(&mut Criterion), table: impl FnOnce()) {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    let mode = std::env::var("JADEITE_BENCH_TABLE").unwrap_or_default();
    let mut c = Criterion::default().configure_from_args();
    if mode != "only" {
        groups(&mut c);
    }
    c.final_summary();
    if benchmarking && mode != "0" {
        table();
    }
}
