//! TypeScript workers and fallbacks, with real Node processes: a `"language":
//! "typescript"` module compiled once and served in both codecs; a `.ts` fallback file
//! serving while its primary is missing, killed or unhealthy; a fallback that does not
//! compile reported with its file, line and column while the primary serves; and a chain
//! of fallbacks that says who served and, when it runs out, every cause.

mod support;

use std::path::Path;
use std::time::Duration;

use polyglot_core::{CallError, CallOptions, LoadError, Runtime, RuntimeConfig, Value};
use serde_json::json;
use support::{add_typescript_worker, args, eventually, Lang, Modules};

/// The settings of a quick test module: short deadlines, fast restarts.
fn common(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "version": "1.0.0",
        "timeoutMs": 5000,
        "handshakeTimeoutMs": 5000,
        "healthCheck": {"intervalMs": 200, "timeoutMs": 1000},
        "restart": {"maxRestarts": 50, "windowMs": 60000, "backoffInitialMs": 20, "backoffMaxMs": 200},
        "shutdownGraceMs": 2000,
    })
}

/// A module folder `name` whose worker is the TypeScript test worker, `worker.ts`.
fn add_typescript_module(mods: &Modules, name: &str, extra: serde_json::Value) {
    let mut m = common(name);
    support::merge(
        &mut m,
        json!({"language": "typescript", "path": "worker.ts"}),
    );
    support::merge(&mut m, extra);
    let dir = mods.add_raw(name, &serde_json::to_string_pretty(&m).unwrap());
    add_typescript_worker(&dir, "worker.ts");
}

