//! The read path and an activation, measured:
//!
//! - `active()` (target: under 20 ns) and `route(key)` (target: under 100 ns), idle and
//!   while another thread swaps the routing table continuously (full activations, or an
//!   A/B test's split flipping);
//! - a blue-green activation, `deploy` of a staged version up to the switch (target:
//!   under 5 µs).
//!
//! ```text
//! cargo bench -p polyglot-hotswap --bench routing
//! ```
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use polyglot_hotswap::{Deployer, Outcome, Strategy, Thresholds, VersionMeta};

/// What a version is here: something with a size, like a pool.
struct Pool {
    _workers: [u64; 4],
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn deployer() -> Arc<Deployer<Pool>> {
    Arc::new(
        Deployer::builder()
            .name("bench")
            .thresholds(Thresholds::default().with_min_calls(1))
            .retain_previous(Duration::ZERO)
            .build(),
    )
}

fn pool() -> Arc<Pool> {
    Arc::new(Pool { _workers: [0; 4] })
}

async fn activate(d: &Deployer<Pool>, version: &str) {
    d.stage(version, pool(), VersionMeta::default())
        .await
        .unwrap();
    d.deploy(version, Strategy::immediate()).await.unwrap();
}

/// A thread that swaps the table until dropped: each turn runs `turn(n)`.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
    started: Instant,
}

impl Swapper {
    fn start<F, Fut>(turn: F) -> Swapper
    where
        F: Fn(u64) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), swaps.clone());
        let thread = thread::spawn(move || {
            let rt = runtime();
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                rt.block_on(turn(i));
                i += 1;
                n.store(i, Ordering::Relaxed);
            }
        });
        Swapper {
            stop,
            swaps,
            thread: Some(thread),
            started: Instant::now(),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let n = self.swaps.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "    (the other thread made {n} changes, {:.0} per second, each replacing the table)",
            n as f64 / secs
        );
    }
}

/// Another thread activating a new version, over and over.
fn activations(d: &Arc<Deployer<Pool>>) -> Swapper {
    let d = d.clone();
    Swapper::start(move |i| {
        let d = d.clone();
        async move {
            activate(&d, &format!("bg-{i}")).await;
            d.tick().await; // releases the superseded one, keeps the history bounded
        }
    })
}

/// Another thread flipping an A/B test's split between 10% and 90%, over and over.
fn resplits(d: &Arc<Deployer<Pool>>) -> Swapper {
    let d = d.clone();
    Swapper::start(move |i| {
        let d = d.clone();
        async move {
            d.set_split(if i % 2 == 0 { 90 } else { 10 }).await.unwrap();
        }
    })
}

fn keys() -> Vec<String> {
    (0..1024).map(|i| format!("user-{i:08}")).collect()
}

fn read_path(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();

    let d = deployer();
    rt.block_on(activate(&d, "1.0.0"));
    let mut g = c.benchmark_group("active");
    g.bench_function("idle", |b| b.iter(|| black_box(d.active())));
    {
        let _bg = activations(&d);
        g.bench_function("while another thread activates versions", |b| {
            b.iter(|| black_box(d.active()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("route");
    let mut i = 0usize;
    g.bench_function("no rollout", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(d.route(&keys[i]))
        })
    });
    {
        let _bg = activations(&d);
        g.bench_function("while another thread activates versions", |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(d.route(&keys[i]))
            })
        });
    }

    // An A/B test in progress: every route hashes its key.
    let d = deployer();
    rt.block_on(async {
        activate(&d, "1.0.0").await;
        d.stage("1.1.0", pool(), VersionMeta::default())
            .await
            .unwrap();
        d.deploy("1.1.0", Strategy::ab_test(50, Duration::from_secs(3600)))
            .await
            .unwrap();
    });
    g.bench_function("a/b split", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(d.route(&keys[i]))
        })
    });
    {
        let _bg = resplits(&d);
        g.bench_function("a/b split, while another thread changes the split", |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(d.route(&keys[i]))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("record");
    g.bench_function("one call", |b| {
        b.iter(|| d.record("1.1.0", Outcome::Ok, Duration::from_micros(350)))
    });
    g.finish();
}

fn activation(c: &mut Criterion) {
    let rt = runtime();
    let d = deployer();
    rt.block_on(activate(&d, "0"));
    let mut n = 0u64;
    c.bench_function("blue-green activation", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let v = n.to_string();
                rt.block_on(async {
                    d.stage(&v, pool(), VersionMeta::default()).await.unwrap();
                    let t = Instant::now();
                    d.deploy(&v, Strategy::blue_green(Duration::ZERO))
                        .await
                        .unwrap();
                    spent += t.elapsed();
                    // End the grace period (one healthy call is enough here) and release
                    // the old version, outside the measurement.
                    d.record(&v, Outcome::Ok, Duration::from_micros(100));
                    d.advance().await.unwrap();
                    d.tick().await;
                });
            }
            spent
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = read_path, activation
}
criterion_main!(benches);
