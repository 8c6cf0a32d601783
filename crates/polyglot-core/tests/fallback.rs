//! Fallback: when a module is unavailable, its calls go to the next implementation in its
//! chain, the reply says which one served, and when every one fails the error carries
//! every cause.

mod support;

use std::time::Duration;

use polyglot_core::{CallError, InstanceState, Runtime, RuntimeConfig, Value};
use serde_json::json;
use support::{args, eventually, Lang, Modules};

/// A primary in one language that cannot start, with a fallback in the other: both ways.
#[tokio::test]
async fn an_unavailable_primary_falls_back_to_another_language_both_ways() {
    for (primary, fallback) in [(Lang::Rust, Lang::Python), (Lang::Python, Lang::Rust)] {
        let mods = Modules::new();
        mods.add(
            "primary",
            primary,
            json!({"fallback": "backup", "handshakeTimeoutMs": 3000,
                   "env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}}),
        );
        mods.add("backup", fallback, json!({}));
        let rt = Runtime::new(RuntimeConfig::default());
        let report = rt.load_dir(mods.dir()).await;
        assert_eq!(
            report.errors.len(),
            1,
            "only the primary fails: {:?}",
            report.errors
        );
        let r = rt
            .call("primary", "add", args(vec![1.into(), 2.into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(3));
        assert_eq!(
            (r.served_by.as_str(), r.fallback),
            ("backup", true),
            "{primary:?} -> {fallback:?}"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn when_every_implementation_fails_the_error_has_every_cause() {
    let mods = Modules::new();
    let fail = json!({"env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}});
    let mut a = fail.clone();
    support::merge(&mut a, json!({"fallback": "b"}));
    mods.add("a", Lang::Rust, a);
    mods.add("b", Lang::Python, fail);
    let rt = Runtime::new(RuntimeConfig::default());
    let _ = rt.load_dir(mods.dir()).await;
    match rt.call("a", "echo", args(vec![1.into()])).await {
        Err(CallError::Unavailable { module, causes, .. }) => {
            assert_eq!(module, "a");
            let names: Vec<&str> = causes.iter().map(|c| c.implementation.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
            for c in &causes {
                assert!(
                    c.reason.contains("exit status 1") || c.reason.contains("failed"),
                    "{c}"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn a_fallback_that_fails_the_call_reports_both_causes() {
    let mods = Modules::new();
    mods.add(
        "a",
        Lang::Rust,
        json!({"fallback": "b", "env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}}),
    );
    mods.add("b", Lang::Python, json!({}));
    let rt = Runtime::new(RuntimeConfig::default());
    let _ = rt.load_dir(mods.dir()).await;
    match rt
        .call("a", "fail", args(vec!["BAD".into(), "no".into()]))
        .await
    {
        Err(e @ CallError::FallbackFailed { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("exit status 1"),
                "the primary's cause: {text}"
            );
            assert!(text.contains("BAD: no"), "the fallback's error: {text}");
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn cycles_in_fallback_chains_end() {
    let mods = Modules::new();
    let fail = json!({"env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}});
    for (name, next) in [("a", "b"), ("b", "a")] {
        let mut m = fail.clone();
        support::merge(&mut m, json!({"fallback": next}));
        mods.add(name, Lang::Rust, m);
    }
    let rt = Runtime::new(RuntimeConfig::default());
    let _ = rt.load_dir(mods.dir()).await;
    match rt.call("a", "echo", args(vec![])).await {
        Err(CallError::Unavailable { causes, .. }) => assert_eq!(causes.len(), 2),
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn a_fallback_file_inside_the_module_folder_serves() {
    let mods = Modules::new();
    let dir = mods.add(
        "native",
        Lang::Rust,
        json!({"fallback": "./fallback/worker.py", "env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}}),
    );
    std::fs::create_dir_all(dir.join("fallback")).unwrap();
    std::fs::copy(
        support::repo().join("tests/workers/python_worker.py"),
        dir.join("fallback/worker.py"),
    )
    .unwrap();
    // The fallback file runs with the same env (minus the crash switch, which only the
    // Rust test worker honours at start: the Python one is told by the manifest's env too,
    // so give the file its own copy that ignores it).
    let text = std::fs::read_to_string(dir.join("module.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["env"]["PYTHONPATH"] = json!(support::repo().join("python").display().to_string());
    m["env"]
        .as_object_mut()
        .unwrap()
        .remove("TEST_EXIT_AT_START");
    m["command"] = json!("/nonexistent/native-worker");
    std::fs::write(dir.join("module.json"), serde_json::to_string(&m).unwrap()).unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let _ = rt.load_dir(mods.dir()).await;
    let r = rt
        .call("native", "add", args(vec![20.into(), 22.into()]))
        .await
        .unwrap();
    assert_eq!(r.value, Value::from(42));
    assert_eq!(r.served_by, "native (fallback fallback/worker.py)");
    assert!(r.fallback);
    rt.shutdown().await;
}

#[tokio::test]
async fn calls_fall_back_while_the_primary_restarts_and_return_after() {
    let mods = Modules::new();
    mods.add(
        "primary",
        Lang::Rust,
        json!({"instances": 1, "fallback": "backup",
               "restart": {"maxRestarts": 10, "windowMs": 60000, "backoffInitialMs": 1500, "backoffMaxMs": 1500}}),
    );
    mods.add("backup", Lang::Python, json!({}));
    let rt = mods.start().await;
    assert!(
        !rt.call("primary", "echo", args(vec![1.into()]))
            .await
            .unwrap()
            .fallback
    );
    let _ = rt.call("primary", "crash", args(vec![])).await;
    // During the back-off the primary is restarting: the fallback serves.
    let r = rt
        .call("primary", "echo", args(vec![2.into()]))
        .await
        .unwrap();
    assert_eq!(
        (r.served_by.as_str(), r.fallback, r.value),
        ("backup", true, Value::from(2))
    );
    eventually(Duration::from_secs(10), "the primary is back", || {
        rt.module("primary").unwrap().instances[0].state == InstanceState::Healthy
    })
    .await;
    let r = rt
        .call("primary", "echo", args(vec![3.into()]))
        .await
        .unwrap();
    assert_eq!((r.served_by.as_str(), r.fallback), ("primary", false));
    rt.shutdown().await;
}

/// A call that was sent and whose worker then died is not run again on the fallback: it
/// may have had side effects. Only calls never sent fall back.
#[tokio::test]
async fn a_call_that_crashed_its_worker_is_not_run_again_elsewhere() {
    let mods = Modules::new();
    mods.add(
        "primary",
        Lang::Rust,
        json!({"instances": 1, "fallback": "backup"}),
    );
    mods.add("backup", Lang::Python, json!({}));
    let rt = mods.start().await;
    match rt.call("primary", "crash", args(vec![5.into()])).await {
        Err(e @ CallError::WorkerExited { .. }) => {
            assert!(e.to_string().contains("exit status 5"), "{e}")
        }
        other => panic!("the crash must reach the caller, not be retried: {other:?}"),
    }
    // The fallback's worker never saw it: it is still the first process, never crashed.
    assert_eq!(rt.module("backup").unwrap().restarts, 0);
    rt.shutdown().await;
}
