//! Zero-downtime deployments under load, measured in one run: while 64 callers keep calls
//! in flight against module `w` (the Rust test worker, release build, MessagePack, two
//! instances), the bench measures
//!
//! - steady state: a few seconds with no deployment (the baseline);
//! - switches: 20 consecutive blue-green deployments alternating between two versions,
//!   then one rolling update, one canary (25, 50, 100% with automatic advance) and one
//!   deployment of a bad version (20% of its `echo` calls fail with `INJECTED`) that the
//!   runtime must roll back on its own.
//!
//! Each deployment is a fresh version (1.1.0 to 1.1.19 blue-green, 1.2.0 rolling, 1.3.0
//! canary, 3.0.0 bad); with `DEPLOY_BENCH_ALTERNATE=1` the blue-green deployments alternate
//! between the folders of 2.0.0 and 1.0.0 instead. A deployment whose version fails to
//! start moves no traffic; it is printed and tried again.
//!
//! A call is lost when it fails with anything but the bad version's own injected errors;
//! latencies are those of the calls that succeeded, by when they started.
//! Prints the calls, the failures by kind, how long each kind of deployment took, the
//! version active at the end, and the p99 latency of the switches against steady state.
//! Target: zero calls lost, p99 (switches) / p99 (steady) <= 2.0.
//!
//! ```text
//! cargo bench -p polyglot-core --bench deploy
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyglot_core::hotswap::EventKind;
use polyglot_core::{
    CallError, CallOptions, DeployEvent, DeploymentConfig, Runtime, RuntimeConfig, Strategy,
    Thresholds, Value, VersionMeta,
};
use serde_json::json;

const IN_FLIGHT: usize = 64;
const BLUE_GREENS: usize = 20;
const STEADY: Duration = Duration::from_secs(3);
const WARMUP: Duration = Duration::from_secs(3);
const GRACE: Duration = Duration::from_millis(200);
/// The error code the test worker fails `echo` with under `TEST_FAIL_PERCENT`.
const INJECTED: &str = "INJECTED";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn release_worker() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "polyglot-worker",
            "--example",
            "test_worker",
        ])
        .current_dir(repo())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the test worker: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("release/examples/test_worker")
}

/// Writes module `w` at `version` into `root/w`, with `env` added to its environment.
fn module(root: &Path, worker: &Path, version: &str, env: serde_json::Value) -> PathBuf {
    let dir = root.join("w");
    std::fs::create_dir_all(&dir).unwrap();
    let mut vars = json!({"TEST_MAX_CONCURRENCY": IN_FLIGHT.to_string()});
    if let (Some(v), Some(extra)) = (vars.as_object_mut(), env.as_object()) {
        v.extend(extra.clone());
    }
    let manifest = json!({
        "name": "w", "language": "rust", "version": version,
        "command": worker.display().to_string(), "codec": "msgpack", "instances": 2,
        "env": vars,
        "timeoutMs": 5000, "handshakeTimeoutMs": 5000,
        "healthCheck": {"intervalMs": 1000, "timeoutMs": 1000},
        "shutdownGraceMs": 2000,
    });
    std::fs::write(dir.join("module.json"), manifest.to_string()).unwrap();
    dir
}

/// Short windows and quick ticks: ten calls make a verdict, more than 5% failing is
/// unhealthy; with 64 calls in flight a verdict takes a few milliseconds of traffic.
fn config() -> DeploymentConfig {
    DeploymentConfig::default()
        .with_thresholds(
            Thresholds::default()
                .with_min_calls(10)
                .with_max_error_rate(0.05),
        )
        .with_health_window(Duration::from_secs(2), 20)
        .with_tick(Duration::from_millis(50))
}

/// What happened to one call.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Injected,
    Lost,
}

/// One call: when it started (since the run's epoch), how long it took, how it ended.
struct Sample {
    start: Duration,
    micros: f64,
    outcome: Outcome,
}

/// What one caller saw.
#[derive(Default)]
struct Seen {
    samples: Vec<Sample>,
    /// Each lost call's error: its kind and text.
    lost: Vec<(String, String)>,
    by_version: BTreeMap<String, u64>,
}

