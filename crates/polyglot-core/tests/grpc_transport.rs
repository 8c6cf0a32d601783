//! The gRPC transport end to end (`docs/protocol.md`, section 10): workers in Rust, Go and
//! C++ started with `transport: "grpc"`, and remote workers at an `endpoint` that the host
//! does not start, killed and started again while calls fall back and return.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use polyglot_core::{CallError, CallOptions, InstanceState, Value};
use serde_json::json;
use support::{alive, args, eventually, Lang, Modules, GRPC_LANGUAGES};

const CODECS: [&str; 2] = ["json", "msgpack"];

#[tokio::test]
async fn calls_over_grpc_in_every_language_and_codec() {
    for lang in GRPC_LANGUAGES {
        for codec in CODECS {
            let what = format!("{lang:?}/{codec}");
            let mods = Modules::new();
            mods.add("w", lang, json!({"transport": "grpc", "codec": codec}));
            let rt = mods.start().await;

            let r = rt
                .call("w", "add", args(vec![2.into(), 40.into()]))
                .await
                .unwrap();
            assert_eq!(r.value, Value::from(42), "{what}");
            assert!(r.execution_time.is_some(), "{what}: executionTime");
            let blob = Value::Bytes((0..=255u8).collect());
            let r = rt
                .call("w", "echo", args(vec![blob.clone()]))
                .await
                .unwrap();
            assert_eq!(r.value, blob, "{what}: binary round trip");
            let nested = Value::from(json!({"a": [1, -2, 1.5, "é", null, true], "b": {}}));
            let r = rt
                .call("w", "echo", args(vec![nested.clone()]))
                .await
                .unwrap();
            assert_eq!(r.value, nested, "{what}");
            // Larger than one chunk (1 MiB) in both directions.
            let big = Value::Bytes(vec![7u8; 3 << 20]);
            let r = rt.call("w", "echo", args(vec![big.clone()])).await.unwrap();
            assert_eq!(r.value, big, "{what}: a 3 MiB value spans chunks");

            match rt
                .call(
                    "w",
                    "fail",
                    args(vec!["NOT_READY".into(), "no model".into()]),
                )
                .await
            {
                Err(CallError::Remote { code, message, .. }) => {
                    assert_eq!((code.as_str(), message.as_str()), ("NOT_READY", "no model"))
                }
                other => panic!("{what}: {other:?}"),
            }
            match rt.call("w", "nope", args(vec![])).await {
                Err(CallError::MethodNotFound { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }

            // Progress arrives before the result, in order.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let r = rt
                .call_with(
                    "w",
                    "progress",
                    args(vec![3.into()]),
                    CallOptions {
                        progress: Some(tx),
                        ..CallOptions::default()
                    },
                )
                .await
                .unwrap();
            let mut seen = Vec::new();
            while let Ok(p) = rx.try_recv() {
                seen.push(p);
            }
            assert_eq!(seen.len(), 3, "{what}: {seen:?} then {:?}", r.value);

            // Many calls in flight on one session, answered out of order.
            let started = Instant::now();
            let calls: Vec<_> = (0..8)
                .map(|i| {
                    let rt = rt.clone();
                    tokio::spawn(async move {
                        rt.call("w", "sleep", args(vec![(300 - i * 30).into()]))
                            .await
                    })
                })
                .collect();
            for c in calls {
                c.await.unwrap().unwrap();
            }
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "{what}: concurrent calls ran one after another ({:?})",
                started.elapsed()
            );
            rt.shutdown().await;
        }
    }
}

#[tokio::test]
async fn deadlines_cancel_and_the_session_keeps_serving() {
    for lang in GRPC_LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"transport": "grpc"}));
        let rt = mods.start().await;
        let r = rt
            .call_with(
                "w",
                "sleep",
                args(vec![5000.into()]),
                CallOptions {
                    timeout: Some(Duration::from_millis(200)),
                    ..CallOptions::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(CallError::Timeout { .. })),
            "{lang:?}: {r:?}"
        );
        let r = rt
            .call("w", "echo", args(vec!["after".into()]))
            .await
            .unwrap();
        assert_eq!(r.value, Value::from("after"), "{lang:?}");
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn a_crash_fails_its_calls_with_the_exit_and_the_worker_comes_back() {
    for lang in GRPC_LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"transport": "grpc", "instances": 1}));
        let rt = mods.start().await;
        let first = rt.call("w", "pid", args(vec![])).await.unwrap().value;
        let socket = rt.module("w").unwrap().instances[0]
            .address
            .clone()
            .and_then(|a| a.strip_prefix("unix:").map(std::path::PathBuf::from))
            .expect("a Unix socket");
        let slow = {
            let rt = rt.clone();
            tokio::spawn(async move { rt.call("w", "sleep", args(vec![3000.into()])).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let crash = rt.call("w", "crash", args(vec![3.into()])).await;
        assert!(
            matches!(crash, Err(CallError::WorkerExited { .. })),
            "{lang:?}: {crash:?}"
        );
        let slow = slow.await.unwrap();
        match &slow {
            Err(e @ CallError::WorkerExited { .. }) => {
                assert!(e.to_string().contains("exit status 3"), "{lang:?}: {e}")
            }
            other => panic!("{lang:?}: the call in flight: {other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let second = loop {
            match rt.call("w", "pid", args(vec![])).await {
                Ok(r) => break r.value,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{lang:?}: never came back: {e}"),
            }
        };
        assert_ne!(first, second, "{lang:?}: a new process serves");
        assert!(
            !socket.exists() && !socket.parent().unwrap().exists(),
            "{lang:?}: the crashed worker's socket folder {} is removed",
            socket.display()
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn health_comes_from_the_health_rpc() {
    for lang in GRPC_LANGUAGES {
        let mods = Modules::new();
        mods.add(
            "w",
            lang,
            json!({"transport": "grpc", "env": {"TEST_HEALTH": "degraded"}}),
        );
        let rt = mods.start().await;
        let rt2 = rt.clone();
        eventually(
            Duration::from_secs(5),
            "the worker reports degraded",
            move || {
                rt2.module("w").is_some_and(|m| {
                    m.instances
                        .iter()
                        .all(|i| i.state == InstanceState::Degraded)
                })
            },
        )
        .await;
        // Degraded still serves.
        rt.call("w", "echo", args(vec![1.into()])).await.unwrap();
        rt.shutdown().await;

        let mods = Modules::new();
        mods.add(
            "w",
            lang,
            json!({"transport": "grpc", "env": {"TEST_HEALTH": "unhealthy"}}),
        );
        let rt = polyglot_core::Runtime::default();
        let report = rt.load_dir(mods.dir()).await;
        let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            errors.iter().any(|e| e.contains("unhealthy")),
            "{lang:?}: {errors:?}"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_leaves_no_worker_and_no_socket_behind() {
    for lang in GRPC_LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"transport": "grpc", "instances": 2}));
        let rt = mods.start().await;
        let status = rt.module("w").unwrap();
        let pids: Vec<u32> = status.instances.iter().filter_map(|i| i.pid).collect();
        assert_eq!(pids.len(), 2, "{lang:?}");
        let sockets: Vec<std::path::PathBuf> = status
            .instances
            .iter()
            .map(|i| {
                let a = i.address.clone().expect("a gRPC worker has an address");
                let path = a.strip_prefix("unix:").expect("a Unix socket by default");
                std::path::PathBuf::from(path)
            })
            .collect();
        for s in &sockets {
            assert!(s.exists(), "{lang:?}: {} exists while serving", s.display());
        }
        rt.shutdown().await;
        for pid in pids {
            assert!(
                !alive(pid),
                "{lang:?}: worker {pid} outlived the host's shutdown"
            );
        }
        for s in &sockets {
            assert!(!s.exists(), "{lang:?}: {} left behind", s.display());
        }
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test worker started by hand as a remote gRPC worker on `port`.
fn start_remote(lang: Lang, port: u16) -> std::process::Child {
    let program = match lang {
        Lang::Rust => support::rust_worker(),
        Lang::Go => support::go_worker(),
        Lang::Cpp => support::cpp_worker(),
        Lang::Python => unreachable!("the Python SDK serves stdio and sockets only"),
    };
    let mut child = std::process::Command::new(program)
        .env("POLYGLOT_PROTOCOL", "1")
        .env("POLYGLOT_MODULE", "remote")
        .env("POLYGLOT_TRANSPORT", "grpc")
        .env("POLYGLOT_GRPC_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // It prints its handshake once it listens.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "{lang:?}: handshake {line:?}"
    );
    child
}

#[tokio::test]
async fn a_remote_worker_killed_and_restarted_falls_back_then_returns() {
    for lang in GRPC_LANGUAGES {
        let port = free_port();
        let mut remote = start_remote(lang, port);
        let remote_pid = remote.id();

        let mods = Modules::new();
        mods.add("local", Lang::Rust, json!({}));
        mods.add_raw(
            "remote",
            &serde_json::to_string(&json!({
                "name": "remote",
                "language": "any",
                "version": "1.0.0",
                "endpoint": format!("http://127.0.0.1:{port}"),
                "fallback": "local",
                "timeoutMs": 5000,
                "handshakeTimeoutMs": 2000,
                "healthCheck": {"intervalMs": 200, "timeoutMs": 500},
                "restart": {"backoffInitialMs": 50, "backoffMaxMs": 200},
            }))
            .unwrap(),
        );
        let rt = mods.start().await;
        let r = rt.call("remote", "pid", args(vec![])).await.unwrap();
        assert_eq!(
            (r.served_by.as_str(), r.value.as_u64()),
            ("remote", Some(u64::from(remote_pid))),
            "{lang:?}: the remote worker serves"
        );
        let status = rt.module("remote").unwrap();
        assert_eq!(status.instances[0].pid, None, "{lang:?}: no local process");

        // Killed: once the host has seen the session end, calls go to the fallback and
        // every one succeeds. (A call written just as the connection died fails like a
        // call in flight when a local worker crashes: it may have run, so it is not
        // re-sent.)
        remote.kill().unwrap();
        remote.wait().unwrap();
        let rt2 = rt.clone();
        eventually(
            Duration::from_secs(5),
            "the host sees the remote gone",
            move || {
                rt2.module("remote")
                    .is_some_and(|m| m.instances[0].state != InstanceState::Healthy)
            },
        )
        .await;
        for _ in 0..20 {
            let r = rt
                .call("remote", "echo", args(vec!["x".into()]))
                .await
                .unwrap_or_else(|e| panic!("{lang:?}: a call was lost: {e}"));
            assert_eq!(
                (r.served_by.as_str(), r.fallback),
                ("local", true),
                "{lang:?}"
            );
        }

        // Back on the same address: the host reconnects and the remote serves again.
        let mut remote = start_remote(lang, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = rt.call("remote", "pid", args(vec![])).await.unwrap();
            if !r.fallback {
                assert_eq!(r.value.as_u64(), Some(u64::from(remote.id())), "{lang:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{lang:?}: never reconnected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rt.shutdown().await;
        assert!(
            alive(remote.id()),
            "{lang:?}: the host never stops a remote worker"
        );
        // SIGTERM: a standalone worker exits 0.
        // SAFETY-free: `kill` by command.
        let status = std::process::Command::new("kill")
            .arg(remote.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let code = remote.wait().unwrap();
        assert_eq!(code.code(), Some(0), "{lang:?}: SIGTERM ends it cleanly");
    }
}

#[tokio::test]
async fn an_endpoint_that_is_down_at_load_is_reported_and_connected_later() {
    let port = free_port();
    let mods = Modules::new();
    mods.add_raw(
        "remote",
        &serde_json::to_string(&json!({
            "name": "remote",
            "language": "rust",
            "version": "1.0.0",
            "endpoint": format!("http://127.0.0.1:{port}"),
            "handshakeTimeoutMs": 1000,
            "restart": {"backoffInitialMs": 50, "backoffMaxMs": 200},
        }))
        .unwrap(),
    );
    let rt = polyglot_core::Runtime::default();
    let report = rt.load_dir(mods.dir()).await;
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&format!("127.0.0.1:{port}")) && e.contains("connect")),
        "the error names the endpoint: {errors:?}"
    );
    match rt.call("remote", "echo", args(vec![1.into()])).await {
        Err(CallError::Unavailable { .. }) => {}
        other => panic!("{other:?}"),
    }
    let mut remote = start_remote(Lang::Rust, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rt.call("remote", "echo", args(vec![1.into()])).await {
            Ok(r) => {
                assert_eq!(r.value, Value::from(1));
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("never connected: {e}"),
        }
    }
    rt.shutdown().await;
    remote.kill().unwrap();
    remote.wait().unwrap();
}
