//! Calls through the runtime to real worker processes, in each language and codec:
//! results, errors, multiplexing, concurrency limits, deadlines with `$cancel`,
//! progress, binary values and the frame limit.

mod support;

use std::time::{Duration, Instant};

use polyglot_core::{CallError, CallOptions, Value};
use serde_json::json;
use support::{args, Lang, Modules, LANGUAGES};

const CODECS: [&str; 2] = ["json", "msgpack"];

#[tokio::test]
async fn results_and_errors_in_every_language_and_codec() {
    for lang in LANGUAGES {
        for codec in CODECS {
            let mods = Modules::new();
            mods.add("w", lang, json!({"codec": codec}));
            let rt = mods.start().await;
            let what = format!("{lang:?}/{codec}");

            let r = rt
                .call("w", "add", args(vec![2.into(), 40.into()]))
                .await
                .unwrap();
            assert_eq!(r.value, Value::from(42), "{what}");
            assert_eq!((r.served_by.as_str(), r.fallback), ("w", false), "{what}");
            assert!(
                r.execution_time.is_some(),
                "{what}: the worker reports executionTime"
            );

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

            match rt
                .call(
                    "w",
                    "fail",
                    args(vec!["NOT_READY".into(), "model not loaded".into()]),
                )
                .await
            {
                Err(CallError::Remote {
                    code,
                    message,
                    module,
                    method,
                    ..
                }) => {
                    assert_eq!(
                        (code.as_str(), message.as_str()),
                        ("NOT_READY", "model not loaded"),
                        "{what}"
                    );
                    assert_eq!((module.as_str(), method.as_str()), ("w", "fail"), "{what}");
                }
                other => panic!("{what}: {other:?}"),
            }
            match rt.call("w", "boom", args(vec![])).await {
                Err(CallError::Remote { code, .. }) => assert_eq!(code, "INTERNAL", "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            match rt.call("w", "add", args(vec!["x".into()])).await {
                Err(CallError::Remote { code, .. }) => assert_eq!(code, "INVALID_PARAMS", "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            match rt.call("w", "nope", args(vec![])).await {
                Err(e @ CallError::MethodNotFound { .. }) => {
                    assert!(e.to_string().contains("\"nope\""), "{what}: {e}");
                    assert!(
                        e.to_string().contains("echo"),
                        "{what}: lists what it offers: {e}"
                    );
                }
                other => panic!("{what}: {other:?}"),
            }
            match rt.call("missing", "echo", args(vec![])).await {
                Err(CallError::ModuleNotFound { module }) => assert_eq!(module, "missing"),
                other => panic!("{what}: {other:?}"),
            }
            rt.shutdown().await;
        }
    }
}

#[tokio::test]
async fn answers_come_back_out_of_order_on_one_worker() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1}));
        let rt = mods.start().await;
        let slow = {
            let rt = rt.clone();
            tokio::spawn(async move {
                let r = rt.call("w", "sleep", args(vec![600.into()])).await;
                (Instant::now(), r)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fast = rt
            .call("w", "echo", args(vec!["quick".into()]))
            .await
            .unwrap();
        let fast_done = Instant::now();
        assert_eq!(fast.value, Value::from("quick"));
        let (slow_done, slow) = slow.await.unwrap();
        assert_eq!(slow.unwrap().value, Value::from(600));
        assert!(
            fast_done < slow_done,
            "{lang:?}: the fast call must not wait behind the slow one"
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn the_pool_respects_the_concurrency_a_worker_announces() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add(
            "w",
            lang,
            json!({"instances": 1, "env": {"TEST_MAX_CONCURRENCY": "2"}}),
        );
        let rt = mods.start().await;
        let started = Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let rt = rt.clone();
                tokio::spawn(async move { rt.call("w", "sleep", args(vec![300.into()])).await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        // Two at a time: four 300 ms calls take two rounds.
        assert!(
            started.elapsed() >= Duration::from_millis(590),
            "{lang:?}: {:?}",
            started.elapsed()
        );
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn instances_share_the_load() {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({"instances": 3}));
    let rt = mods.start().await;
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move {
                rt.call("w", "sleep", args(vec![50.into()]))
                    .await
                    .unwrap()
                    .instance
            })
        })
        .collect();
    let mut used = std::collections::HashSet::new();
    for c in calls {
        used.insert(c.await.unwrap());
    }
    assert_eq!(
        used.len(),
        3,
        "least-outstanding routing spreads calls over every instance: {used:?}"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_deadline_fails_the_call_and_cancels_it_in_the_worker() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1}));
        let rt = mods.start().await;
        let marker = mods.dir().join(format!("cancelled-{lang:?}"));
        let opts = CallOptions {
            timeout: Some(Duration::from_millis(200)),
            ..Default::default()
        };
        let started = Instant::now();
        let r = rt
            .call_with(
                "w",
                "sleep",
                args(vec![
                    10_000.into(),
                    Value::from(marker.display().to_string()),
                ]),
                opts,
            )
            .await;
        match r {
            Err(e @ CallError::Timeout { .. }) => assert!(e.to_string().contains("200ms"), "{e}"),
            other => panic!("{lang:?}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{lang:?}: the caller is not held"
        );
        support::eventually(Duration::from_secs(5), "the worker saw $cancel", || {
            marker.exists()
        })
        .await;
        // The worker is still fine.
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
async fn progress_notifications_arrive_before_the_result() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({}));
        let rt = mods.start().await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = CallOptions {
            progress: Some(tx),
            ..Default::default()
        };
        let r = rt
            .call_with("w", "progress", args(vec![3.into()]), opts)
            .await
            .unwrap();
        assert_eq!(r.value, Value::from(3));
        let mut steps = Vec::new();
        while let Ok(p) = rx.try_recv() {
            steps.push(p.get("step").and_then(Value::as_u64).unwrap());
        }
        assert_eq!(steps, vec![1, 2, 3], "{lang:?}");
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn frames_over_the_limit_fail_that_call_only() {
    for lang in LANGUAGES {
        for codec in CODECS {
            let mods = Modules::new();
            mods.add(
                "w",
                lang,
                json!({"codec": codec, "maxFrameBytes": 4096, "instances": 1}),
            );
            let rt = mods.start().await;
            let what = format!("{lang:?}/{codec}");
            // A request over the limit is refused before it is sent.
            match rt
                .call("w", "echo", args(vec!["x".repeat(10_000).into()]))
                .await
            {
                Err(CallError::FrameTooLarge {
                    what: "request",
                    limit: 4096,
                    ..
                }) => {}
                other => panic!("{what}: {other:?}"),
            }
            // A response over the limit is replaced by the worker with an error.
            match rt.call("w", "big", args(vec![10_000.into()])).await {
                Err(CallError::Remote { code, .. }) => {
                    assert_eq!(code, "FRAME_TOO_LARGE", "{what}")
                }
                Err(CallError::FrameTooLarge {
                    what: "response", ..
                }) => {}
                other => panic!("{what}: {other:?}"),
            }
            // The worker and the connection are intact.
            let r = rt.call("w", "big", args(vec![100.into()])).await.unwrap();
            assert_eq!(r.value, Value::from("x".repeat(100)), "{what}");
            assert_eq!(
                rt.module("w").unwrap().restarts,
                0,
                "{what}: no restart needed"
            );
            rt.shutdown().await;
        }
    }
}

#[tokio::test]
async fn many_concurrent_calls_all_get_their_own_answer() {
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 2, "codec": "msgpack"}));
        let rt = mods.start().await;
        let calls: Vec<_> = (0..500i64)
            .map(|i| {
                let rt = rt.clone();
                tokio::spawn(async move {
                    (i, rt.call("w", "add", args(vec![i.into(), 1.into()])).await)
                })
            })
            .collect();
        for c in calls {
            let (i, r) = c.await.unwrap();
            assert_eq!(r.unwrap().value, Value::from(i + 1), "{lang:?}");
        }
        rt.shutdown().await;
    }
}

