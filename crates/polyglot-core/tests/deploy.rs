//! Zero-downtime deployments with real worker processes: two folders of one module, each
//! a version with its own pool; blue-green and rolling switches under steady load,
//! canary stages routed by key, a bad version rolled back on its own, rollbacks by hand,
//! and the state file that brings a restarted runtime back on the version that was
//! active.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polyglot_core::hotswap::{Amount, EventKind, HealthMark, RolloutPhase, StrategyKind};
use polyglot_core::{
    CallError, CallOptions, DeployError, DeployEvent, DeploymentConfig, DeploymentError, LoadError,
    Runtime, RuntimeConfig, Strategy, Thresholds, Value, VersionMeta, VersionState,
};
use serde_json::json;
use support::{alive, args, eventually, Lang, Modules};

/// The error code the test worker answers `echo` with when told to fail some calls.
const INJECTED: &str = "INJECTED";

/// Short windows and quick ticks, so that a test's verdicts come within a second or two:
/// ten calls make a verdict, more than 5% of them failing is unhealthy.
fn config() -> DeploymentConfig {
    DeploymentConfig::default()
        .with_thresholds(
            Thresholds::default()
                .with_min_calls(10)
                .with_max_error_rate(0.05),
        )
        .with_health_window(Duration::from_secs(3), 30)
        .with_tick(Duration::from_millis(50))
}

async fn start(mods: &Modules, cfg: DeploymentConfig) -> Runtime {
    let rt = Runtime::with_deployments(
        RuntimeConfig {
            drain_timeout: Duration::from_secs(10),
        },
        cfg,
    );
    let report = rt.load_dir(mods.dir()).await;
    assert!(
        report.errors.is_empty(),
        "load errors: {:#?}",
        report.errors
    );
    rt
}

/// Module `w` version 1.0.0 in a modules folder, and version 2.0.0 of it in a folder of
/// its own (a release waiting to be deployed), each with `extra` merged in.
fn two_versions(v1: serde_json::Value, v2: serde_json::Value) -> (Modules, Modules, PathBuf) {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, v1);
    let releases = Modules::new();
    let mut m = json!({"version": "2.0.0"});
    support::merge(&mut m, v2);
    let dir = releases.add("w", Lang::Rust, m);
    (mods, releases, dir)
}

fn meta(why: &str) -> VersionMeta {
    VersionMeta::new("deploy test", why)
}

fn pids(rt: &Runtime) -> Vec<u32> {
    rt.module("w")
        .unwrap()
        .instances
        .iter()
        .filter_map(|i| i.pid)
        .collect()
}

fn active(rt: &Runtime) -> Option<String> {
    rt.deployment("w")?.active.map(|v| v.to_string())
}

fn health_of(rt: &Runtime, version: &str) -> HealthMark {
    rt.history("w")
        .unwrap()
        .into_iter()
        .find(|v| v.version == version)
        .map(|v| v.health)
        .unwrap_or_default()
}

fn state_of(rt: &Runtime, version: &str) -> Option<VersionState> {
    rt.history("w")
        .unwrap()
        .into_iter()
        .find(|v| v.version == version)
        .map(|v| v.state)
}

/// Waits for the first event that `pred` accepts.
async fn wait_event(
    rx: &mut tokio::sync::broadcast::Receiver<DeployEvent>,
    within: Duration,
    what: &str,
    pred: impl Fn(&DeployEvent) -> bool,
) -> DeployEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Whether event `e` is about `version` and of a kind `kind` accepts.
fn is(e: &DeployEvent, version: &str, kind: fn(&EventKind) -> bool) -> bool {
    e.version == version && kind(&e.kind)
}

/// What a load saw.
#[derive(Debug, Default, Clone)]
struct Stats {
    ok: u64,
    by_version: BTreeMap<String, u64>,
    /// Calls the bad version failed on purpose.
    injected: u64,
    /// Every other failure: a call lost.
    lost: Vec<String>,
}

/// Callers calling module `w` in a loop until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: Arc<Mutex<Stats>>,
}

