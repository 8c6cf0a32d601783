//! Loading, reloading without downtime, and graceful shutdown, with real workers.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyglot_core::{CallError, LoadError, Runtime, RuntimeConfig, Value};
use serde_json::json;
use support::{alive, args, Lang, Modules, LANGUAGES};

/// Zero failed calls while a module is reloaded to a new version under steady load.
#[tokio::test]
async fn reload_under_steady_load_loses_no_call() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        let dir = mods.add("w", lang, json!({"instances": 2}));
        let rt = mods.start().await;
        let old_pids: Vec<u32> = rt
            .module("w")
            .unwrap()
            .instances
            .iter()
            .filter_map(|i| i.pid)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let load: Vec<_> = (0..8)
            .map(|_| {
                let (rt, stop, ok, failed) = (rt.clone(), stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        // Some calls are in flight across the switch.
                        match rt.call("w", "sleep", args(vec![20.into()])).await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                failed.lock().unwrap().push(e.to_string());
                                0
                            }
                        };
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read_to_string(dir.join("module.json")).unwrap();
        std::fs::write(
            dir.join("module.json"),
            text.replace("\"1.0.0\"", "\"2.0.0\""),
        )
        .unwrap();
        let report = rt.reload("w").await.unwrap();
        assert_eq!(
            (report.old_version.as_str(), report.new_version.as_str()),
            ("1.0.0", "2.0.0")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for l in load {
            l.await.unwrap();
        }
        let failed = std::mem::take(&mut *failed.lock().unwrap());
        assert!(
            failed.is_empty(),
            "{lang:?}: {} calls failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(ok.load(Ordering::Relaxed) > 50, "{lang:?}: the load ran");
        let r = rt.call("w", "version", args(vec![])).await.unwrap();
        assert_eq!(
            (r.value, r.version),
            (Value::from("2.0.0"), "2.0.0".to_owned())
        );
        for pid in old_pids {
            assert!(!alive(pid), "{lang:?}: old worker {pid} was stopped");
        }
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn a_reload_that_fails_leaves_the_old_version_serving() {
    let mods = Modules::new();
    let dir = mods.add("w", Lang::Rust, json!({"handshakeTimeoutMs": 1000}));
    let rt = mods.start().await;
    let pid = rt.call("w", "pid", args(vec![])).await.unwrap().value;
    let good = std::fs::read_to_string(dir.join("module.json")).unwrap();

    // A new version whose workers cannot start.
    let mut m: serde_json::Value = serde_json::from_str(&good).unwrap();
    m["version"] = json!("2.0.0");
    m["env"] = json!({"TEST_EXIT_AT_START": "9"});
    std::fs::write(dir.join("module.json"), m.to_string()).unwrap();
    match rt.reload("w").await {
        Err(e @ LoadError::NotReady { .. }) => {
            assert!(e.to_string().contains("exit status 9"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A manifest that does not parse.
    std::fs::write(dir.join("module.json"), "{\"name\": \"w\",").unwrap();
    match rt.reload("w").await {
        Err(e @ LoadError::Manifest(_)) => assert!(e.to_string().contains("module.json"), "{e}"),
        other => panic!("{other:?}"),
    }
    let r = rt.call("w", "pid", args(vec![])).await.unwrap();
    assert_eq!(
        (r.value, r.version.as_str()),
        (pid, "1.0.0"),
        "the old worker still serves"
    );
    assert!(matches!(
        rt.reload("nope").await,
        Err(LoadError::NotFound(_))
    ));
    rt.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish_then_stops_every_worker() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 2}));
        let rt = mods.start().await;
        let pids: Vec<u32> = rt
            .module("w")
            .unwrap()
            .instances
            .iter()
            .filter_map(|i| i.pid)
            .collect();
        assert_eq!(pids.len(), 2);
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let rt = rt.clone();
                tokio::spawn(async move { rt.call("w", "sleep", args(vec![400.into()])).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = {
            let rt = rt.clone();
            tokio::spawn(async move { rt.shutdown().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            rt.call("w", "echo", args(vec![])).await,
            Err(CallError::ShuttingDown)
        ));
        for c in calls {
            assert_eq!(
                c.await.unwrap().unwrap().value,
                Value::from(400),
                "{lang:?}: no call lost"
            );
        }
        stopping.await.unwrap();
        for pid in pids {
            support::eventually(Duration::from_secs(5), "the worker exited", || !alive(pid)).await;
        }
    }
}

#[tokio::test]
async fn a_worker_that_ignores_shutdown_is_killed_after_its_grace_period() {
    let mods = Modules::new();
    mods.add(
        "w",
        Lang::Rust,
        json!({"instances": 1, "shutdownGraceMs": 300}),
    );
    let rt = Runtime::new(RuntimeConfig {
        drain_timeout: Duration::from_millis(100),
    });
    let report = rt.load_dir(mods.dir()).await;
    assert!(report.errors.is_empty());
    let pid = rt.module("w").unwrap().instances[0].pid.unwrap();
    // A call that outlives the drain: the worker finishes it before exiting on $shutdown,
    // which takes longer than the grace period.
    let rt2 = rt.clone();
    let long = tokio::spawn(async move { rt2.call("w", "sleep", args(vec![30_000.into()])).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    rt.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!alive(pid));
    assert!(matches!(
        long.await.unwrap(),
        Err(CallError::WorkerExited { .. })
    ));
}

#[tokio::test]
async fn one_bad_manifest_does_not_stop_the_others() {
    let mods = Modules::new();
    mods.add("good", Lang::Rust, json!({}));
    mods.add_raw(
        "bad",
        r#"{"name": "bad", "language": "rust", "version": "1", "command": "x", "instances": -1}"#,
    );
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    assert_eq!(report.ready, ["good"]);
    match report.errors.as_slice() {
        [LoadError::Manifest(e)] => {
            assert!(e.file.ends_with("bad/module.json"), "{e}");
            assert_eq!(e.field.as_deref(), Some("instances"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(rt.call("good", "echo", args(vec![1.into()])).await.is_ok());
    rt.shutdown().await;
}

/// Policies change with a reload of the manifest, without restarting the host.
#[tokio::test]
async fn a_reload_applies_a_new_timeout() {
    let mods = Modules::new();
    let dir = mods.add("w", Lang::Rust, json!({"timeoutMs": 5000}));
    let rt = mods.start().await;
    assert!(rt.call("w", "sleep", args(vec![400.into()])).await.is_ok());
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("module.json")).unwrap()).unwrap();
    m["timeoutMs"] = json!(150);
    std::fs::write(dir.join("module.json"), m.to_string()).unwrap();
    rt.reload("w").await.unwrap();
    match rt.call("w", "sleep", args(vec![400.into()])).await {
        Err(e @ CallError::Timeout { .. }) => assert!(e.to_string().contains("150ms"), "{e}"),
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

/// A build runs when its output is missing or older than an input, and not otherwise; a
/// failed build is reported with its output and leaves the module taking no calls.
#[tokio::test]
async fn builds_run_when_stale_and_report_failures() {
    let mods = Modules::new();
    let dir = mods.add(
        "built",
        Lang::Rust,
        json!({"build": {"command": "sh", "args": ["build.sh"], "inputs": ["src"], "output": "out/ready"}}),
    );
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/input.txt"), "v1").unwrap();
    std::fs::write(
        dir.join("build.sh"),
        "echo run >> builds.log\nif [ -f fail ]; then echo 'error: syntax error in src/input.txt' >&2; exit 3; fi\nmkdir -p out && touch out/ready\n",
    )
    .unwrap();
    let runs = || {
        std::fs::read_to_string(dir.join("builds.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let rt = mods.start().await;
    assert_eq!(runs(), 1, "built because the output was missing");
    rt.reload("built").await.unwrap();
    assert_eq!(runs(), 1, "fresh: not built again");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("src/input.txt"), "v2").unwrap();
    rt.reload("built").await.unwrap();
    assert_eq!(runs(), 2, "an input changed: built again");
    rt.shutdown().await;

    std::fs::remove_file(dir.join("out/ready")).unwrap();
    std::fs::write(dir.join("fail"), "").unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    match report.errors.as_slice() {
        [LoadError::Build(e)] => {
            let text = e.to_string();
            assert!(
                text.contains("sh build.sh") && text.contains("exit status 3"),
                "{text}"
            );
            assert!(
                text.contains("syntax error in src/input.txt"),
                "the build's output: {text}"
            );
        }
        other => panic!("{other:?}"),
    }
    match rt.call("built", "echo", args(vec![])).await {
        Err(e @ CallError::Unavailable { .. }) => {
            assert!(e.to_string().contains("build failed"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

/// Subscribers see workers exit and start, fallback use and reloads, as they happen.
#[tokio::test]
async fn events_tell_what_happened() {
    use polyglot_core::EventKind;
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({"instances": 1, "fallback": "b", "restart": {"backoffInitialMs": 300, "backoffMaxMs": 300}}));
    mods.add("b", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let mut events = rt.subscribe();
    let _ = rt.call("w", "crash", args(vec![])).await;
    assert!(
        rt.call("w", "echo", args(vec![1.into()]))
            .await
            .unwrap()
            .fallback
    );
    support::eventually(Duration::from_secs(5), "w restarted", || {
        rt.module("w").unwrap().instances[0].state == polyglot_core::InstanceState::Healthy
    })
    .await;
    rt.reload("w").await.unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push((e.module.clone(), e.kind));
    }
    let kinds: Vec<&str> = seen
        .iter()
        .filter(|(m, _)| m == "w")
        .map(|(_, k)| match k {
            EventKind::WorkerExited { .. } => "exited",
            EventKind::WorkerStarted { .. } => "started",
            EventKind::FallbackUsed { .. } => "fallback",
            EventKind::ReloadDone { .. } => "reload",
            EventKind::HealthChanged { .. } => "health",
            EventKind::ModuleLoaded { .. } => "loaded",
            EventKind::ModuleUnloaded { .. } => "unloaded",
            EventKind::BreakerChanged { .. } => "breaker",
            EventKind::PoliciesUpdated { .. } => "policies",
        })
        .filter(|k| *k != "health")
        .collect();
    // crash, fallback while restarting, restarted, reload's new worker, old worker stopped
    // (a stop on purpose is no exit event), reload done.
    assert_eq!(
        kinds,
        ["exited", "fallback", "started", "started", "reload"],
        "{seen:?}"
    );
    match &seen
        .iter()
        .find(|(_, k)| matches!(k, EventKind::WorkerExited { .. }))
        .unwrap()
        .1
    {
        EventKind::WorkerExited { reason, .. } => {
            assert!(reason.contains("exit status 3"), "{reason}")
        }
        _ => unreachable!(),
    }
    rt.shutdown().await;
}

/// Regression: with `inputs: ["."]`, writing the output into `bin/` made `bin/` newer than
/// the output, so the next start built again for nothing.
#[tokio::test]
async fn an_output_inside_its_own_inputs_does_not_rebuild_itself() {
    let mods = Modules::new();
    let dir = mods.add(
        "w",
        Lang::Rust,
        json!({"build": {"command": "sh", "args": ["-c", "echo run >> .log; mkdir -p bin; echo x > bin/out.tmp; sleep 0.05; mv bin/out.tmp bin/out"],
                         "inputs": ["."], "output": "bin/out"}}),
    );
    let rt = mods.start().await;
    std::thread::sleep(Duration::from_millis(20));
    rt.reload("w").await.unwrap();
    let runs = std::fs::read_to_string(dir.join(".log"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(runs, 1, "built once, then fresh");
    rt.shutdown().await;
}
