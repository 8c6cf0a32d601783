//! Proof under faults: a real `polyglot-host serve` (release) under steady load through
//! its gRPC API while its workers are killed, hung and made to break the protocol and a
//! new version is deployed; every call's outcome is counted, and the host's memory and
//! file descriptors are watched. A soak mode runs the load for a long time and measures
//! their drift.
//!
//! ```text
//! cargo bench -p polyglot-host --bench chaos                     # 30 s with the fallback, 15 s without
//! cargo bench -p polyglot-host --bench chaos -- --duration 60 --seed 7
//! cargo bench -p polyglot-host --bench chaos -- --no-fallback    # only the phase without it
//! cargo bench -p polyglot-host --bench chaos -- --fallback-only  # only the phase with it
//! cargo bench -p polyglot-host --bench chaos -- --codec json     # JSON to the workers
//! cargo bench -p polyglot-host --bench chaos -- --soak --duration 600
//! ```
//!
//! The module `chaos` is served by four release Rust test workers, marks `echo` and `add`
//! idempotent with a retry policy, and (in the first phase) declares the Python test
//! worker `chaos-py` its fallback. 64 calls stay in flight, each with a 2 s deadline.
//! The run fails (exit status 1, and says why) when a call hung, when a call failed
//! although the fallback was configured, when an error was untyped or an answer wrong,
//! when the host's RSS grew beyond its bound or its own descriptors grew, when workers
//! did not come back or were left behind.
//!
//! Layout:
//! - `host`: the release builds, the module folders, the host process.
//! - `load`: the callers and the tally of outcomes.
//! - `faults`: the seeded schedule of kills, hangs, garbage floods and the deployment.
//! - `events`: the host's event stream, counted.
//! - `probe`: RSS, descriptors and worker processes of the host; signals.
//! - `report`: the tables.

mod events;
mod faults;
mod host;
mod load;
mod probe;
mod report;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tokio::time::Instant;

use crate::faults::Schedule;
use crate::host::{Fixture, Host, FALLBACK, FALLBACK_INSTANCES, PRIMARY, PRIMARY_INSTANCES};
use crate::report::Phase;

/// Calls kept in flight.
const IN_FLIGHT: usize = 64;
/// The default length of the chaos run with the fallback; the run without it lasts half
/// as long (its errors come at the same rate, and the two fit well within two minutes).
const CHAOS_DURATION: Duration = Duration::from_secs(30);
/// The default length of a soak.
const SOAK_DURATION: Duration = Duration::from_secs(600);
/// Load without faults at the start of a chaos phase: the host's memory and descriptors
/// under load, before any fault, are what growth is measured from.
const WARMUP: Duration = Duration::from_secs(3);
/// The soak's samples, and the part of it its drift is measured from.
const SOAK_EVERY: Duration = Duration::from_secs(10);
const SOAK_BASELINE: Duration = Duration::from_secs(60);
/// How long the host may take, once the load stops, to have every worker healthy again
/// (the longest restart back-off is 1 s; a new version's old one drains in well under 5).
const SETTLE_WITHIN: Duration = Duration::from_secs(20);
/// How much the host's RSS may grow over its warm-up maximum in a chaos phase.
///
/// What legitimately grows: a second version's pool during the deployment (its
/// connections' 64 KiB read buffers, metrics handles and histograms: well under 1 MiB),
/// the calls retried and queued while workers are down (64 calls of a few hundred bytes),
/// buffers of the HTTP/2 streams, and the allocator keeping freed memory in its per-thread
/// arenas (glibc's malloc keeps up to 8 arenas per core, each holding on to what it had at
/// its peak). Measured: +1.0 to +2.0 MiB (`docs/benchmarks.md`). 16 MiB is eight times
/// that, and still catches a leak of 70 bytes a call over the 250,000 calls or more of a
/// 30 s phase.
const CHAOS_RSS_GROWTH: u64 = 16 * 1024;
/// How much the host's RSS may drift in a soak: the last sample over the largest of the
/// first minute. A warm host under a steady load must not grow; 8 MiB leaves room for the
/// allocator's arenas reaching their peak after the first minute (measured: -0.1 MiB over
/// ten minutes), and catches a leak of one byte a call over the 11 million calls of a
/// ten-minute soak.
const SOAK_RSS_DRIFT: u64 = 8 * 1024;

