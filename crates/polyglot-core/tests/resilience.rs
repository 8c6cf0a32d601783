//! Resilience policies with real worker processes: retries of idempotent methods (after a
//! crash, a hung attempt, a restart), never of a method's own error or of a method not
//! marked idempotent, within a budget; the circuit breaker (opening, sending calls to the
//! fallback, half-open probes, closing); and policies reloaded without new workers.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polyglot_core::{
    BreakerState, CallError, CallOptions, EventKind, InstanceState, Runtime, RuntimeConfig, Value,
};
use serde_json::json;
use support::{args, eventually, merge, python, repo, Modules};

/// A Python worker whose methods misbehave on demand, counting each call that reaches
/// it in a file of its module folder (its working directory), so that counts survive
/// its crashes.
const WORKER: &str = r#"
import os, time
from polyglot_worker import MethodError, Worker

worker = Worker(os.environ["POLYGLOT_MODULE"])

def bump(key):
    path = f"count-{key}"
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(n))
    return n

@worker.method
def flaky(crashes: int, key: str) -> str:
    n = bump(key)
    if n <= crashes:
        os._exit(1)
    return f"ok after {n}"

@worker.method("unmarked")
def unmarked(crashes: int, key: str) -> str:
    return flaky(crashes, key)

@worker.method
def refuse(key: str) -> None:
    bump(key)
    raise MethodError("REFUSED", "no, and asking again will not help")

@worker.method
async def hang_once(key: str) -> str:
    import asyncio
    if bump(key) == 1:
        await asyncio.sleep(30)
    return "answered"

@worker.method
async def hang(key: str) -> str:
    import asyncio
    bump(key)
    await asyncio.sleep(30)
    return "never"

@worker.method
async def sleep(ms: int) -> int:
    import asyncio
    await asyncio.sleep(ms / 1000)
    return ms

@worker.method
async def maybe(key: str) -> str:
    import asyncio
    bump(key)
    if os.path.exists("broken"):
        await asyncio.sleep(30)
    return "primary"

@worker.method
def pid() -> int:
    return os.getpid()

if __name__ == "__main__":
    worker.serve()
"#;

const FALLBACK: &str = r#"
import os
from polyglot_worker import Worker

worker = Worker(os.environ["POLYGLOT_MODULE"])

@worker.method
def maybe(key: str) -> str:
    return "fallback"

if __name__ == "__main__":
    worker.serve()
"#;

/// Writes module `name` served by `source`, with `extra` merged into its manifest.
fn add(mods: &Modules, name: &str, source: &str, extra: serde_json::Value) -> PathBuf {
    let dir = mods.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("worker.py"), source).unwrap();
    write_manifest(&dir, name, extra);
    dir
}

