//! The C++ FIR against a plain Rust reference, and the cost of reaching it through the
//! in-process handler: `cargo bench -p polyglot-dsp --bench dsp`.
//!
//! Criterion measures each variant; then a short interleaved pass (every variant once
//! per round, best time kept, so a machine busy with other work slows all of them
//! alike) prints each variant's time and its ratio to the direct C++ call.
//!
//! Variants, on 1 Mi samples × 64 taps and on a small call (256 × 16) where the fixed
//! cost of a call shows:
//! - `cpp`: `polyglot_dsp::fir`, the bridge straight into C++;
//! - `rust reference`: the textbook loop of the tests (f64 sums), copied below;
//! - `handler, bytes` / `handler, numbers`: `Handler::call` on `polyglot_dsp::handler()`
//!   with the samples as f32 bytes or as an array of numbers, awaited on a tokio runtime;
//! - `runtime, bytes`: the same handler mounted in a `polyglot_core::Runtime`, called by
//!   module and method name as a host's code calls it.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use polyglot_worker::{Context, Handler, Value, Worker};

/// The large case: 1 Mi samples through 64 taps.
const LARGE: (usize, usize) = (1 << 20, 64);
/// The small case, where the fixed cost of a call dominates.
const SMALL: (usize, usize) = (256, 16);
/// Rounds of the interleaved pass: enough for a stable best time of each variant.
const RATIO_ROUNDS: usize = 7;

/// `y[n] = Σ_k h[k] x[n - k]`, zero initial state; each sum in f64. Copied from
/// `tests/dsp.rs`.
fn reference_fir(x: &[f32], h: &[f32]) -> Vec<f64> {
    (0..x.len())
        .map(|n| {
            (0..h.len().min(n + 1))
                .map(|k| f64::from(h[k]) * f64::from(x[n - k]))
                .sum()
        })
        .collect()
}

fn signal(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect()
}