/// The same handler a worker process serves can be mounted in the host's own process.
#[tokio::test]
async fn an_in_process_handler_is_called_like_a_worker() {
    use polyglot_worker::{arg_str, MethodError, Worker};
    let rt = polyglot_core::Runtime::default();
    let handler = Worker::new("inproc", "2.1.0")
        .method("upper", |p: Value, _| async move {
            Ok(Value::from(arg_str(&p, 0, "text")?.to_uppercase()))
        })
        .method("fail", |_p: Value, _| async move {
            Err::<Value, _>(MethodError::new("NOPE", "no"))
        });
    rt.mount(std::sync::Arc::new(handler));
    let r = rt
        .call("inproc", "upper", args(vec!["abc".into()]))
        .await
        .unwrap();
    assert_eq!(
        (r.value, r.served_by.as_str(), r.version.as_str()),
        (Value::from("ABC"), "inproc", "2.1.0")
    );
    match rt.call("inproc", "fail", args(vec![])).await {
        Err(CallError::Remote { code, .. }) => assert_eq!(code, "NOPE"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rt.call("inproc", "lower", args(vec![])).await,
        Err(CallError::MethodNotFound { .. })
    ));
    let status = rt.module("inproc").unwrap();
    assert!(status.in_process);
    assert_eq!(status.methods, ["fail", "upper"]);
}