fn write_manifest(dir: &Path, name: &str, extra: serde_json::Value) {
    let mut m = json!({
        "name": name,
        "version": "1.0.0",
        "language": "python",
        "command": python(),
        "args": ["worker.py"],
        "env": {"PYTHONPATH": repo().join("python").display().to_string(), "PYTHONUNBUFFERED": "1"},
        "timeoutMs": 5000,
        "handshakeTimeoutMs": 10000,
        "healthCheck": {"intervalMs": 200, "timeoutMs": 1000},
        "restart": {"maxRestarts": 100, "windowMs": 60000, "backoffInitialMs": 10, "backoffMaxMs": 50},
        "shutdownGraceMs": 1000,
    });
    merge(&mut m, extra);
    std::fs::write(
        dir.join("module.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn count(dir: &Path, key: &str) -> u32 {
    std::fs::read_to_string(dir.join(format!("count-{key}")))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

fn s(v: &str) -> Value {
    Value::from(v)
}

async fn start(mods: &Modules) -> Runtime {
    let rt = Runtime::new(RuntimeConfig {
        drain_timeout: Duration::from_secs(5),
    });
    let report = rt.load_dir(mods.dir()).await;
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    rt
}

#[tokio::test]
async fn an_idempotent_method_is_retried_after_a_crash_and_an_unmarked_one_is_not() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "r",
        WORKER,
        json!({"instances": 3, "idempotent": ["flaky", "refuse", "hang_once"],
               "retry": {"maxAttempts": 3, "backoffInitialMs": 5, "backoffMaxMs": 20}}),
    );
    let rt = start(&mods).await;
    let all_up = || async {
        eventually(Duration::from_secs(20), "every worker is up", || {
            rt.module("r")
                .unwrap()
                .instances
                .iter()
                .all(|i| i.state == InstanceState::Healthy)
        })
        .await
    };

    // Two crashes, then an answer: the third attempt, on the third worker, serves.
    let r = rt
        .call("r", "flaky", args(vec![2.into(), s("a")]))
        .await
        .unwrap();
    assert_eq!(r.value, s("ok after 3"));
    assert_eq!(count(&dir, "a"), 3);

    // Five crashes are more than three attempts: the call fails with the last one's
    // error, after exactly three attempts.
    all_up().await;
    match rt.call("r", "flaky", args(vec![5.into(), s("b")])).await {
        Err(CallError::WorkerExited { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&dir, "b"), 3);

    // The same code under a method name not marked idempotent: one attempt.
    all_up().await;
    match rt.call("r", "unmarked", args(vec![1.into(), s("c")])).await {
        Err(CallError::WorkerExited { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&dir, "c"), 1);

    // A method's own error is an answer: never retried, even for an idempotent method.
    match rt.call("r", "refuse", args(vec![s("d")])).await {
        Err(CallError::Remote { code, .. }) => assert_eq!(code, "REFUSED"),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&dir, "d"), 1);

    // The caller can turn retries off for one call.
    all_up().await;
    let opts = CallOptions {
        max_attempts: Some(1),
        ..CallOptions::default()
    };
    match rt
        .call_with("r", "flaky", args(vec![1.into(), s("e")]), opts)
        .await
    {
        Err(CallError::WorkerExited { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&dir, "e"), 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_retry_waits_for_a_restarting_worker_when_there_is_no_fallback() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "r",
        WORKER,
        json!({"instances": 1, "idempotent": ["flaky"],
               "retry": {"maxAttempts": 10, "backoffInitialMs": 100, "backoffMaxMs": 1000}}),
    );
    let rt = start(&mods).await;
    // The only worker crashes; the retries find it restarting (unavailable), back off,
    // and reach the new process. (Ten attempts wait about 3 s in all, at random: a
    // Python worker starts in well under that, even on a loaded machine.)
    let r = rt
        .call("r", "flaky", args(vec![1.into(), s("a")]))
        .await
        .unwrap();
    assert_eq!(r.value, s("ok after 2"));
    assert_eq!(count(&dir, "a"), 2);
    rt.shutdown().await;
}

#[tokio::test]
async fn an_attempt_timeout_retries_a_hung_attempt_within_the_call_deadline() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "r",
        WORKER,
        json!({"instances": 1, "timeoutMs": 5000, "idempotent": ["hang_once"],
               "retry": {"attemptTimeoutMs": 300, "backoffInitialMs": 5}}),
    );
    let rt = start(&mods).await;
    let started = Instant::now();
    let r = rt.call("r", "hang_once", args(vec![s("a")])).await.unwrap();
    assert_eq!(r.value, s("answered"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the hung attempt was cut at 300 ms, not at the call's 5 s: {:?}",
        started.elapsed()
    );
    assert_eq!(count(&dir, "a"), 2);
    rt.shutdown().await;
}

#[tokio::test]
async fn the_retry_budget_bounds_retries_when_everything_fails() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "r",
        WORKER,
        json!({"idempotent": ["hang"], "breaker": {"enabled": false},
               "retry": {"maxAttempts": 3, "attemptTimeoutMs": 100, "backoffInitialMs": 1,
                         "backoffMaxMs": 5, "budgetRatio": 0.0, "minRetriesPerSecond": 1}}),
    );
    let rt = start(&mods).await;
    // Every attempt times out. Without a budget, 12 calls would make 36 attempts; the
    // budget (no share of calls, one retry a second over ten seconds) allows 10 retries.
    for _ in 0..12 {
        let r = rt.call("r", "hang", args(vec![s("a")])).await;
        assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    }
    assert_eq!(count(&dir, "a"), 12 + 10);
    rt.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_sends_calls_to_the_fallback_and_a_probe_closes_it() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "b",
        WORKER,
        json!({"instances": 1, "timeoutMs": 300, "fallback": "fb",
               "breaker": {"consecutiveFailures": 3, "cooldownMs": 700}}),
    );
    add(&mods, "fb", FALLBACK, json!({}));
    let rt = start(&mods).await;
    let mut events = rt.subscribe();
    assert_eq!(
        rt.call("b", "maybe", args(vec![s("a")]))
            .await
            .unwrap()
            .value,
        s("primary")
    );

    std::fs::write(dir.join("broken"), "").unwrap();
    for i in 0..3 {
        match rt.call("b", "maybe", args(vec![s("a")])).await {
            Err(CallError::Timeout { .. }) => {}
            other => panic!("call {i}: {other:?}"),
        }
    }
    let status = rt.module("b").unwrap();
    assert_eq!(status.breaker.state, BreakerState::Open);
    assert_eq!(
        status.breaker.reason.as_deref(),
        Some("3 calls in a row timed out")
    );
    // Open: the primary is skipped at once, and the fallback serves.
    let reached = count(&dir, "a");
    let started = Instant::now();
    let r = rt.call("b", "maybe", args(vec![s("a")])).await.unwrap();
    assert_eq!((r.value, r.fallback), (s("fallback"), true));
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(
        count(&dir, "a"),
        reached,
        "the open breaker sent nothing to b"
    );

    // Repaired: after the cool-down the next call is a probe; it reaches the primary
    // and closes the breaker.
    std::fs::remove_file(dir.join("broken")).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = rt.call("b", "maybe", args(vec![s("a")])).await.unwrap();
    assert_eq!((r.value, r.fallback), (s("primary"), false));
    assert_eq!(rt.module("b").unwrap().breaker.state, BreakerState::Closed);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::BreakerChanged { from, to, .. } = e.kind {
            seen.push((from, to));
        }
    }
    assert_eq!(
        seen,
        [
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_breaker_that_opens_between_attempts_sends_the_retry_to_the_fallback() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "b",
        WORKER,
        json!({"instances": 1, "timeoutMs": 5000, "fallback": "fb", "idempotent": ["maybe"],
               "retry": {"maxAttempts": 3, "attemptTimeoutMs": 200, "backoffInitialMs": 5},
               "breaker": {"consecutiveFailures": 1, "cooldownMs": 60000}}),
    );
    add(&mods, "fb", FALLBACK, json!({}));
    let rt = start(&mods).await;
    std::fs::write(dir.join("broken"), "").unwrap();
    // The first attempt times out and opens the breaker; the retry finds it open and the
    // fallback answers, rather than the caller getting the first attempt's timeout.
    let started = Instant::now();
    let r = rt.call("b", "maybe", args(vec![s("a")])).await.unwrap();
    assert_eq!((r.value, r.fallback), (s("fallback"), true));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(count(&dir, "a"), 1, "the open breaker sent no retry to b");
    assert_eq!(rt.module("b").unwrap().breaker.state, BreakerState::Open);
    rt.shutdown().await;
}

