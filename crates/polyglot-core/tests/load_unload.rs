//! Adding a module folder to a running runtime ([`Runtime::load_module`]) and removing a
//! module from it ([`Runtime::unload`]), with real workers: the new module serves, a
//! duplicate or a bad manifest adds nothing, and an unloaded module finishes its calls in
//! flight before its workers stop.

mod support;

use std::time::{Duration, Instant};

use polyglot_core::{CallError, EventKind, LoadError, RuntimeEvent, Value};
use serde_json::json;
use support::{alive, args, Lang, Modules};
use tokio::sync::broadcast;

/// The next event of module `module` that `pick` accepts, within 10 s.
async fn next_event<T>(
    events: &mut broadcast::Receiver<RuntimeEvent>,
    module: &str,
    mut pick: impl FnMut(&EventKind) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.module == module {
                if let Some(t) = pick(&e.kind) {
                    return t;
                }
            }
        }
    })
    .await
    .expect("the event in time")
}

#[tokio::test]
async fn load_module_adds_a_folder_to_a_running_runtime() {
    for lang in [Lang::Rust, Lang::Python] {
        let mods = Modules::new();
        mods.add("a", Lang::Rust, json!({}));
        let rt = mods.start().await;
        let mut events = rt.subscribe();
        let b = mods.add("b", lang, json!({"version": "2.1.0"}));
        let report = rt.load_module(&b).await;
        assert!(report.errors.is_empty(), "{lang:?}: {:?}", report.errors);
        assert_eq!(report.ready, ["b"], "{lang:?}");
        let reply = rt.call("b", "add", args(vec![40.into(), 2.into()])).await;
        assert_eq!(reply.unwrap().value.to_json(), json!(42), "{lang:?}");
        let version = next_event(&mut events, "b", |k| match k {
            EventKind::ModuleLoaded { version } => Some(version.clone()),
            _ => None,
        })
        .await;
        assert_eq!(version, "2.1.0", "{lang:?}");
        assert!(rt.call("a", "pid", args(vec![])).await.is_ok(), "{lang:?}");
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn load_module_adds_nothing_for_a_duplicate_or_a_bad_manifest() {
    let mods = Modules::new();
    let a = mods.add("a", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let pid = rt.module("a").unwrap().instances[0].pid;

    let report = rt.load_module(&a).await;
    assert!(report.ready.is_empty());
    assert!(
        matches!(&report.errors[..], [LoadError::Duplicate { name, .. }] if name == "a"),
        "{:?}",
        report.errors
    );
    assert_eq!(rt.module("a").unwrap().instances[0].pid, pid, "untouched");

    let bad = mods.add_raw("bad", r#"{"name": "bad", "language": "rust"}"#);
    let report = rt.load_module(&bad).await;
    assert!(report.ready.is_empty());
    match &report.errors[..] {
        [LoadError::Manifest(e)] => assert!(e.to_string().contains("version"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(rt.module("bad").is_none());
    assert_eq!(rt.modules().len(), 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn unload_lets_calls_in_flight_finish_then_stops_the_workers() {
    let mods = Modules::new();
    mods.add("a", Lang::Rust, json!({"instances": 2}));
    mods.add("b", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let mut events = rt.subscribe();
    let pids: Vec<u32> = rt
        .module("a")
        .unwrap()
        .instances
        .iter()
        .map(|i| i.pid.unwrap())
        .collect();
    let in_flight = tokio::spawn({
        let rt = rt.clone();
        async move { rt.call("a", "sleep", args(vec![500.into()])).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let unloading = tokio::spawn({
        let rt = rt.clone();
        async move { rt.unload("a").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Gone for new calls at once, while its call in flight still runs.
    assert!(matches!(
        rt.call("a", "echo", args(vec![Value::from("x")])).await,
        Err(CallError::ModuleNotFound { .. })
    ));
    let report = unloading.await.unwrap().unwrap();
    assert_eq!(
        (report.module.as_str(), report.version.as_deref()),
        ("a", Some("1.0.0"))
    );
    let reply = in_flight
        .await
        .unwrap()
        .expect("the call in flight finished");
    assert_eq!(reply.value.to_json(), json!(500));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "unload waited for it"
    );
    for pid in pids {
        assert!(!alive(pid), "worker {pid} stopped");
    }
    assert!(rt.module("a").is_none());
    let version = next_event(&mut events, "a", |k| match k {
        EventKind::ModuleUnloaded { version } => Some(version.clone()),
        _ => None,
    })
    .await;
    assert_eq!(version, "1.0.0");
    assert!(matches!(rt.unload("a").await, Err(LoadError::NotFound(n)) if n == "a"));
    // The others are untouched, and the folder can come back.
    assert!(rt.call("b", "pid", args(vec![])).await.is_ok());
    let report = rt.load_module(&mods.dir().join("a")).await;
    assert_eq!(report.ready, ["a"], "{:?}", report.errors);
    assert!(rt.call("a", "pid", args(vec![])).await.is_ok());
    rt.shutdown().await;
}

#[tokio::test]
async fn an_unloaded_module_is_no_longer_a_fallback() {
    let mods = Modules::new();
    mods.add(
        "main",
        Lang::Rust,
        json!({"env": {"TEST_EXIT_AT_START": "1"}, "restart": {"maxRestarts": 0}, "fallback": "backup"}),
    );
    mods.add("backup", Lang::Rust, json!({}));
    let rt = polyglot_core::Runtime::default();
    // `main` never starts (reported): its calls fall back to `backup`.
    let _ = rt.load_dir(mods.dir()).await;
    let reply = rt.call("main", "add", args(vec![1.into(), 2.into()])).await;
    assert_eq!(reply.unwrap().served_by, "backup");
    rt.unload("backup").await.unwrap();
    match rt.call("main", "add", args(vec![1.into(), 2.into()])).await {
        Err(CallError::Unavailable { causes, .. }) => {
            assert!(
                causes
                    .iter()
                    .any(|c| c.implementation == "backup" && c.reason.contains("not loaded")),
                "{causes:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}