impl Load {
    /// `callers` loops calling `method` (`sleep` 10 ms, so that calls are in flight
    /// across every switch, or `echo`).
    fn start(rt: &Runtime, callers: usize, method: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let tasks = (0..callers)
            .map(|c| {
                let (rt, stop, stats) = (rt.clone(), stop.clone(), stats.clone());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let params = match method {
                            "sleep" => args(vec![10.into()]),
                            _ => args(vec![format!("call {c}-{i}").into()]),
                        };
                        let key = format!("caller-{c}-{i}");
                        let r = rt
                            .call_keyed("w", method, params, &key, CallOptions::default())
                            .await;
                        let mut s = stats.lock().unwrap();
                        match r {
                            Ok(r) => {
                                s.ok += 1;
                                *s.by_version.entry(r.version).or_default() += 1;
                            }
                            Err(CallError::Remote { code, .. }) if code == INJECTED => {
                                s.injected += 1
                            }
                            Err(e) => s.lost.push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Load { stop, tasks, stats }
    }

    /// How many calls `version` has answered so far.
    fn served(&self, version: &str) -> u64 {
        let s = self.stats.lock().unwrap();
        s.by_version.get(version).copied().unwrap_or(0)
    }

    async fn stop(self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let s = self.stats.lock().unwrap().clone();
        s
    }
}

fn assert_none_lost(s: &Stats) {
    assert!(
        s.lost.is_empty(),
        "{} calls lost (of {}): {:?}",
        s.lost.len(),
        s.ok,
        &s.lost[..s.lost.len().min(5)]
    );
}

/// Calls `version` with `key` and checks the reply's version is the one that answered.
async fn version_for(rt: &Runtime, key: &str) -> String {
    let r = rt
        .call_keyed("w", "version", args(vec![]), key, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r.value,
        Value::from(r.version.as_str()),
        "the reply names who served"
    );
    r.version
}

/// Blue-green under steady load: the switch is one atomic step, the old pool finishes the
/// calls it holds before it stops, and no caller sees a failure.
#[tokio::test]
async fn blue_green_under_steady_load_loses_no_call() {
    let (mods, _releases, v2) = two_versions(json!({"instances": 2}), json!({"instances": 2}));
    let rt = start(&mods, config()).await;
    let old_pids = pids(&rt);
    let mut events = rt.subscribe_deployments();
    let load = Load::start(&rt, 8, "sleep");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let v = rt
        .deploy(
            "w",
            &v2,
            Strategy::blue_green(Duration::from_millis(500)),
            meta("blue-green"),
        )
        .await
        .unwrap();
    assert_eq!(v, "2.0.0");
    // The switch happened before deploy returned: new calls go to 2.0.0 only.
    assert_eq!(active(&rt).as_deref(), Some("2.0.0"));
    assert_eq!(version_for(&rt, "anyone").await, "2.0.0");
    assert!(matches!(
        rt.deployment("w").unwrap().rollout.map(|r| r.phase),
        Some(RolloutPhase::Grace | RolloutPhase::Promoting)
    ));
    let done = wait_event(
        &mut events,
        Duration::from_secs(15),
        "2.0.0 succeeded",
        |e| e.version == "2.0.0" && matches!(e.kind, EventKind::Succeeded),
    )
    .await;
    assert_eq!(done.deployment, "w");
    let released = wait_event(
        &mut events,
        Duration::from_secs(15),
        "1.0.0 released",
        |e| e.version == "1.0.0" && matches!(e.kind, EventKind::Released { .. }),
    )
    .await;
    assert!(
        matches!(released.kind, EventKind::Released { drained: true }),
        "{released:?}"
    );
    for pid in old_pids {
        eventually(Duration::from_secs(5), "an old worker stopped", || {
            !alive(pid)
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = load.stop().await;
    assert_none_lost(&stats);
    assert!(
        stats.by_version.get("1.0.0").is_some_and(|n| *n > 20)
            && stats.by_version.get("2.0.0").is_some_and(|n| *n > 20),
        "both versions served: {:?}",
        stats.by_version
    );
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Superseded));
    assert!(health_of(&rt, "2.0.0").is_healthy());
    rt.shutdown().await;
}

/// A canary moves in stages; a routing key keeps its version at each stage, and keys the
/// canary took stay with it as it grows. The release's smoke calls ran before it took
/// traffic.
#[tokio::test]
async fn canary_stages_keep_each_key_on_one_version() {
    let smoke = json!({"smoke": [
        {"method": "echo", "params": ["hi"], "result": "hi"},
        {"method": "fail", "params": ["NOPE", "no"], "error": "NOPE"},
    ]});
    let (mods, _releases, v2) = two_versions(json!({}), smoke);
    let rt = start(&mods, config()).await;
    let Strategy::Canary(canary) = Strategy::canary(&[20, 50], Duration::from_millis(300)) else {
        unreachable!()
    };
    rt.deploy("w", &v2, Strategy::Canary(canary.manual()), meta("canary"))
        .await
        .unwrap();
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "1.0.0");
    let rollout = status.rollout.unwrap();
    assert_eq!(
        (rollout.phase, rollout.percent),
        (
            RolloutPhase::Canary {
                stage: 0,
                stages: 2
            },
            20
        )
    );

    let keys = user_keys(200);
    let stage0 = route(&rt, &keys).await;
    assert!(
        (0.08..=0.35).contains(&share_of_v2(&stage0)),
        "{}",
        share_of_v2(&stage0)
    );

    advance_when_ready(&rt, &keys).await;
    assert_eq!(rt.deployment("w").unwrap().rollout.unwrap().percent, 50);
    let stage1 = route(&rt, &keys).await;
    assert!(
        (0.35..=0.65).contains(&share_of_v2(&stage1)),
        "{}",
        share_of_v2(&stage1)
    );
    for (k, v) in &stage0 {
        if v == "2.0.0" {
            assert_eq!(stage1[k], "2.0.0", "the canary gave key {k} back");
        }
    }

    // After the last stage, advancing promotes it.
    advance_when_ready(&rt, &keys).await;
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "2.0.0");
    assert!(status.rollout.is_none());
    let all = route(&rt, &keys[..20]).await;
    assert!(all.values().all(|v| v == "2.0.0"), "{all:?}");
    rt.shutdown().await;
}

/// Advances the canary once its stage has run and its analysis passed, making calls so
/// it has some to judge.
async fn advance_when_ready(rt: &Runtime, keys: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    loop {
        match rt.advance("w").await {
            Ok(()) => return,
            Err(e) => match e.deploy_error() {
                Some(DeployError::NotReady { reason, .. }) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "never ready: {reason}"
                ),
                _ => panic!("{e}"),
            },
        }
        for _ in 0..20 {
            version_for(rt, &keys[i % keys.len()]).await;
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` routing keys: `user-0`, `user-1`, ...
fn user_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

/// Calls `version` three times with each key, checking a key reaches the same version
/// every time; returns the version each key reached.
async fn route(rt: &Runtime, keys: &[String]) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    for k in keys {
        let first = version_for(rt, k).await;
        for _ in 0..2 {
            assert_eq!(version_for(rt, k).await, first, "key {k} moved");
        }
        seen.insert(k.clone(), first);
    }
    seen
}

/// The share of the keys in `seen` that reached 2.0.0.
fn share_of_v2(seen: &HashMap<String, String>) -> f64 {
    seen.values().filter(|v| *v == "2.0.0").count() as f64 / seen.len() as f64
}

/// A release whose smoke call does not answer as its manifest expects never takes
/// traffic: the deployment fails with the mismatch, and its workers are stopped.
#[tokio::test]
async fn a_release_failing_its_smoke_calls_takes_no_traffic() {
    let smoke = json!({"smoke": [{"method": "echo", "params": ["hi"], "result": "HI"}]});
    let (mods, _releases, v2) = two_versions(json!({}), smoke);
    let rt = start(&mods, config()).await;
    let mut events = rt.subscribe_deployments();
    let e = rt
        .deploy("w", &v2, Strategy::immediate(), meta("bad smoke"))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e.deploy_error(), Some(DeployError::SmokeFailed { .. })),
        "{text}"
    );
    assert!(
        text.contains(r#"echo(["hi"]): expected "HI", got "hi""#),
        "{text}"
    );
    assert_eq!(active(&rt).as_deref(), Some("1.0.0"));
    assert_eq!(version_for(&rt, "k").await, "1.0.0");
    assert!(matches!(
        state_of(&rt, "2.0.0"),
        Some(VersionState::Failed { .. })
    ));
    wait_event(
        &mut events,
        Duration::from_secs(10),
        "2.0.0 released",
        |e| e.version == "2.0.0" && matches!(e.kind, EventKind::Released { .. }),
    )
    .await;
    rt.shutdown().await;
}

/// A version that fails a fifth of its calls is rolled back by its health alone, while
/// callers keep calling: the only failures they see are that version's own errors, and
/// afterwards every call is served by the version known healthy.
#[tokio::test]
async fn a_bad_version_is_rolled_back_automatically() {
    let (mods, _releases, v2) = two_versions(
        json!({"instances": 2}),
        json!({"instances": 2, "env": {"TEST_FAIL_PERCENT": "20"}}),
    );
    let rt = start(&mods, config()).await;
    let load = Load::start(&rt, 6, "echo");
    eventually(Duration::from_secs(10), "1.0.0 is judged healthy", || {
        health_of(&rt, "1.0.0").is_healthy()
    })
    .await;
    let mut events = rt.subscribe_deployments();
    rt.deploy(
        "w",
        &v2,
        Strategy::canary(&[50], Duration::from_secs(30)),
        meta("a bad release"),
    )
    .await
    .unwrap();
    let e = wait_event(&mut events, Duration::from_secs(15), "the rollback", |e| {
        matches!(
            e.kind,
            EventKind::RolledBack { .. } | EventKind::Failed { .. }
        )
    })
    .await;
    match &e.kind {
        EventKind::RolledBack { to, reason } => {
            assert_eq!((e.version.as_str(), to.as_str()), ("2.0.0", "1.0.0"));
            assert!(reason.contains("unhealthy"), "{reason}");
        }
        other => panic!("expected a rollback onto 1.0.0: {other:?}"),
    }
    assert_eq!(active(&rt).as_deref(), Some("1.0.0"));
    assert!(rt.deployment("w").unwrap().rollout.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = load.stop().await;
    assert_none_lost(&stats);
    assert!(stats.injected > 0, "the bad version failed some calls");
    for i in 0..20 {
        assert_eq!(version_for(&rt, &format!("after-{i}")).await, "1.0.0");
    }
    assert_eq!(state_of(&rt, "2.0.0"), Some(VersionState::RolledBack));
    assert!(matches!(
        health_of(&rt, "2.0.0"),
        HealthMark::Unhealthy { .. }
    ));
    wait_event(
        &mut events,
        Duration::from_secs(10),
        "2.0.0 released",
        |e| e.version == "2.0.0" && matches!(e.kind, EventKind::Released { .. }),
    )
    .await;
    rt.shutdown().await;
}

/// A rollback by hand onto a version already stopped starts it again from its folder,
/// checks it warm, then gives it the traffic; and back again by name. No call is lost.
#[tokio::test]
async fn a_rollback_by_hand_revives_the_previous_version() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let v1_pids = pids(&rt);
    let load = Load::start(&rt, 4, "sleep");
    eventually(Duration::from_secs(10), "1.0.0 is judged healthy", || {
        health_of(&rt, "1.0.0").is_healthy()
    })
    .await;
    rt.deploy("w", &v2, Strategy::immediate(), meta("immediate"))
        .await
        .unwrap();
    assert_eq!(active(&rt).as_deref(), Some("2.0.0"));
    for pid in v1_pids {
        eventually(Duration::from_secs(10), "1.0.0 stopped", || !alive(pid)).await;
    }
    let v2_pids = pids(&rt);

    let back = rt.rollback("w", None).await.unwrap();
    assert_eq!(back, "1.0.0");
    assert_eq!(version_for(&rt, "k").await, "1.0.0");
    assert_eq!(state_of(&rt, "2.0.0"), Some(VersionState::RolledBack));
    for pid in v2_pids {
        eventually(Duration::from_secs(10), "2.0.0 stopped", || !alive(pid)).await;
    }

    let forward = rt.rollback("w", Some("2.0.0")).await.unwrap();
    assert_eq!(forward, "2.0.0");
    assert_eq!(version_for(&rt, "k").await, "2.0.0");
    let e = rt.rollback("w", Some("9.9.9")).await.unwrap_err();
    assert!(
        matches!(e.deploy_error(), Some(DeployError::UnknownVersion { .. })),
        "{e}"
    );
    let stats = load.stop().await;
    assert_none_lost(&stats);
    assert!(
        stats.by_version.len() == 2,
        "both served: {:?}",
        stats.by_version
    );
    rt.shutdown().await;
}

/// A rolling update replaces the workers in batches, as Kubernetes does: with four
/// instances, `maxSurge` 1 and `maxUnavailable` 0, never more than five workers of the
/// module run, a batch starts only when the one before is ready, the old workers retire
/// one by one after finishing their calls, and no call is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_workers_in_batches() {
    let mark = format!("rolling-{}", std::process::id());
    let (mods, _releases, v2) = two_versions(
        json!({"instances": 4, "env": {"ROLLING_MARK": mark}}),
        json!({"instances": 4, "env": {"ROLLING_MARK": mark}}),
    );
    let rt = start(&mods, config()).await;
    match rt
        .deploy("w", &v2, Strategy::rolling(3), meta("rolling"))
        .await
    {
        Err(e @ DeploymentError::Replicas { .. }) => {
            assert!(e.to_string().contains("instances: 4"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let old_pids = pids(&rt);
    assert_eq!(old_pids.len(), 4);
    let mut events = rt.subscribe_deployments();
    let load = Load::start(&rt, 4, "sleep");
    let watching = Arc::new(AtomicBool::new(true));
    let most = {
        let (watching, mark) = (watching.clone(), mark.clone());
        tokio::task::spawn_blocking(move || {
            let mut most = 0;
            while watching.load(Ordering::Relaxed) {
                most = most.max(marked_processes(&mark));
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        })
    };
    let strategy = Strategy::Rolling(
        polyglot_core::hotswap::Rolling::new(4)
            .with_max_surge(Amount::Count(1))
            .with_max_unavailable(Amount::Count(0)),
    );
    rt.deploy("w", &v2, strategy, meta("rolling"))
        .await
        .unwrap();
    let mut batches = Vec::new();
    loop {
        let e = wait_event(&mut events, Duration::from_secs(30), "the rollout", |e| {
            matches!(
                e.kind,
                EventKind::StageAdvanced { .. } | EventKind::Succeeded | EventKind::Failed { .. }
            )
        })
        .await;
        match e.kind {
            EventKind::StageAdvanced { stage, .. } => batches.push(stage),
            EventKind::Succeeded => break,
            other => panic!("the rolling update failed: {other:?}"),
        }
    }
    watching.store(false, Ordering::Relaxed);
    let most = most.await.unwrap();
    let stats = load.stop().await;
    assert_eq!(batches, [0, 1, 2, 3], "one batch per new worker");
    assert!(
        most <= 5,
        "at most replicas + maxSurge workers at once, saw {most}"
    );
    assert!(most >= 4, "the watcher saw the workers: {most}");
    assert_none_lost(&stats);
    assert!(stats.by_version.contains_key("2.0.0"), "{stats:?}");
    assert_eq!(active(&rt).as_deref(), Some("2.0.0"));
    let new_pids = pids(&rt);
    assert_eq!(new_pids.len(), 4, "the new version runs its whole pool");
    eventually(Duration::from_secs(10), "the old workers gone", || {
        old_pids.iter().all(|p| !alive(*p))
    })
    .await;
    rt.shutdown().await;
}

/// Worker processes whose environment carries `ROLLING_MARK=mark`.
fn marked_processes(mark: &str) -> usize {
    let needle = format!("ROLLING_MARK={mark}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .count()
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state/deployments.json")
}

/// The state file brings a restarted runtime back on the version that was active (from
/// its own folder, not the one found in the modules folder), with its history: a rollback
/// after the restart starts the earlier version from the folder the file remembers.
#[tokio::test]
async fn a_restarted_runtime_comes_back_on_the_persisted_version() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let state = tempfile::tempdir().unwrap();
    let cfg = config().with_state_file(state_file(state.path()));

    let rt = start(&mods, cfg.clone()).await;
    rt.deploy("w", &v2, Strategy::immediate(), meta("persisted"))
        .await
        .unwrap();
    assert_eq!(version_for(&rt, "k").await, "2.0.0");
    rt.shutdown().await;
    let text = std::fs::read_to_string(state_file(state.path())).unwrap();
    assert!(text.contains(&v2.display().to_string()), "{text}");

    // The modules folder still holds 1.0.0; the state file says 2.0.0 was active.
    let rt = start(&mods, cfg.clone()).await;
    assert_eq!(active(&rt).as_deref(), Some("2.0.0"));
    assert_eq!(version_for(&rt, "k").await, "2.0.0");
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Superseded));
    let back = rt.rollback("w", Some("1.0.0")).await.unwrap();
    assert_eq!(back, "1.0.0");
    assert_eq!(version_for(&rt, "k").await, "1.0.0");
    rt.shutdown().await;

    // And the rollback is what the next start comes back on.
    let rt = start(&mods, cfg).await;
    assert_eq!(version_for(&rt, "k").await, "1.0.0");
    let history = rt.history("w").unwrap();
    assert!(
        history
            .iter()
            .any(|v| v.version == "2.0.0" && v.state == VersionState::RolledBack),
        "{history:?}"
    );
    rt.shutdown().await;
}

/// A state file that cannot be read is reported by the load, moved aside (never silently
/// dropped or overwritten), and the modules start on the versions in their folders.
#[tokio::test]
async fn a_corrupt_state_file_is_reported_and_set_aside() {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({}));
    let state = tempfile::tempdir().unwrap();
    let path = state_file(state.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{\"format\": 1, \"modules\": {\"w\": ").unwrap();
    let rt = Runtime::with_deployments(RuntimeConfig::default(), config().with_state_file(&path));
    let report = rt.load_dir(mods.dir()).await;
    match report.errors.as_slice() {
        [e @ LoadError::State { .. }] => {
            let text = e.to_string();
            assert!(text.contains("deployments.json"), "{text}");
            assert!(text.contains("moved aside"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let aside: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("deployments.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "set aside once");
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        "{\"format\": 1, \"modules\": {\"w\": ",
        "kept as it was"
    );
    assert_eq!(version_for(&rt, "k").await, "1.0.0");
    // The next write is a valid state again.
    eventually(Duration::from_secs(5), "a new state file", || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["modules"]["w"]["snapshot"]["active"] == "1.0.0")
    })
    .await;
    rt.shutdown().await;
}

/// A shadowing version gets a copy of every call while callers only ever see the active
/// version's answers; the copies' answers are compared, and a version that answered the
/// same is switched to once it has shadowed long enough.
#[tokio::test]
async fn a_shadow_gets_copies_and_is_switched_to_when_it_answers_the_same() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let load = Load::start(&rt, 4, "echo");
    let mut events = rt.subscribe_deployments();
    rt.deploy(
        "w",
        &v2,
        Strategy::shadow(Duration::from_millis(500)),
        meta("shadow"),
    )
    .await
    .unwrap();
    let traffic = rt.deployment("w").unwrap().traffic;
    assert!(
        traffic.iter().any(|t| t.version == "2.0.0" && t.shadow),
        "{traffic:?}"
    );
    // While it shadows, nobody is answered by it. (Not `version`: each version answers
    // its own, so those copies would be mismatches.)
    for i in 0..20 {
        let r = rt
            .call_keyed(
                "w",
                "echo",
                args(vec![i.into()]),
                &format!("k{i}"),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!((r.value, r.version.as_str()), (Value::from(i), "1.0.0"));
    }
    let end = wait_event(&mut events, Duration::from_secs(15), "the switch", |e| {
        e.version == "2.0.0"
            && matches!(
                e.kind,
                EventKind::Succeeded | EventKind::Failed { .. } | EventKind::RolledBack { .. }
            )
    })
    .await;
    assert!(matches!(end.kind, EventKind::Succeeded), "{end:?}");
    let shadowed = rt
        .history("w")
        .unwrap()
        .into_iter()
        .find(|v| v.version == "1.0.0")
        .unwrap();
    assert_eq!(shadowed.state, VersionState::Superseded);
    let stats = load.stop().await;
    assert_none_lost(&stats);
    assert_eq!(active(&rt).as_deref(), Some("2.0.0"));
    let summary = rt
        .history("w")
        .unwrap()
        .into_iter()
        .find(|v| v.version == "2.0.0")
        .and_then(|v| v.summary)
        .unwrap();
    assert!(summary.compared >= 10, "copies were compared: {summary:?}");
    assert_eq!(summary.mismatches, 0, "{summary:?}");
    rt.shutdown().await;
}

/// Deployments back to back under load: each new pool is ready the moment it reports
/// started (a worker counted as started is already routable), so none fails its warm
/// check for nothing, and no caller sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_deployments_under_load_all_start() {
    let (mods, _releases, v2) = two_versions(json!({"instances": 2}), json!({"instances": 2}));
    let v1 = mods.dir().join("w");
    let rt = start(&mods, config()).await;
    let load = Load::start(&rt, 64, "echo");
    for i in 0..30 {
        let dir = if i % 2 == 0 { &v2 } else { &v1 };
        let r = rt
            .deploy("w", dir, Strategy::immediate(), meta("back to back"))
            .await;
        assert!(r.is_ok(), "deployment {i} failed: {}", r.unwrap_err());
    }
    let stats = load.stop().await;
    assert_none_lost(&stats);
    rt.shutdown().await;
}

/// An A/B test sends each routing key to one version for as long as it runs, about its
/// share of keys to B; giving B a bigger share moves keys from A to B only; a split of
/// 0 or 100 is refused; advancing promotes B for every key, and A's workers are stopped.
#[tokio::test]
async fn an_ab_test_keeps_each_key_on_one_version_until_b_is_promoted() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let v1_pids = pids(&rt);
    let mut events = rt.subscribe_deployments();
    rt.deploy(
        "w",
        &v2,
        Strategy::ab_test(30, Duration::from_secs(600)),
        meta("a/b test"),
    )
    .await
    .unwrap();
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "1.0.0");
    let rollout = status.rollout.unwrap();
    assert_eq!(
        (rollout.strategy, rollout.phase, rollout.percent),
        (StrategyKind::AbTest, RolloutPhase::AbTest, 30)
    );

    let keys = user_keys(400);
    let at30 = route(&rt, &keys).await;
    let share = share_of_v2(&at30);
    assert!((0.20..=0.40).contains(&share), "B's share at 30%: {share}");

    rt.set_split("w", 60).await.unwrap();
    assert_eq!(rt.deployment("w").unwrap().rollout.unwrap().percent, 60);
    let at60 = route(&rt, &keys).await;
    let share = share_of_v2(&at60);
    assert!((0.50..=0.70).contains(&share), "B's share at 60%: {share}");
    for (k, v) in &at30 {
        if v == "2.0.0" {
            assert_eq!(at60[k], "2.0.0", "key {k} went back from B to A as B grew");
        }
    }

    for percent in [0, 100] {
        let e = rt.set_split("w", percent).await.unwrap_err();
        match e.deploy_error() {
            Some(DeployError::InvalidStrategy { source, .. }) => {
                assert_eq!(source.field, "abTest.percentB", "{e}");
                assert!(source.problem.contains("between 1 and 99"), "{e}");
            }
            _ => panic!("set_split({percent}): {e}"),
        }
        assert!(e.to_string().contains("between 1 and 99"), "{e}");
    }
    assert_eq!(
        rt.deployment("w").unwrap().rollout.unwrap().percent,
        60,
        "a refused split changes nothing"
    );

    advance_when_ready(&rt, &keys).await;
    let promoted = wait_event(&mut events, Duration::from_secs(5), "B promoted", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::Promoted { .. }))
    })
    .await;
    match &promoted.kind {
        EventKind::Promoted { from } => assert_eq!(from.as_ref().unwrap(), "1.0.0"),
        other => unreachable!("{other:?}"),
    }
    wait_event(&mut events, Duration::from_secs(5), "B succeeded", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::Succeeded))
    })
    .await;
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "2.0.0");
    assert!(status.rollout.is_none(), "{status:?}");
    let after = route(&rt, &keys).await;
    assert!(
        after.values().all(|v| v == "2.0.0"),
        "keys left on A: {:?}",
        after
            .iter()
            .filter(|(_, v)| *v != "2.0.0")
            .collect::<Vec<_>>()
    );
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Superseded));
    assert_eq!(state_of(&rt, "2.0.0"), Some(VersionState::Active));
    let released = wait_event(&mut events, Duration::from_secs(15), "A released", |e| {
        is(e, "1.0.0", |k| matches!(k, EventKind::Released { .. }))
    })
    .await;
    assert!(
        matches!(released.kind, EventKind::Released { drained: true }),
        "{released:?}"
    );
    for pid in v1_pids {
        eventually(Duration::from_secs(10), "a worker of A stopped", || {
            !alive(pid)
        })
        .await;
    }
    rt.shutdown().await;
}

/// A rollback during an A/B test keeps A: every key goes back to it, and B is rolled
/// back and let go.
#[tokio::test]
async fn a_rollback_during_an_ab_test_keeps_a() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let mut events = rt.subscribe_deployments();
    rt.deploy(
        "w",
        &v2,
        Strategy::ab_test(50, Duration::from_secs(600)),
        meta("a/b test"),
    )
    .await
    .unwrap();
    let keys = user_keys(200);
    let during = route(&rt, &keys).await;
    let share = share_of_v2(&during);
    assert!((0.35..=0.65).contains(&share), "B's share at 50%: {share}");
    // A rollback goes to a version known healthy; the calls above are its evidence.
    eventually(Duration::from_secs(10), "1.0.0 is judged healthy", || {
        health_of(&rt, "1.0.0").is_healthy()
    })
    .await;

    let back = rt.rollback("w", None).await.unwrap();
    assert_eq!(back, "1.0.0");
    let e = wait_event(&mut events, Duration::from_secs(5), "B rolled back", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::RolledBack { .. }))
    })
    .await;
    match &e.kind {
        EventKind::RolledBack { to, reason } => {
            assert_eq!(to, "1.0.0");
            assert!(reason.contains("by hand"), "{reason}");
        }
        other => unreachable!("{other:?}"),
    }
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "1.0.0");
    assert!(status.rollout.is_none(), "{status:?}");
    let after = route(&rt, &keys).await;
    assert!(
        after.values().all(|v| v == "1.0.0"),
        "keys left on B: {:?}",
        after
            .iter()
            .filter(|(_, v)| *v != "1.0.0")
            .collect::<Vec<_>>()
    );
    assert_eq!(state_of(&rt, "2.0.0"), Some(VersionState::RolledBack));
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Active));
    wait_event(&mut events, Duration::from_secs(15), "B released", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::Released { .. }))
    })
    .await;
    rt.shutdown().await;
}

/// An A/B test nobody decides ends at its deadline, not before, with A kept: B is failed
/// with the reason, and the keys it had are back on A.
#[tokio::test]
async fn an_ab_test_reaching_its_deadline_keeps_a() {
    let deadline = Duration::from_millis(1500);
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let mut events = rt.subscribe_deployments();
    rt.deploy("w", &v2, Strategy::ab_test(50, deadline), meta("a/b test"))
        .await
        .unwrap();
    let split = wait_event(&mut events, Duration::from_secs(5), "the split", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::StageAdvanced { .. }))
    })
    .await;
    // While the test runs, some keys reach B (half of them: a few calls find one).
    let keys = user_keys(200);
    let mut on_b = None;
    for k in &keys[..40] {
        if version_for(&rt, k).await == "2.0.0" {
            on_b = Some(k.clone());
            break;
        }
    }
    let on_b = on_b.expect("no key reached B during the test");

    let end = wait_event(&mut events, Duration::from_secs(15), "the end", |e| {
        e.version == "2.0.0"
            && matches!(
                e.kind,
                EventKind::Failed { .. }
                    | EventKind::RolledBack { .. }
                    | EventKind::Promoted { .. }
                    | EventKind::Succeeded
            )
    })
    .await;
    match &end.kind {
        EventKind::Failed { reason } => {
            assert!(reason.contains("deadline"), "{reason}");
            assert!(reason.contains("A was kept"), "{reason}");
        }
        other => panic!("expected the test to fail at its deadline: {other:?}"),
    }
    let ran = Duration::from_millis(end.timestamp_ms - split.timestamp_ms);
    // Event times are whole wall-clock milliseconds: allow for their rounding.
    assert!(
        ran + Duration::from_millis(5) >= deadline,
        "ended after {ran:?}, before its deadline of {deadline:?}"
    );
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "1.0.0");
    assert!(status.rollout.is_none(), "{status:?}");
    assert_eq!(version_for(&rt, &on_b).await, "1.0.0");
    let after = route(&rt, &keys).await;
    assert!(after.values().all(|v| v == "1.0.0"), "{after:?}");
    assert!(
        matches!(state_of(&rt, "2.0.0"), Some(VersionState::Failed { .. })),
        "{:?}",
        state_of(&rt, "2.0.0")
    );
    wait_event(&mut events, Duration::from_secs(15), "B released", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::Released { .. }))
    })
    .await;
    rt.shutdown().await;
}

/// A scheduled deployment waits for its time: until then calls stay on the active
/// version and advancing is refused as too early, saying when; at its time it switches
/// on its own.
#[tokio::test]
async fn a_scheduled_deployment_switches_at_its_time_on_its_own() {
    let (mods, _releases, v2) = two_versions(json!({}), json!({}));
    let rt = start(&mods, config()).await;
    let mut events = rt.subscribe_deployments();
    // Far enough ahead that the new pool has started and the checks below have run
    // before the time comes.
    let strategy = Strategy::scheduled(
        SystemTime::now() + Duration::from_secs(3),
        Strategy::immediate(),
    );
    let Strategy::Scheduled(schedule) = &strategy else {
        unreachable!()
    };
    let at_ms = schedule.at_ms;
    rt.deploy("w", &v2, strategy.clone(), meta("scheduled"))
        .await
        .unwrap();
    let scheduled = wait_event(&mut events, Duration::from_secs(5), "the schedule", |e| {
        is(e, "2.0.0", |k| matches!(k, EventKind::Scheduled { .. }))
    })
    .await;
    assert_eq!(scheduled.kind, EventKind::Scheduled { at_ms });

    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "1.0.0");
    let rollout = status.rollout.unwrap();
    assert_eq!(
        (rollout.strategy, rollout.phase, rollout.percent),
        (
            StrategyKind::Scheduled,
            RolloutPhase::Scheduled { at_ms },
            0
        )
    );
    for i in 0..20 {
        assert_eq!(version_for(&rt, &format!("early-{i}")).await, "1.0.0");
    }
    let e = rt.advance("w").await.unwrap_err();
    match e.deploy_error() {
        Some(DeployError::TooEarly {
            at_ms: when, early, ..
        }) => {
            assert_eq!(*when, at_ms, "{e}");
            assert!(
                *early > Duration::ZERO && *early <= Duration::from_secs(3),
                "{e}"
            );
        }
        _ => panic!("advance before the time: {e}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("Z ({at_ms} ms since the epoch)")),
        "{e}"
    );
    assert_eq!(active(&rt).as_deref(), Some("1.0.0"));

    let promoted = wait_event(&mut events, Duration::from_secs(15), "the switch", |e| {
        e.version == "2.0.0"
            && matches!(
                e.kind,
                EventKind::Promoted { .. }
                    | EventKind::Failed { .. }
                    | EventKind::RolledBack { .. }
            )
    })
    .await;
    assert!(
        matches!(promoted.kind, EventKind::Promoted { .. }),
        "{promoted:?}"
    );
    assert!(
        promoted.timestamp_ms >= at_ms,
        "switched at {} ms, before its time of {at_ms} ms",
        promoted.timestamp_ms
    );
    wait_event(
        &mut events,
        Duration::from_secs(5),
        "2.0.0 succeeded",
        |e| is(e, "2.0.0", |k| matches!(k, EventKind::Succeeded)),
    )
    .await;
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "2.0.0");
    assert!(status.rollout.is_none(), "{status:?}");
    for i in 0..20 {
        assert_eq!(version_for(&rt, &format!("late-{i}")).await, "2.0.0");
    }
    let v2_info = rt
        .history("w")
        .unwrap()
        .into_iter()
        .find(|v| v.version == "2.0.0")
        .unwrap();
    assert_eq!(v2_info.strategy, Some(strategy));
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Superseded));
    rt.shutdown().await;
}

/// An immediate deployment under steady load: calls in flight on the old pool when it
/// switches (short ones, and a few long enough to outlast the switch) finish there, the
/// old pool is stopped only once they have, every call after the switch goes to the new
/// version, and no caller sees a failure.
#[tokio::test]
async fn an_immediate_switch_under_steady_load_loses_no_call() {
    const LONG_MS: u64 = 2500;
    let (mods, _releases, v2) = two_versions(json!({"instances": 2}), json!({"instances": 2}));
    let rt = start(&mods, config()).await;
    let old_pids = pids(&rt);
    let mut events = rt.subscribe_deployments();
    // A few long calls first, so that they are the only ones counted in flight.
    let long: Vec<_> = (0..4)
        .map(|i| {
            let rt = rt.clone();
            tokio::spawn(async move {
                rt.call_keyed(
                    "w",
                    "sleep",
                    args(vec![LONG_MS.into()]),
                    &format!("long-{i}"),
                    CallOptions::default(),
                )
                .await
            })
        })
        .collect();
    eventually(
        Duration::from_secs(5),
        "the long calls are in flight",
        || {
            rt.module("w")
                .unwrap()
                .instances
                .iter()
                .map(|i| i.in_flight)
                .sum::<usize>()
                >= long.len()
        },
    )
    .await;
    let load = Load::start(&rt, 8, "sleep");
    eventually(Duration::from_secs(10), "1.0.0 serves the load", || {
        load.served("1.0.0") >= 20
    })
    .await;

    rt.deploy("w", &v2, Strategy::immediate(), meta("immediate"))
        .await
        .unwrap();
    // Done before deploy returned: nothing left in progress.
    let status = rt.deployment("w").unwrap();
    assert_eq!(status.active.as_ref().unwrap(), "2.0.0");
    assert!(status.rollout.is_none(), "{status:?}");
    assert_eq!(version_for(&rt, "anyone").await, "2.0.0");
    assert!(
        long.iter().all(|t| !t.is_finished()),
        "the long calls ended before the switch: it took over {LONG_MS} ms"
    );
    wait_event(
        &mut events,
        Duration::from_secs(5),
        "2.0.0 succeeded",
        |e| is(e, "2.0.0", |k| matches!(k, EventKind::Succeeded)),
    )
    .await;
    let released = wait_event(
        &mut events,
        Duration::from_secs(15),
        "1.0.0 released",
        |e| is(e, "1.0.0", |k| matches!(k, EventKind::Released { .. })),
    )
    .await;
    assert!(
        matches!(released.kind, EventKind::Released { drained: true }),
        "{released:?}"
    );
    // The old pool was let go only once its long calls were answered, by it.
    for t in long {
        let r = t.await.unwrap().expect("a long call across the switch");
        assert_eq!(r.version, "1.0.0");
    }
    for pid in old_pids {
        eventually(Duration::from_secs(5), "an old worker stopped", || {
            !alive(pid)
        })
        .await;
    }
    // The old pool has drained: what it served is final, while the new one goes on.
    let v2_then = load.served("2.0.0");
    eventually(Duration::from_secs(10), "2.0.0 serves the load", || {
        load.served("2.0.0") >= v2_then + 100
    })
    .await;
    let v1_served = load.served("1.0.0");
    eventually(Duration::from_secs(10), "2.0.0 serves more", || {
        load.served("2.0.0") >= v2_then + 200
    })
    .await;
    let stats = load.stop().await;
    assert_none_lost(&stats);
    assert_eq!(
        stats.by_version.get("1.0.0").copied(),
        Some(v1_served),
        "1.0.0 answered calls after it was released: {:?}",
        stats.by_version
    );
    assert_eq!(state_of(&rt, "1.0.0"), Some(VersionState::Superseded));
    assert_eq!(state_of(&rt, "2.0.0"), Some(VersionState::Active));
    rt.shutdown().await;
}