#[tokio::test]
async fn with_no_fallback_an_open_breaker_is_an_unavailable_error_that_says_so() {
    let mods = Modules::new();
    let dir = add(
        &mods,
        "b",
        WORKER,
        json!({"timeoutMs": 200, "breaker": {"consecutiveFailures": 2, "cooldownMs": 60000}}),
    );
    let rt = start(&mods).await;
    std::fs::write(dir.join("broken"), "").unwrap();
    for _ in 0..2 {
        let r = rt.call("b", "maybe", args(vec![s("a")])).await;
        assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    }
    match rt.call("b", "maybe", args(vec![s("a")])).await {
        Err(e @ CallError::Unavailable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("b has its circuit breaker open (2 calls in a row timed out)"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A method's own errors never open it, nor do crashes.
    std::fs::remove_file(dir.join("broken")).unwrap();
    rt.shutdown().await;
    let mods = Modules::new();
    let dir = add(
        &mods,
        "b",
        WORKER,
        json!({"breaker": {"consecutiveFailures": 1}}),
    );
    let rt = start(&mods).await;
    for _ in 0..5 {
        let r = rt.call("b", "refuse", args(vec![s("x")])).await;
        assert!(matches!(r, Err(CallError::Remote { .. })), "{r:?}");
    }
    assert_eq!(count(&dir, "x"), 5);
    // Nor do crashes: the supervisor restarts the worker.
    for i in 0..3 {
        eventually(Duration::from_secs(20), "the worker is up", || {
            rt.module("b").unwrap().instances[0].state == InstanceState::Healthy
        })
        .await;
        let r = rt
            .call("b", "unmarked", args(vec![1.into(), s(&format!("c{i}"))]))
            .await;
        assert!(matches!(r, Err(CallError::WorkerExited { .. })), "{r:?}");
    }
    assert_eq!(rt.module("b").unwrap().breaker.state, BreakerState::Closed);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_reload_that_changes_only_policies_keeps_the_workers() {
    let mods = Modules::new();
    let dir = add(&mods, "p", WORKER, json!({"timeoutMs": 5000}));
    let rt = start(&mods).await;
    let pid = rt.call("p", "pid", args(vec![])).await.unwrap().value;
    assert_eq!(
        rt.call("p", "sleep", args(vec![600.into()]))
            .await
            .unwrap()
            .value,
        Value::from(600)
    );
    let mut events = rt.subscribe();

    write_manifest(&dir, "p", json!({"timeoutMs": 200}));
    let report = rt.reload("p").await.unwrap();
    assert!(report.policies_only, "{report:?}");
    assert_eq!(rt.call("p", "pid", args(vec![])).await.unwrap().value, pid);
    match rt.call("p", "sleep", args(vec![600.into()])).await {
        Err(CallError::Timeout { timeout, .. }) => {
            assert_eq!(timeout, Duration::from_millis(200))
        }
        other => panic!("the new timeout applies: {other:?}"),
    }
    let e = events.try_recv().unwrap();
    assert!(matches!(e.kind, EventKind::PoliciesUpdated { .. }), "{e:?}");

    // The code changed too: new workers.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(dir.join("worker.py"), format!("{WORKER}\n# changed\n")).unwrap();
    write_manifest(&dir, "p", json!({"timeoutMs": 5000}));
    let report = rt.reload("p").await.unwrap();
    assert!(!report.policies_only, "{report:?}");
    assert_ne!(rt.call("p", "pid", args(vec![])).await.unwrap().value, pid);
    rt.shutdown().await;
}
