//! Supervision with real worker processes: crashes, restarts with back-off, restart
//! intensity, protocol violations, start-up failures, health, and isolation of modules.

mod support;

use std::time::{Duration, Instant};

use polyglot_core::{
    CallError, InstanceState, LoadError, ModuleState, Runtime, RuntimeConfig, Value,
};
use serde_json::json;
use support::{args, eventually, Lang, Modules, LANGUAGES};

#[tokio::test]
async fn a_crash_fails_every_call_in_flight_at_once_and_the_worker_comes_back() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1}));
        let rt = mods.start().await;
        let pid_before = rt.call("w", "pid", args(vec![])).await.unwrap().value;
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let rt = rt.clone();
                tokio::spawn(async move { rt.call("w", "sleep", args(vec![30_000.into()])).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let crash = rt.call("w", "crash", args(vec![3.into()])).await;
        match crash {
            Err(e @ CallError::WorkerExited { .. }) => {
                assert!(e.to_string().contains("exit status 3"), "{lang:?}: {e}")
            }
            other => panic!("{lang:?}: {other:?}"),
        }
        for s in sleepers {
            match s.await.unwrap() {
                Err(CallError::WorkerExited { reason, .. }) => {
                    assert!(reason.contains("exit status 3"), "{reason}")
                }
                other => panic!("{lang:?}: a call in flight must fail with the crash: {other:?}"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{lang:?}: no call waits for its deadline"
        );
        eventually(Duration::from_secs(10), "the worker is back", || {
            rt.module("w").unwrap().instances[0].state == InstanceState::Healthy
        })
        .await;
        let pid_after = rt.call("w", "pid", args(vec![])).await.unwrap().value;
        assert_ne!(pid_before, pid_after, "{lang:?}: a new process serves");
        let status = rt.module("w").unwrap();
        assert_eq!(status.restarts, 1, "{lang:?}");
        assert!(
            status.last_error.unwrap().contains("exit status 3"),
            "{lang:?}"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn restart_intensity_fails_the_module_and_spares_the_others() {
    let mods = Modules::new();
    mods.add(
        "flaky",
        Lang::Rust,
        json!({"instances": 1, "restart": {"maxRestarts": 2, "windowMs": 60000, "backoffInitialMs": 10, "backoffMaxMs": 20}}),
    );
    mods.add("steady", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let steady_pid = rt.call("steady", "pid", args(vec![])).await.unwrap().value;
    for _ in 0..3 {
        eventually(Duration::from_secs(10), "flaky is up", || {
            let m = rt.module("flaky").unwrap();
            m.state == ModuleState::Failed || m.instances[0].state == InstanceState::Healthy
        })
        .await;
        let _ = rt.call("flaky", "crash", args(vec![])).await;
    }
    eventually(Duration::from_secs(10), "flaky is failed", || {
        rt.module("flaky").unwrap().state == ModuleState::Failed
    })
    .await;
    match rt.call("flaky", "echo", args(vec![1.into()])).await {
        Err(e @ CallError::Unavailable { .. }) => {
            assert!(e.to_string().contains("restart intensity"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // No more restarts happen.
    let restarts = rt.module("flaky").unwrap().restarts;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rt.module("flaky").unwrap().restarts, restarts);
    // The other module never noticed.
    assert_eq!(
        rt.call("steady", "pid", args(vec![])).await.unwrap().value,
        steady_pid
    );
    assert_eq!(rt.module("steady").unwrap().restarts, 0);
    rt.shutdown().await;
}

#[tokio::test]
async fn back_off_grows_between_restarts() {
    let mods = Modules::new();
    mods.add(
        "w",
        Lang::Rust,
        json!({"instances": 1, "env": {"TEST_EXIT_AT_START": "4"},
               "restart": {"maxRestarts": 5, "windowMs": 60000, "backoffInitialMs": 100, "backoffMaxMs": 10000}}),
    );
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let started = Instant::now();
    eventually(Duration::from_secs(20), "the module is failed", || {
        rt.module("w").unwrap().state == ModuleState::Failed
    })
    .await;
    // 100 + 200 + 400 + 800 + 1600 ms (±20%) before the intensity of 5 is spent.
    assert!(
        started.elapsed() >= Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rt.module("w").unwrap().restarts, 5);
    rt.shutdown().await;
}

#[tokio::test]
async fn garbage_or_unknown_ids_restart_that_worker_only() {
    for lang in LANGUAGES {
        // Text on a MessagePack stream reads as a length prefix of gigabytes: it must be
        // found out as garbage too, not taken for a frame that never ends.
        for (method, word, codec) in [
            ("garbage", "not a protocol message", "json"),
            ("garbage", "not a protocol message", "msgpack"),
            ("unknownId", "never issued", "json"),
        ] {
            let mods = Modules::new();
            mods.add("w", lang, json!({"instances": 1, "codec": codec}));
            mods.add("other", lang, json!({"instances": 1}));
            let rt = mods.start().await;
            let other_pid = rt.call("other", "pid", args(vec![])).await.unwrap().value;
            match rt.call("w", method, args(vec![])).await {
                Err(CallError::WorkerExited { reason, .. }) => {
                    assert!(reason.contains(word), "{lang:?}: {reason}")
                }
                Ok(r) => {
                    // The answer may beat the garbage; the worker must be replaced anyway.
                    assert_eq!(r.value, Value::from("sent"));
                }
                other => panic!("{lang:?}/{method}/{codec}: {other:?}"),
            }
            eventually(Duration::from_secs(10), "the worker was restarted", || {
                let m = rt.module("w").unwrap();
                m.restarts == 1 && m.instances[0].state == InstanceState::Healthy
            })
            .await;
            assert!(
                rt.module("w").unwrap().last_error.unwrap().contains(word),
                "{lang:?}/{method}"
            );
            assert_eq!(
                rt.call("w", "echo", args(vec![5.into()]))
                    .await
                    .unwrap()
                    .value,
                Value::from(5)
            );
            assert_eq!(
                rt.call("other", "pid", args(vec![])).await.unwrap().value,
                other_pid,
                "other untouched"
            );
            rt.shutdown().await;
        }
    }
}

/// Loads one module that must fail to start, and returns the error text.
async fn start_failure(lang: Lang, extra: serde_json::Value) -> String {
    let mods = Modules::new();
    let mut extra = extra;
    support::merge(
        &mut extra,
        json!({"handshakeTimeoutMs": 700, "restart": {"maxRestarts": 0}}),
    );
    mods.add("w", lang, extra);
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    let text = match report.errors.as_slice() {
        [LoadError::NotReady { message, .. }] => message.clone(),
        other => panic!("{lang:?}: {other:?}"),
    };
    // The module is loaded but takes no calls; the error says why.
    match rt.call("w", "echo", args(vec![])).await {
        Err(CallError::Unavailable { .. }) => {}
        other => panic!("{lang:?}: {other:?}"),
    }
    rt.shutdown().await;
    text
}

#[tokio::test]
async fn start_failures_say_what_happened() {
    for lang in LANGUAGES {
        let e = start_failure(lang, json!({"env": {"TEST_NO_HANDSHAKE": "1"}})).await;
        assert!(
            e.contains("no handshake within the handshake timeout of 700ms"),
            "{lang:?}: {e}"
        );
        assert!(e.contains("command: "), "{lang:?}: {e}");
        assert!(e.contains("starting..."), "{lang:?}: stderr tail: {e}");

        let e = start_failure(lang, json!({"env": {"TEST_EXIT_AT_START": "7"}})).await;
        assert!(
            e.contains("exited before its handshake with exit status 7"),
            "{lang:?}: {e}"
        );
        assert!(e.contains("fatal: cannot load model"), "{lang:?}: {e}");

        let e = start_failure(lang, json!({"env": {"TEST_BAD_PROTOCOL": "1"}})).await;
        assert!(e.contains("protocol version 99"), "{lang:?}: {e}");

        let e = start_failure(lang, json!({"capabilities": ["echo", "teleport"]})).await;
        assert!(e.contains("teleport"), "{lang:?}: {e}");
    }
    let e = start_failure(Lang::Rust, json!({"command": "/nonexistent/worker"})).await;
    assert!(
        e.contains("cannot run it") && e.contains("/nonexistent/worker"),
        "{e}"
    );
}

#[tokio::test]
async fn lines_printed_before_the_handshake_are_skipped() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add(
            "w",
            lang,
            json!({"env": {"TEST_BANNER": "Loading model v3..."}}),
        );
        let rt = mods.start().await;
        assert_eq!(
            rt.call("w", "echo", args(vec![1.into()]))
                .await
                .unwrap()
                .value,
            Value::from(1)
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn unhealthy_workers_take_no_calls_and_recover() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        let flag = mods.dir().join("sick");
        mods.add(
            "w",
            lang,
            json!({"instances": 1, "env": {"TEST_HEALTH_FILE": flag.display().to_string()},
                   "healthCheck": {"intervalMs": 100, "timeoutMs": 1000, "unhealthyThreshold": 1000}}),
        );
        let rt = mods.start().await;
        std::fs::write(&flag, "x").unwrap();
        eventually(Duration::from_secs(5), "the worker is unhealthy", || {
            rt.module("w").unwrap().instances[0].state == InstanceState::Unhealthy
        })
        .await;
        match rt.call("w", "echo", args(vec![1.into()])).await {
            Err(e @ CallError::Unavailable { .. }) => {
                assert!(e.to_string().contains("unhealthy"), "{lang:?}: {e}")
            }
            other => panic!("{lang:?}: {other:?}"),
        }
        let status = rt.module("w").unwrap();
        assert_eq!(status.health, polyglot_core::HealthState::Unhealthy);
        assert!(status.last_error.unwrap().contains("UNHEALTHY"), "{lang:?}");
        std::fs::remove_file(&flag).unwrap();
        eventually(
            Duration::from_secs(5),
            "the worker is healthy again",
            || rt.module("w").unwrap().instances[0].state == InstanceState::Healthy,
        )
        .await;
        assert_eq!(
            rt.call("w", "echo", args(vec![2.into()]))
                .await
                .unwrap()
                .value,
            Value::from(2)
        );
        assert_eq!(
            rt.module("w").unwrap().restarts,
            0,
            "{lang:?}: recovered without a restart"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn persistently_unhealthy_workers_are_restarted() {
    let mods = Modules::new();
    let flag = mods.dir().join("sick");
    std::fs::write(&flag, "x").unwrap();
    mods.add(
        "w",
        Lang::Rust,
        json!({"instances": 1, "env": {"TEST_HEALTH_FILE": flag.display().to_string()},
               "healthCheck": {"intervalMs": 50, "timeoutMs": 500, "unhealthyThreshold": 3}}),
    );
    let rt = Runtime::new(RuntimeConfig::default());
    let _ = rt.load_dir(mods.dir()).await; // its first health check fails: not ready
    eventually(
        Duration::from_secs(10),
        "restarted for failing health checks",
        || rt.module("w").unwrap().restarts >= 1,
    )
    .await;
    std::fs::remove_file(&flag).unwrap();
    eventually(Duration::from_secs(10), "healthy", || {
        rt.module("w").unwrap().instances[0].state == InstanceState::Healthy
    })
    .await;
    rt.shutdown().await;
}

/// Regression: `$health` waited for a concurrency slot, so a worker busy with long calls
/// failed its health checks and was restarted mid-call. It must stay healthy.
#[tokio::test]
async fn a_busy_worker_is_not_unhealthy() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add(
            "w",
            lang,
            json!({"instances": 1, "env": {"TEST_MAX_CONCURRENCY": "1"},
                   "healthCheck": {"intervalMs": 50, "timeoutMs": 200, "unhealthyThreshold": 2}}),
        );
        let rt = mods.start().await;
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let rt = rt.clone();
                tokio::spawn(async move { rt.call("w", "sleep", args(vec![700.into()])).await })
            })
            .collect();
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = rt.module("w").unwrap();
            assert_eq!(
                m.instances[0].state,
                InstanceState::Healthy,
                "{lang:?}: {:?}",
                m.last_error
            );
        }
        for c in calls {
            assert_eq!(
                c.await.unwrap().unwrap().value,
                Value::from(700),
                "{lang:?}"
            );
        }
        assert_eq!(rt.module("w").unwrap().restarts, 0, "{lang:?}");
        rt.shutdown().await;
    }
}

/// A worker that prints to stdout from a method does not corrupt the protocol: the SDKs
/// move stdout aside, and the print lands in the host's log.
#[tokio::test]
async fn stray_prints_do_not_corrupt_the_protocol() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1}));
        let rt = mods.start().await;
        for _ in 0..3 {
            assert_eq!(
                rt.call("w", "stray", args(vec![])).await.unwrap().value,
                Value::from("printed")
            );
        }
        assert_eq!(
            rt.call("w", "echo", args(vec![7.into()]))
                .await
                .unwrap()
                .value,
            Value::from(7)
        );
        assert_eq!(
            rt.module("w").unwrap().restarts,
            0,
            "{lang:?}: no protocol error"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn a_degraded_worker_keeps_serving_and_says_so() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1, "env": {"TEST_HEALTH": "degraded"}, "healthCheck": {"intervalMs": 50}}));
        let rt = mods.start().await;
        eventually(Duration::from_secs(5), "degraded", || {
            rt.module("w").unwrap().instances[0].state == InstanceState::Degraded
        })
        .await;
        let m = rt.module("w").unwrap();
        assert_eq!(m.health, polyglot_core::HealthState::Degraded, "{lang:?}");
        assert!(m.last_error.unwrap().contains("warming up"), "{lang:?}");
        assert!(
            rt.call("w", "echo", args(vec![1.into()])).await.is_ok(),
            "{lang:?}: still serving"
        );
        rt.shutdown().await;
    }
}