fn error_kind(e: &CallError) -> String {
    match e {
        CallError::Remote { code, .. } => format!("Remote {code}"),
        other => {
            let d = format!("{other:?}");
            d.split([' ', '{', '(']).next().unwrap_or("?").to_owned()
        }
    }
}

/// 64 callers calling `w.echo` in a loop until `stop`.
fn load(
    rt: &Runtime,
    epoch: Instant,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..IN_FLIGHT)
        .map(|c| {
            let (rt, stop) = (rt.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let key = format!("caller-{c}-{i}");
                    let t = Instant::now();
                    let r = rt
                        .call_keyed(
                            "w",
                            "echo",
                            Value::Array(vec![Value::from("hello")]),
                            &key,
                            CallOptions::default(),
                        )
                        .await;
                    let micros = t.elapsed().as_secs_f64() * 1e6;
                    let outcome = match r {
                        Ok(r) => {
                            *seen.by_version.entry(r.version).or_default() += 1;
                            Outcome::Ok
                        }
                        Err(CallError::Remote { ref code, .. }) if code == INJECTED => {
                            Outcome::Injected
                        }
                        Err(e) => {
                            seen.lost.push((error_kind(&e), e.to_string()));
                            Outcome::Lost
                        }
                    };
                    seen.samples.push(Sample {
                        start: t - epoch,
                        micros,
                        outcome,
                    });
                }
                seen
            })
        })
        .collect()
}

/// Waits for the end of version `id`'s deployment: `Succeeded`, `Failed` or `RolledBack`
/// after its `Started` (an earlier attempt that failed to start may have had the same id,
/// and its events may still be on their way).
async fn finished(
    rt: &Runtime,
    rx: &mut tokio::sync::broadcast::Receiver<DeployEvent>,
    id: &str,
) -> EventKind {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut started = false;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if e.version == id => match e.kind {
                EventKind::Started { .. } => started = true,
                EventKind::Succeeded | EventKind::Failed { .. } | EventKind::RolledBack { .. }
                    if started =>
                {
                    // The deployer is free for the next one once its rollout is gone.
                    while rt.deployment("w").is_some_and(|s| s.rollout.is_some()) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    return e.kind;
                }
                _ => {}
            },
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("deployment events of {id}: {e}"),
            Err(_) => panic!("deployment of {id} did not finish within 60 s"),
        }
    }
}

/// One kind of deployment: how many, how long in all, and the window its calls ran in.
struct Phase {
    name: &'static str,
    count: usize,
    /// From `deploy` to the version's last event, each.
    took: Vec<Duration>,
    /// For blue-green: until `deploy` returned (the switch itself), each.
    switch: Vec<Duration>,
    from: Duration,
    to: Duration,
}