/// The command line.
struct Args {
    duration: Option<Duration>,
    seed: u64,
    soak: bool,
    with_fallback: bool,
    without_fallback: bool,
    in_flight: usize,
    /// The codec between the host and the primary's workers.
    codec: String,
}

impl Args {
    fn parse() -> anyhow::Result<Option<Args>> {
        let mut a = Args {
            duration: None,
            seed: 1,
            soak: false,
            with_fallback: true,
            without_fallback: true,
            in_flight: IN_FLIGHT,
            codec: "msgpack".into(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                it.next()
                    .with_context(|| format!("{name} needs a value"))?
                    .parse()
                    .with_context(|| format!("{name} takes a whole number"))
            };
            match arg.as_str() {
                // What `cargo bench` passes to every bench binary.
                "--bench" => {}
                // `cargo test --benches` asks for the list of tests: there are none.
                "--list" => return Ok(None),
                "--duration" => a.duration = Some(Duration::from_secs(value("--duration")?)),
                "--seed" => a.seed = value("--seed")?,
                "--in-flight" => a.in_flight = value("--in-flight")?.max(1) as usize,
                "--codec" => {
                    a.codec = it.next().context("--codec needs json or msgpack")?;
                    if a.codec != "json" && a.codec != "msgpack" {
                        bail!("--codec takes json or msgpack, not {:?}", a.codec);
                    }
                }
                "--soak" => a.soak = true,
                "--no-fallback" => a.with_fallback = false,
                "--fallback-only" => a.without_fallback = false,
                other => bail!(
                    "unknown argument {other:?}; usage: chaos [--duration SECS] [--seed N] \
                     [--in-flight N] [--codec json|msgpack] [--no-fallback | --fallback-only] \
                     [--soak]"
                ),
            }
        }
        Ok(Some(a))
    }
}