fn le_bytes(xs: &[f32]) -> Value {
    Value::Bytes(xs.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn numbers(xs: &[f32]) -> Value {
    Value::Array(xs.iter().map(|&x| Value::from(f64::from(x))).collect())
}

/// One case's inputs and the ways of calling it.
struct Case {
    name: &'static str,
    x: Vec<f32>,
    h: Vec<f32>,
    bytes_params: Value,
    number_params: Value,
}

impl Case {
    fn new(name: &'static str, (len, taps): (usize, usize)) -> Case {
        let x = signal(len, 1);
        let h = signal(taps, 2);
        Case {
            name,
            bytes_params: Value::Array(vec![le_bytes(&x), le_bytes(&h)]),
            number_params: Value::Array(vec![numbers(&x), numbers(&h)]),
            x,
            h,
        }
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    handler: Worker,
    host: polyglot_core::Runtime,
}

impl Env {
    fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let host = {
            let _in_runtime = rt.enter();
            let host = polyglot_core::Runtime::default();
            host.mount(Arc::new(polyglot_dsp::handler()));
            host
        };
        Env {
            rt,
            handler: polyglot_dsp::handler(),
            host,
        }
    }

    fn call_handler(&self, params: Value) -> Value {
        self.rt
            .block_on(self.handler.call("fir", params, Context::detached("fir")))
            .expect("fir through the handler")
    }

    fn call_host(&self, params: Value) -> Value {
        self.rt
            .block_on(self.host.call("dsp", "fir", params))
            .expect("fir through the runtime")
            .value
    }
}

fn criterion_benches(c: &mut Criterion, env: &Env, cases: &[Case]) {
    for case in cases {
        let mut g = c.benchmark_group(format!("fir {}", case.name));
        g.sample_size(10).warm_up_time(Duration::from_millis(500));
        g.bench_function("cpp", |b| {
            b.iter(|| polyglot_dsp::fir(black_box(&case.x), black_box(&case.h)).unwrap())
        });
        g.bench_function("rust reference", |b| {
            b.iter(|| reference_fir(black_box(&case.x), black_box(&case.h)))
        });
        g.bench_function("handler, bytes", |b| {
            b.iter_batched(
                || case.bytes_params.clone(),
                |p| env.call_handler(p),
                BatchSize::LargeInput,
            )
        });
        g.bench_function("handler, numbers", |b| {
            b.iter_batched(
                || case.number_params.clone(),
                |p| env.call_handler(p),
                BatchSize::LargeInput,
            )
        });
        g.bench_function("runtime, bytes", |b| {
            b.iter_batched(
                || case.bytes_params.clone(),
                |p| env.call_host(p),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

/// Best seconds per call of each variant, measured interleaved; `repeat` calls per
/// timing so that a small case is not lost in the clock's resolution.
fn best_times(env: &Env, case: &Case, repeat: usize) -> Vec<(&'static str, f64)> {
    type Variant<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant<'_>> = vec![
        (
            "cpp",
            Box::new(|| {
                black_box(polyglot_dsp::fir(&case.x, &case.h).unwrap());
            }),
        ),
        (
            "rust reference",
            Box::new(|| {
                black_box(reference_fir(&case.x, &case.h));
            }),
        ),
        (
            "handler, bytes",
            Box::new(|| {
                black_box(env.call_handler(case.bytes_params.clone()));
            }),
        ),
        (
            "handler, numbers",
            Box::new(|| {
                black_box(env.call_handler(case.number_params.clone()));
            }),
        ),
        (
            "runtime, bytes",
            Box::new(|| {
                black_box(env.call_host(case.bytes_params.clone()));
            }),
        ),
    ];
    // The handler variants' times include cloning their params (the caller's copy that
    // the call consumes); measured here so it can be taken out.
    let clone_bytes = best_of(repeat, || {
        black_box(case.bytes_params.clone());
    });
    let clone_numbers = best_of(repeat, || {
        black_box(case.number_params.clone());
    });
    let mut best = vec![f64::INFINITY; variants.len()];
    for _ in 0..RATIO_ROUNDS {
        for (i, (_, f)) in variants.iter().enumerate() {
            best[i] = best[i].min(best_of(repeat, f));
        }
    }
    variants
        .iter()
        .zip(best)
        .map(|((name, _), t)| {
            let clone = match *name {
                "handler, numbers" => clone_numbers,
                "handler, bytes" | "runtime, bytes" => clone_bytes,
                _ => 0.0,
            };
            (*name, (t - clone).max(0.0))
        })
        .collect()
}

/// Seconds per call of `f`, timing `repeat` calls at once.
fn best_of(repeat: usize, f: impl Fn()) -> f64 {
    let t = Instant::now();
    for _ in 0..repeat {
        f();
    }
    t.elapsed().as_secs_f64() / repeat as f64
}

fn print_ratios(env: &Env, cases: &[Case]) {
    println!();
    println!("| case | variant | time per call | vs cpp |");
    println!("| --- | --- | ---: | ---: |");
    for (case, repeat) in cases.iter().zip([1, 2_000]) {
        let times = best_times(env, case, repeat);
        let cpp = times[0].1;
        for (name, t) in &times {
            let time = if *t >= 1e-3 {
                format!("{:.2} ms", t * 1e3)
            } else {
                format!("{:.2} µs", t * 1e6)
            };
            println!("| {} | {name} | {time} | {:.2}× |", case.name, t / cpp);
        }
    }
    println!();
    println!("(handler and runtime times exclude cloning the params the call consumes)");
}

fn main() {
    let env = Env::new();
    let cases = [Case::new("1Mi x 64", LARGE), Case::new("256 x 16", SMALL)];
    // Every variant computes the same filter.
    for case in &cases {
        let want = polyglot_dsp::fir(&case.x, &case.h).unwrap();
        assert_eq!(
            env.call_handler(case.bytes_params.clone()),
            le_bytes(&want),
            "{}",
            case.name
        );
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &env, &cases);
    c.final_summary();
    print_ratios(&env, &cases);
}