/// An in-process handler gets the caller's params themselves: a buffer moved into the
/// call reaches the handler, and comes back, without a copy.
#[tokio::test]
async fn an_in_process_call_moves_the_params_without_copying() {
    let rt = polyglot_core::Runtime::default();
    let handler = polyglot_worker::Worker::new("inproc", "1.0.0")
        .method("echo", |p: Value, _| async move { Ok(p) });
    rt.mount(std::sync::Arc::new(handler));
    let data = vec![7u8; 1 << 20];
    let at = data.as_ptr();
    let r = rt.call("inproc", "echo", Value::Bytes(data)).await.unwrap();
    match r.value {
        Value::Bytes(b) => assert!(std::ptr::eq(b.as_ptr(), at) && b.len() == 1 << 20),
        other => panic!("{other:?}"),
    }
}

/// With the socket transport the worker's stdout is free: a print there is logged, and
/// the protocol, on the socket, is untouched.
#[tokio::test]
async fn the_socket_transport_leaves_stdout_to_the_worker() {
    for lang in LANGUAGES {
        for codec in CODECS {
            let mods = Modules::new();
            mods.add("w", lang, json!({"transport": "socket", "codec": codec, "env": {"TEST_BANNER": "hello on stdout"}}));
            let rt = mods.start().await;
            let what = format!("{lang:?}/{codec}");
            let r = rt
                .call("w", "add", args(vec![1.into(), 2.into()]))
                .await
                .unwrap();
            assert_eq!(r.value, Value::from(3), "{what}");
            let blob = Value::Bytes(vec![0, 1, 255]);
            assert_eq!(
                rt.call("w", "echo", args(vec![blob.clone()]))
                    .await
                    .unwrap()
                    .value,
                blob,
                "{what}"
            );
            assert_eq!(
                rt.call("w", "env", args(vec!["POLYGLOT_TRANSPORT".into()]))
                    .await
                    .unwrap()
                    .value,
                Value::from("socket"),
                "{what}"
            );
            rt.shutdown().await;
        }
    }
}

/// Beyond a worker's concurrency and its queue, calls are refused at once (load
/// shedding), not queued without bound.
#[tokio::test]
async fn calls_beyond_concurrency_and_queue_are_refused_at_once() {
    let mods = Modules::new();
    mods.add(
        "w",
        Lang::Rust,
        json!({"instances": 1, "maxQueue": 2, "env": {"TEST_MAX_CONCURRENCY": "1"}}),
    );
    let rt = mods.start().await;
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { rt.call("w", "sleep", args(vec![500.into()])).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    match rt.call("w", "echo", args(vec![1.into()])).await {
        Err(e @ CallError::Overloaded { .. }) => {
            assert!(e.to_string().contains("queue of 2"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused at once"
    );
    for b in busy {
        b.await.unwrap().unwrap(); // the one running and the two queued all finish
    }
    assert!(rt.call("w", "echo", args(vec![1.into()])).await.is_ok());
    rt.shutdown().await;
}