/// What one phase does.
struct Plan {
    name: String,
    with_fallback: bool,
    duration: Duration,
    schedule: Schedule,
    sample_every: Duration,
    /// Samples up to this time are the baseline of growth.
    baseline: Duration,
    /// Prints each sample as it is taken (the soak's series).
    live: bool,
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the phases; true when every one passed.
fn run(args: Args) -> anyhow::Result<bool> {
    host::build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut plans = Vec::new();
    if args.soak {
        let duration = args.duration.unwrap_or(SOAK_DURATION);
        plans.push(Plan {
            name: "soak".into(),
            with_fallback: true,
            duration,
            schedule: Schedule::soak(),
            sample_every: SOAK_EVERY,
            baseline: SOAK_BASELINE,
            live: true,
        });
    } else {
        let duration = args.duration.unwrap_or(CHAOS_DURATION);
        if args.with_fallback {
            plans.push(Plan {
                name: "with fallback".into(),
                with_fallback: true,
                duration,
                schedule: Schedule::chaos(duration, WARMUP),
                sample_every: Duration::from_secs(1),
                baseline: WARMUP,
                live: false,
            });
        }
        if args.without_fallback {
            let duration = if args.with_fallback {
                (duration / 2).max(Duration::from_secs(10))
            } else {
                duration
            };
            plans.push(Plan {
                name: "without fallback".into(),
                with_fallback: false,
                duration,
                schedule: Schedule::chaos(duration, WARMUP),
                sample_every: Duration::from_secs(1),
                baseline: WARMUP,
                live: false,
            });
        }
    }
    let started = std::time::Instant::now();
    let mut phases = Vec::new();
    for plan in plans {
        let p = rt.block_on(run_phase(plan, &args))?;
        phases.push(p);
    }
    report::print(&mut phases);
    println!(
        "\nthe run took {:.0} s (the builds before it excluded)",
        started.elapsed().as_secs_f64()
    );
    if args.soak {
        for p in &phases {
            print_drift(p);
        }
    }
    let mut ok = true;
    for p in &phases {
        if p.failures.is_empty() {
            println!("\n{}: PASS", p.name);
        } else {
            ok = false;
            println!("\n{}: FAIL", p.name);
            for f in &p.failures {
                println!("  - {f}");
            }
        }
    }
    Ok(ok)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run_phase(plan: Plan, args: &Args) -> anyhow::Result<Phase> {
    println!(
        "\n== {}: {} s, {} calls in flight, {} to the workers, seed {}; load average before: {}",
        plan.name,
        plan.duration.as_secs(),
        args.in_flight,
        args.codec,
        args.seed,
        loadavg()
    );
    let fixture = Fixture::new(plan.with_fallback, &args.codec)?;
    let log = host::target().join("chaos").join(format!(
        "host-{}-seed{}.log",
        plan.name.replace(' ', "-"),
        args.seed
    ));
    let host = Host::start(&fixture, &log)?;
    println!("host pid {}, log {}", host.pid, host.log.display());
    let channel = host.channel().await?;
    let mut client = RuntimeClient::new(channel.clone());
    host.wait_ready(&mut client, plan.with_fallback).await?;
    let initial = probe::children(host.pid).0;
    let watch = events::Watch::start(client.clone(), initial).await?;

    let answered = Arc::new(AtomicU64::new(0));
    let sampler = probe::Sampler::start(host.pid, plan.sample_every, answered.clone(), plan.live);
    let t0 = Instant::now();
    let end = t0 + plan.duration;
    let load = tokio::spawn(load::run(
        channel.clone(),
        args.in_flight,
        t0,
        end,
        answered.clone(),
    ));
    let faults = tokio::spawn(faults::run(
        faults::Ctx {
            client: client.clone(),
            host_pid: host.pid,
            t0,
            end,
            seed: args.seed,
            release: fixture.release(),
        },
        plan.schedule.clone(),
    ));
    let tally = load.await?;
    let ran = t0.elapsed();
    let faults = faults.await?;
    let samples = sampler.stop();

    let settled = settle(&mut client, host.pid, plan.with_fallback).await;
    let last = probe::sample(host.pid, t0.elapsed(), answered.load(Ordering::Relaxed));
    let metrics = host.metrics().unwrap_or_default();
    let seen = watch.stop();
    let mut pids: Vec<u32> = seen.pids.iter().copied().collect();
    pids.extend(probe::children(host.pid).0);
    drop(client);
    drop(channel);
    let exit = tokio::task::spawn_blocking(move || host.stop(&pids)).await??;

    let base: Vec<&probe::Sample> = samples.iter().filter(|s| s.t <= plan.baseline).collect();
    let base_rss_kib = base.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let base_own_fds = base.iter().map(|s| s.own_fds).max().unwrap_or(0);
    let mut phase = Phase {
        name: plan.name,
        ran,
        tally,
        faults,
        seen,
        samples,
        base_rss_kib,
        base_own_fds,
        settled,
        last,
        retried: metric(&metrics, "polyglot_retries_total", "outcome=\"retried\""),
        budget_spent: metric(
            &metrics,
            "polyglot_retries_total",
            "outcome=\"budget_spent\"",
        ),
        restarts: metric(
            &metrics,
            "polyglot_worker_restarts_total",
            &format!("module=\"{PRIMARY}\""),
        ),
        exit,
        failures: Vec::new(),
    };
    phase.failures = verdicts(&phase, plan.with_fallback, args.soak);
    Ok(phase)
}

/// Waits until every worker of the active version (and of the fallback) is healthy, no
/// deployment is in progress, the host has exactly its workers as children and no
/// zombie; returns how long that took, `None` if not within [`SETTLE_WITHIN`].
async fn settle(
    c: &mut RuntimeClient<tonic::transport::Channel>,
    host: u32,
    with_fallback: bool,
) -> Option<Duration> {
    let t = Instant::now();
    let want = PRIMARY_INSTANCES + if with_fallback { FALLBACK_INSTANCES } else { 0 };
    while t.elapsed() < SETTLE_WITHIN {
        let healthy = |m: Option<pb::ModuleInfo>, n: usize| {
            m.is_some_and(|m| {
                m.instances.len() == n && m.instances.iter().all(|i| i.state == "healthy")
            })
        };
        let p = c
            .get_module(pb::GetModuleRequest {
                module: PRIMARY.into(),
            })
            .await
            .ok()
            .map(|r| r.into_inner());
        let f = if with_fallback {
            c.get_module(pb::GetModuleRequest {
                module: FALLBACK.into(),
            })
            .await
            .ok()
            .map(|r| r.into_inner())
        } else {
            None
        };
        let idle = c
            .get_deployment(pb::DeploymentRequest {
                module: PRIMARY.into(),
            })
            .await
            .is_ok_and(|d| d.get_ref().rollout.is_none());
        let (live, zombies) = probe::children(host);
        if healthy(p, PRIMARY_INSTANCES)
            && (!with_fallback || healthy(f, FALLBACK_INSTANCES))
            && idle
            && live.len() == want
            && zombies == 0
        {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The sum of a metric's samples whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Why a phase fails; empty when it passes.
fn verdicts(p: &Phase, with_fallback: bool, soak: bool) -> Vec<String> {
    let mut f = Vec::new();
    let t = &p.tally;
    let hung = t.hung + p.faults.hung;
    if hung > 0 {
        f.push(format!(
            "{hung} calls did not end within their deadline + {:?}",
            load::MARGIN
        ));
    }
    if with_fallback && t.failed() > 0 {
        f.push(format!(
            "{} of {} calls failed although the fallback was configured: {:?}",
            t.failed(),
            t.calls,
            t.errors
        ));
    }
    if t.untyped() > 0 {
        f.push(format!(
            "{} errors had no ErrorDetail or an unknown kind",
            t.untyped()
        ));
    }
    if t.wrong > 0 {
        f.push(format!("{} answers were wrong", t.wrong));
    }
    if soak {
        let first = p.samples.iter().filter(|s| s.t <= SOAK_BASELINE);
        let first_rss = first.clone().map(|s| s.rss_kib).max().unwrap_or(0);
        let first_fds = first.map(|s| s.own_fds).max().unwrap_or(0);
        if let Some(last) = p.samples.last() {
            if last.rss_kib > first_rss + SOAK_RSS_DRIFT {
                f.push(format!(
                    "RSS drifted by {:.1} MiB (bound {} MiB)",
                    (last.rss_kib - first_rss) as f64 / 1024.0,
                    SOAK_RSS_DRIFT / 1024
                ));
            }
            if last.own_fds > first_fds {
                f.push(format!(
                    "the host's own fds grew from {first_fds} to {}",
                    last.own_fds
                ));
            }
        }
    } else {
        let max = p
            .samples
            .iter()
            .map(|s| s.rss_kib)
            .chain([p.last.rss_kib])
            .max()
            .unwrap_or(0);
        if max > p.base_rss_kib + CHAOS_RSS_GROWTH {
            f.push(format!(
                "RSS grew by {:.1} MiB over its warm-up maximum (bound {} MiB)",
                (max - p.base_rss_kib) as f64 / 1024.0,
                CHAOS_RSS_GROWTH / 1024
            ));
        }
    }
    if p.last.own_fds > p.base_own_fds {
        f.push(format!(
            "the host's own fds grew from {} under load to {} after it",
            p.base_own_fds, p.last.own_fds
        ));
    }
    if p.settled.is_none() {
        f.push(format!(
            "the workers were not all back and healthy within {SETTLE_WITHIN:?} after the load"
        ));
    }
    if p.last.zombies > 0 {
        f.push(format!(
            "{} worker processes were left unreaped",
            p.last.zombies
        ));
    }
    if !p.exit.orphans.is_empty() {
        f.push(format!(
            "worker processes outlived the host: {:?}",
            p.exit.orphans
        ));
    }
    f
}

/// The soak's drift: the last sample minus the largest of the first minute.
fn print_drift(p: &Phase) {
    let first: Vec<&probe::Sample> = p.samples.iter().filter(|s| s.t <= SOAK_BASELINE).collect();
    let Some(last) = p.samples.last() else { return };
    let max_rss = first.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_fds = first.iter().map(|s| s.fds).max().unwrap_or(0);
    let max_own = first.iter().map(|s| s.own_fds).max().unwrap_or(0);
    println!(
        "\ndrift at {:.0} s (last minus the max of the first minute): RSS {:+.1} MiB \
         (bound +{} MiB), fds {:+}, own fds {:+}",
        last.t.as_secs_f64(),
        (last.rss_kib as f64 - max_rss as f64) / 1024.0,
        SOAK_RSS_DRIFT / 1024,
        last.fds as i64 - max_fds as i64,
        last.own_fds as i64 - max_own as i64
    );
}