/// Deployments that failed before taking any traffic (their version did not start), and
/// why: the active version kept serving, and the bench tried again.
static FAILED_STARTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Deploys `dir` and waits for the end of its deployment; returns its id, how it ended,
/// the time until `deploy` returned and until the end (of the attempt that started).
async fn deploy(
    rt: &Runtime,
    rx: &mut tokio::sync::broadcast::Receiver<DeployEvent>,
    dir: &Path,
    strategy: Strategy,
    why: &str,
) -> (String, EventKind, Duration, Duration) {
    for attempt in 1.. {
        let t = Instant::now();
        let meta = VersionMeta::new("deploy bench", why);
        match rt.deploy("w", dir, strategy.clone(), meta).await {
            Ok(id) => {
                let switched = t.elapsed();
                let kind = finished(rt, rx, id.as_str()).await;
                return (id.to_string(), kind, switched, t.elapsed());
            }
            Err(e) if attempt < 5 => {
                FAILED_STARTS.lock().unwrap().push(format!("{why}: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{why}, attempt {attempt}: {e}"),
        }
    }
    unreachable!()
}

/// One deployment of its own kind.
async fn single(
    rt: &Runtime,
    rx: &mut tokio::sync::broadcast::Receiver<DeployEvent>,
    epoch: Instant,
    name: &'static str,
    dir: &Path,
    strategy: Strategy,
) -> (String, EventKind, Phase) {
    let from = epoch.elapsed();
    let (id, kind, _, t) = deploy(rt, rx, dir, strategy, name).await;
    let phase = Phase {
        name,
        count: 1,
        took: vec![t],
        switch: vec![],
        from,
        to: epoch.elapsed(),
    };
    (id, kind, phase)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The sorted latencies of the successful calls started in `[from, to)`.
fn window(seen: &[Seen], from: Duration, to: Duration) -> Vec<f64> {
    let mut v: Vec<f64> = seen
        .iter()
        .flat_map(|s| &s.samples)
        .filter(|s| s.outcome == Outcome::Ok && s.start >= from && s.start < to)
        .map(|s| s.micros)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

async fn bench(worker: PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mods = tmp.path().join("modules");
    module(&mods, &worker, "1.0.0", json!({}));
    // Each deployment a fresh version, unless DEPLOY_BENCH_ALTERNATE=1: then blue-green
    // alternates between 2.0.0 and 1.0.0 (a version deployed again gets its id again once
    // the earlier pool of it was released).
    let alternate = std::env::var("DEPLOY_BENCH_ALTERNATE").is_ok_and(|v| v == "1");
    let v1 = module(&tmp.path().join("v1"), &worker, "1.0.0", json!({}));
    let v2 = module(&tmp.path().join("v2"), &worker, "2.0.0", json!({}));
    let rolled = module(&tmp.path().join("rolling"), &worker, "1.2.0", json!({}));
    let canary = module(&tmp.path().join("canary"), &worker, "1.3.0", json!({}));
    let bad = module(
        &tmp.path().join("bad"),
        &worker,
        "3.0.0",
        json!({"TEST_FAIL_PERCENT": "20"}),
    );

    let rt = Runtime::with_deployments(
        RuntimeConfig {
            drain_timeout: Duration::from_secs(10),
        },
        config(),
    );
    let report = rt.load_dir(&mods).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut rx = rt.subscribe_deployments();

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let callers = load(&rt, epoch, &stop);

    // Phase 1: steady state.
    tokio::time::sleep(WARMUP).await;
    let steady_from = epoch.elapsed();
    tokio::time::sleep(STEADY).await;
    let steady_to = epoch.elapsed();

    // Phase 2: the switches.
    let mut phases = Vec::new();
    let from = epoch.elapsed();
    let (mut took, mut switch) = (Vec::new(), Vec::new());
    for i in 0..BLUE_GREENS {
        let dir = if alternate {
            if i % 2 == 0 {
                v2.clone()
            } else {
                v1.clone()
            }
        } else {
            let v = format!("1.1.{i}");
            module(&tmp.path().join(&v), &worker, &v, json!({}))
        };
        let (id, kind, s, t) = deploy(
            &rt,
            &mut rx,
            &dir,
            Strategy::blue_green(GRACE),
            "blue-green",
        )
        .await;
        assert!(matches!(kind, EventKind::Succeeded), "{id}: {kind:?}");
        took.push(t);
        switch.push(s);
    }
    phases.push(Phase {
        name: "blue-green",
        count: BLUE_GREENS,
        took,
        switch,
        from,
        to: epoch.elapsed(),
    });
    let (id, kind, p) = single(
        &rt,
        &mut rx,
        epoch,
        "rolling",
        &rolled,
        Strategy::rolling(2),
    )
    .await;
    assert!(matches!(kind, EventKind::Succeeded), "{id}: {kind:?}");
    phases.push(p);
    let (id, kind, p) = single(
        &rt,
        &mut rx,
        epoch,
        "canary 25/50/100",
        &canary,
        Strategy::canary(&[25, 50, 100], Duration::from_millis(500)),
    )
    .await;
    assert!(matches!(kind, EventKind::Succeeded), "{id}: {kind:?}");
    let good = id;
    phases.push(p);
    let (bad_id, rollback, p) = single(
        &rt,
        &mut rx,
        epoch,
        "bad version, auto-rollback",
        &bad,
        Strategy::canary(&[50], Duration::from_secs(10)),
    )
    .await;
    phases.push(p);
    let switches_to = epoch.elapsed();
    // Steady state again, on the version the rollback left active.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_from = epoch.elapsed();
    tokio::time::sleep(STEADY).await;
    let after_to = epoch.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for c in callers {
        seen.push(c.await.unwrap());
    }
    let active = rt
        .deployment("w")
        .and_then(|s| s.active)
        .map(|v| v.to_string());
    rt.shutdown().await;

    // The report.
    let all = seen.iter().flat_map(|s| &s.samples);
    let total = all.clone().count();
    let ok = all.clone().filter(|s| s.outcome == Outcome::Ok).count();
    let injected = all.filter(|s| s.outcome == Outcome::Injected).count();
    let mut lost: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for (kind, text) in seen.iter().flat_map(|s| &s.lost) {
        lost.entry(kind).or_insert((0, text)).0 += 1;
    }
    let lost_total: usize = lost.values().map(|(n, _)| n).sum();
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (v, n) in seen.iter().flat_map(|s| &s.by_version) {
        // The blue-green versions 1.1.0 to 1.1.19 as one.
        let v = v.split('#').next().unwrap();
        let v = if v.starts_with("1.1.") { "1.1.*" } else { v };
        *versions.entry(v).or_default() += n;
    }

    let steady = window(&seen, steady_from, steady_to);
    let switching = window(&seen, from, switches_to);
    println!(
        "\n{:<40} {:>9} {:>9} {:>9} {:>10} {:>12}",
        "echo, 64 in flight, msgpack, 2 instances",
        "calls",
        "p50 µs",
        "p99 µs",
        "p99/steady",
        "took"
    );
    let row = |name: &str, lat: &[f64], took: &str| {
        println!(
            "{:<40} {:>9} {:>9.1} {:>9.1} {:>10.2} {:>12}",
            name,
            lat.len(),
            percentile(lat, 0.5),
            percentile(lat, 0.99),
            percentile(lat, 0.99) / percentile(&steady, 0.99),
            took
        );
    };
    row(
        "steady state, no deployment",
        &steady,
        &format!("{:.1} s", (steady_to - steady_from).as_secs_f64()),
    );
    for p in &phases {
        let sum: Duration = p.took.iter().sum();
        let took = if p.count > 1 {
            format!("{:.2} s each", sum.as_secs_f64() / p.count as f64)
        } else {
            format!("{:.2} s", sum.as_secs_f64())
        };
        row(
            &format!("{} x{}", p.name, p.count),
            &window(&seen, p.from, p.to),
            &took,
        );
    }
    row(
        "steady state again, after the switches",
        &window(&seen, after_from, after_to),
        &format!("{:.1} s", (after_to - after_from).as_secs_f64()),
    );
    row(
        "all switches",
        &switching,
        &format!("{:.1} s", (switches_to - from).as_secs_f64()),
    );
    let bg = &phases[0];
    let switch_ms: Vec<f64> = bg.switch.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    println!(
        "\nblue-green: deploy() returned after the switch in {:.0}-{:.0} ms (start, checks, switch); done after the {} ms grace and a verdict",
        switch_ms.iter().copied().fold(f64::INFINITY, f64::min),
        switch_ms.iter().copied().fold(0.0, f64::max),
        GRACE.as_millis()
    );
    match &rollback {
        EventKind::RolledBack { to, reason } => {
            println!("bad version {bad_id}: rolled back to {to} ({reason})")
        }
        other => println!("bad version {bad_id}: NOT rolled back: {other:?}"),
    }
    println!(
        "active at the end: {} (the good version: {good}) -> {}",
        active.as_deref().unwrap_or("none"),
        if active.as_deref() == Some(good.as_str()) {
            "rolled back"
        } else {
            "NOT ROLLED BACK"
        }
    );
    println!(
        "calls served by version: {}",
        versions
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\ncalls: {total} total, {ok} ok, {injected} failed with the bad version's {INJECTED}, {lost_total} lost"
    );
    for (kind, (n, example)) in &lost {
        println!("  lost, {kind}: {n} (e.g. {example})");
    }
    let failed_starts = FAILED_STARTS.lock().unwrap().clone();
    println!(
        "deployments whose version failed to start (no traffic moved; tried again): {}",
        failed_starts.len()
    );
    for f in &failed_starts {
        println!("  {f}");
    }
    println!("\ntargets:");
    println!("  calls lost                        {lost_total}  (= 0)");
    println!(
        "  p99 switches / p99 steady state   {:.2}  (<= 2.0)",
        percentile(&switching, 0.99) / percentile(&steady, 0.99)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks for names; there is one, this run.
    }
    let worker = release_worker();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(worker));
}