/// The compiled entries in a module folder's cache.
fn cache_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join(".polyglot/ts-cache"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn a_typescript_module_is_compiled_once_and_serves_in_both_codecs() {
    for codec in ["json", "msgpack"] {
        let mods = Modules::new();
        add_typescript_module(&mods, "ts", json!({"codec": codec, "instances": 2}));
        let rt = mods.start().await;
        let what = format!("typescript, {codec}");
        let r = rt
            .call("ts", "add", args(vec![2.into(), 40.into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(42), "{what}");
        assert_eq!((r.served_by.as_str(), r.fallback), ("ts", false), "{what}");
        let status = rt.module("ts").unwrap();
        assert_eq!(status.language, "typescript");
        // Binary, nested values, floats that are whole, 64-bit integers, both ways.
        let nested = Value::from(json!({"list": [1, -2, 1.5, 2.0, null, "é"], "big": u64::MAX}));
        let blob = Value::Bytes((0..=255).collect());
        for v in [nested, blob] {
            let r = rt.call("ts", "echo", args(vec![v.clone()])).await.unwrap();
            assert_eq!(r.value, v, "{what}");
        }
        match rt
            .call("ts", "fail", args(vec!["NOT_READY".into(), "later".into()]))
            .await
        {
            Err(CallError::Remote { code, message, .. }) => {
                assert_eq!((code.as_str(), message.as_str()), ("NOT_READY", "later"))
            }
            other => panic!("{what}: {other:?}"),
        }
        match rt.call("ts", "boom", args(vec![])).await {
            Err(CallError::Remote { code, message, .. }) => {
                assert_eq!(code, "INTERNAL");
                assert!(message.contains("boom"), "{message}");
            }
            other => panic!("{what}: {other:?}"),
        }
        // Progress, then the result.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = CallOptions {
            progress: Some(tx),
            ..Default::default()
        };
        let r = rt
            .call_with("ts", "progress", args(vec![3.into()]), opts)
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(3));
        let mut steps = Vec::new();
        while let Ok(p) = rx.try_recv() {
            steps.push(p.get("step").and_then(Value::as_u64).unwrap());
        }
        assert_eq!(steps, [1, 2, 3], "{what}");
        // A deadline cancels the call in the worker, through its AbortSignal.
        let marker = mods.dir().join("cancelled");
        let opts = CallOptions {
            timeout: Some(Duration::from_millis(200)),
            ..Default::default()
        };
        let sleep = args(vec![
            10_000.into(),
            Value::from(marker.display().to_string()),
        ]);
        match rt.call_with("ts", "sleep", sleep, opts).await {
            Err(CallError::Timeout { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
        eventually(Duration::from_secs(5), "the worker saw $cancel", || {
            marker.exists()
        })
        .await;
        // Many calls in flight on its workers, each with its own answer.
        let calls: Vec<_> = (0..200i64)
            .map(|i| {
                let rt = rt.clone();
                tokio::spawn(
                    async move { rt.call("ts", "add", args(vec![i.into(), 1.into()])).await },
                )
            })
            .collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.await.unwrap().unwrap().value, Value::from(i as i64 + 1));
        }
        rt.shutdown().await;
        // Compiled once: a second start finds it in the cache.
        let dir = mods.dir().join("ts");
        let first = cache_entries(&dir);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(dir
            .join(".polyglot/ts-cache")
            .join(&first[0])
            .join("out/worker.js")
            .is_file());
        let stamp = std::fs::metadata(dir.join(".polyglot/ts-cache").join(&first[0]))
            .unwrap()
            .modified()
            .unwrap();
        let rt = mods.start().await;
        assert_eq!(
            rt.call("ts", "echo", args(vec![1.into()]))
                .await
                .unwrap()
                .value,
            Value::from(1)
        );
        rt.shutdown().await;
        assert_eq!(cache_entries(&dir), first);
        assert_eq!(
            std::fs::metadata(dir.join(".polyglot/ts-cache").join(&first[0]))
                .unwrap()
                .modified()
                .unwrap(),
            stamp
        );
        // A changed source is compiled again, and replaces the old entry.
        let src = dir.join("worker.ts");
        let text = std::fs::read_to_string(&src).unwrap();
        std::fs::write(
            &src,
            format!("{text}\nexport function added(): string {{ return \"new\"; }}\n"),
        )
        .unwrap();
        let rt = mods.start().await;
        assert_eq!(
            rt.call("ts", "added", args(vec![])).await.unwrap().value,
            Value::from("new")
        );
        rt.shutdown().await;
        let second = cache_entries(&dir);
        assert_eq!(second.len(), 1);
        assert_ne!(second, first);
    }
}

#[tokio::test]
async fn a_typescript_module_serves_over_the_socket_transport() {
    for codec in ["json", "msgpack"] {
        let mods = Modules::new();
        add_typescript_module(&mods, "ts", json!({"codec": codec, "transport": "socket"}));
        let rt = mods.start().await;
        let r = rt
            .call("ts", "add", args(vec![1.into(), 2.into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(3), "{codec}");
        // Stdout is the worker's own with a socket: its prints break nothing.
        let r = rt.call("ts", "stray", args(vec![])).await.unwrap();
        assert_eq!(r.value, Value::from("printed"));
        let r = rt
            .call("ts", "echo", args(vec!["after".into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from("after"));
        rt.shutdown().await;
    }
}

/// A Rust primary `p` with the TypeScript test worker as its fallback file
/// `fallback/worker.ts`.
fn primary_with_typescript_fallback(
    mods: &Modules,
    extra: serde_json::Value,
) -> std::path::PathBuf {
    let mut m = json!({"instances": 1, "fallback": "./fallback/worker.ts",
                       "env": {"TEST_TS_HEALTH_FILE": ""}});
    support::merge(&mut m, extra);
    let dir = mods.add("p", Lang::Rust, m);
    add_typescript_worker(&dir, "fallback/worker.ts");
    dir
}

const FALLBACK: &str = "p (fallback fallback/worker.ts)";

#[tokio::test]
async fn the_typescript_fallback_serves_while_the_primary_is_missing() {
    let mods = Modules::new();
    primary_with_typescript_fallback(&mods, json!({"command": "bin/no-such-worker"}));
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    assert_eq!(report.ready, [FALLBACK], "{:#?}", report.errors);
    for i in 0..20i64 {
        let r = rt
            .call("p", "add", args(vec![i.into(), 1.into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(i + 1));
        assert_eq!((r.served_by.as_str(), r.fallback), (FALLBACK, true));
    }
    rt.shutdown().await;
}

#[allow(unsafe_code)]
fn kill9(pid: u32) {
    // SAFETY: kill takes plain integers and touches no memory.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

#[tokio::test]
async fn the_typescript_fallback_serves_while_the_primary_is_killed_then_the_primary_is_back() {
    let mods = Modules::new();
    // A restart waits a second: time to see the fallback serve.
    primary_with_typescript_fallback(
        &mods,
        json!({"restart": {"backoffInitialMs": 1000, "backoffMaxMs": 1000}}),
    );
    let rt = mods.start().await;
    let pid = rt.call("p", "pid", args(vec![])).await.unwrap();
    assert_eq!(pid.served_by, "p");
    kill9(pid.value.as_u64().unwrap() as u32);
    let r = served_by(&rt, FALLBACK).await;
    assert!(r.fallback);
    // Once restarted, the primary serves again.
    let r = served_by(&rt, "p").await;
    assert!(!r.fallback);
    rt.shutdown().await;
}

/// Calls `p.echo` until `who` serves it, within ten seconds; a call on a worker that died
/// under it may fail meanwhile.
async fn served_by(rt: &Runtime, who: &str) -> polyglot_core::Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match rt.call("p", "echo", args(vec![1.into()])).await {
            Ok(r) if r.served_by == who => return r,
            Ok(_) | Err(CallError::WorkerExited { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never served by {who}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_typescript_fallback_serves_while_the_primary_is_unhealthy() {
    let mods = Modules::new();
    let flag = mods.dir().join("unhealthy");
    primary_with_typescript_fallback(
        &mods,
        json!({"env": {"TEST_HEALTH_FILE": flag.display().to_string()},
               "healthCheck": {"intervalMs": 50, "unhealthyThreshold": 1000}}),
    );
    let rt = mods.start().await;
    assert_eq!(
        rt.call("p", "echo", args(vec![1.into()]))
            .await
            .unwrap()
            .served_by,
        "p"
    );
    std::fs::write(&flag, "").unwrap();
    let r = served_by(&rt, FALLBACK).await;
    assert!(r.fallback);
    std::fs::remove_file(&flag).unwrap();
    let r = served_by(&rt, "p").await;
    assert!(!r.fallback);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_fallback_that_does_not_compile_is_reported_with_file_and_line_and_the_primary_serves() {
    let mods = Modules::new();
    let dir = mods.add("p", Lang::Rust, json!({"fallback": "./fallback/broken.ts"}));
    std::fs::create_dir_all(dir.join("fallback")).unwrap();
    support::typescript_sdk();
    std::fs::write(
        dir.join("fallback/broken.ts"),
        "export function echo(params: unknown): unknown {\n  return params;\n}\nconst n: number = \"not a number\";\n",
    )
    .unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    assert_eq!(report.ready, ["p"]);
    let [LoadError::NotReady { module, message }] = &report.errors[..] else {
        panic!("{:#?}", report.errors);
    };
    assert_eq!(module, "p (fallback fallback/broken.ts)");
    assert!(
        message.contains("fallback/broken.ts:4:7: error TS2322"),
        "{message}"
    );
    assert!(
        message.contains("not assignable to type 'number'"),
        "{message}"
    );
    // The primary keeps serving.
    let r = rt.call("p", "echo", args(vec![1.into()])).await.unwrap();
    assert_eq!((r.served_by.as_str(), r.fallback), ("p", false));
    rt.shutdown().await;
}

#[tokio::test]
async fn a_typescript_module_that_does_not_compile_is_a_failed_build_and_its_fallback_serves() {
    let mods = Modules::new();
    mods.add("q", Lang::Rust, json!({}));
    add_typescript_module(&mods, "ts", json!({"fallback": "q"}));
    let src = mods.dir().join("ts/worker.ts");
    let text = std::fs::read_to_string(&src).unwrap();
    std::fs::write(&src, format!("{text}\nexport const oops: string = 42;\n")).unwrap();
    let line = text.lines().count() + 2;
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    let [LoadError::Build(e)] = &report.errors[..] else {
        panic!("{:#?}", report.errors);
    };
    assert_eq!(e.module, "ts");
    let want = format!("worker.ts:{line}:14: error TS2322");
    assert!(e.reason.contains(&want), "{want} in {}", e.reason);
    let r = rt.call("ts", "echo", args(vec![1.into()])).await.unwrap();
    assert_eq!((r.served_by.as_str(), r.fallback), ("q", true));
    rt.shutdown().await;
}

#[tokio::test]
async fn a_chain_with_a_typescript_fallback_says_who_served_and_every_cause() {
    let mods = Modules::new();
    // p cannot start; its chain is its TypeScript file, then module q (Rust). The
    // TypeScript file answers NOT_SUPPORTED for `echo`, which sends it on to q.
    primary_with_typescript_fallback(
        &mods,
        json!({"command": "bin/no-such-worker",
               "fallback": ["./fallback/worker.ts", "q"],
               "env": {"TEST_NOT_SUPPORTED": "echo"}}),
    );
    mods.add("q", Lang::Rust, json!({}));
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    let mut ready = report.ready.clone();
    ready.sort();
    assert_eq!(ready, [FALLBACK, "q"], "{:#?}", report.errors);
    let r = rt
        .call("p", "add", args(vec![1.into(), 2.into()]))
        .await
        .unwrap();
    assert_eq!((r.served_by.as_str(), r.fallback), (FALLBACK, true));
    let r = rt.call("p", "echo", args(vec!["on".into()])).await.unwrap();
    assert_eq!(r.value, Value::from("on"));
    assert_eq!((r.served_by.as_str(), r.fallback), ("q", true));
    // A method the TypeScript file does not support and q does not offer: every
    // implementation says why.
    match rt.call("p", "unsupported", args(vec![])).await {
        Err(CallError::Unavailable { causes, .. }) => {
            let names: Vec<&str> = causes.iter().map(|c| c.implementation.as_str()).collect();
            assert_eq!(names, ["p", FALLBACK, "q"], "{causes:?}");
            assert!(
                causes[1]
                    .reason
                    .contains("does not support method \"unsupported\""),
                "{}",
                causes[1]
            );
            assert!(causes[2].reason.contains("does not offer"), "{}", causes[2]);
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}
