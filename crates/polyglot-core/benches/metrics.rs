//! What the metrics cost a call, measured in one run: `Runtime::call` to an echo handler
//! served in this process (no process hop, so the metrics' share is as large as it gets),
//! on two modules of one runtime that differ only in their metric handles:
//!
//! - **no recorder**: the module's handles were registered with no recorder installed, as
//!   in a program that installs none (every record is a no-op);
//! - **prometheus**: the handles were registered with a `metrics-exporter-prometheus`
//!   recorder, as `polyglot-host` installs for `/metrics` (every call counts, and its
//!   latency goes into a histogram).
//!
//! Two loads: one call at a time on a current-thread runtime, and 64 calls in flight on
//! a two-thread runtime (the counters and histograms shared by every caller). The
//! variants run interleaved, round after round, taking turns at going first, so a machine
//! busy with other work slows both alike. Prints ns per call of each variant (its best
//! round and the median round), and the median of the rounds' differences.
//!
//! ```text
//! cargo bench -p polyglot-core --bench metrics
//! ```

use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use polyglot_core::telemetry::{CALL_DURATION, LATENCY_BUCKETS};
use polyglot_core::{Runtime, Value};
use polyglot_worker::Worker;

/// Rounds of each variant (odd: the median is one of them).
const ROUNDS: usize = 31;
/// Calls per round, one at a time.
const SEQUENTIAL: usize = 100_000;
/// Calls per round with [`IN_FLIGHT`] callers.
const CONCURRENT: usize = 200_000;
const IN_FLIGHT: usize = 64;

fn echo(name: &str) -> Arc<Worker> {
    Arc::new(Worker::new(name, "1.0.0").method("echo", |p: Value, _| async move { Ok(p) }))
}

/// Makes one call to `module` under `recorder` (none: no recorder), which registers the
/// module's metric handles with it.
fn first_call(runtime: &Runtime, module: &str, recorder: Option<&dyn metrics::Recorder>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = || rt.block_on(runtime.call(module, "echo", params())).unwrap();
    match recorder {
        Some(r) => metrics::with_local_recorder(r, call),
        None => call(),
    };
}

fn params() -> Value {
    Value::Array(vec![Value::from("hello")])
}

/// One round of `calls` calls to `module`, `in_flight` at a time: ns per call.
fn round(
    rt: &tokio::runtime::Runtime,
    runtime: &Runtime,
    module: &'static str,
    calls: usize,
    in_flight: usize,
) -> f64 {
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    for _ in 0..calls / in_flight {
                        runtime.call(module, "echo", params()).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// The best and the median of some rounds.
struct Spread {
    best: f64,
    median: f64,
}

impl Spread {
    fn of(mut rounds: Vec<f64>) -> Spread {
        rounds.sort_by(f64::total_cmp);
        Spread {
            best: rounds[0],
            median: rounds[rounds.len() / 2],
        }
    }
}

struct Case {
    name: &'static str,
    rt: tokio::runtime::Runtime,
    calls: usize,
    in_flight: usize,
}

fn main() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CALL_DURATION.into()), &LATENCY_BUCKETS)
        .unwrap()
        .build_recorder();
    let handle: PrometheusHandle = recorder.handle();
    let runtime = Runtime::default();
    runtime.mount(echo("plain"));
    runtime.mount(echo("recorded"));
    first_call(&runtime, "plain", None);
    first_call(&runtime, "recorded", Some(&recorder));

    let cases = [
        Case {
            name: "one call at a time",
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            calls: SEQUENTIAL,
            in_flight: 1,
        },
        Case {
            name: "64 in flight, 2 threads",
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            calls: CONCURRENT,
            in_flight: IN_FLIGHT,
        },
    ];
    println!("Runtime::call to an in-process echo, ns per call ({ROUNDS} rounds)\n");
    println!("| load | no recorder, best / median | prometheus, best / median | difference, median of rounds |");
    println!("| --- | ---: | ---: | ---: |");
    let mut recorded_calls = 1;
    for case in &cases {
        let run = |module| round(&case.rt, &runtime, module, case.calls, case.in_flight);
        // A warm-up round of each, not counted.
        run("plain");
        run("recorded");
        recorded_calls += case.calls;
        let (mut plain, mut recorded, mut differences) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..ROUNDS {
            // Each goes first in every other round.
            let (p, r) = if i % 2 == 0 {
                let p = run("plain");
                (p, run("recorded"))
            } else {
                let r = run("recorded");
                (run("plain"), r)
            };
            plain.push(p);
            recorded.push(r);
            differences.push(r - p);
            recorded_calls += case.calls;
            // Fold the latency samples into the histogram, as the host does every 5 s.
            handle.run_upkeep();
        }
        let (plain, recorded, difference) = (
            Spread::of(plain),
            Spread::of(recorded),
            Spread::of(differences),
        );
        println!(
            "| {} | {:.0} / {:.0} | {:.0} / {:.0} | {:+.0} ns ({:+.1}%) |",
            case.name,
            plain.best,
            plain.median,
            recorded.best,
            recorded.median,
            difference.median,
            difference.median / plain.median * 100.0,
        );
    }
    // The prometheus variant really recorded every call.
    let text = handle.render();
    let counted = text
        .lines()
        .find(|l| l.starts_with("polyglot_calls_total{module=\"recorded\""))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse::<f64>().unwrap() as usize);
    assert_eq!(counted, Some(recorded_calls), "{text}");
    assert!(!text.contains("module=\"plain\""), "{text}");
}
