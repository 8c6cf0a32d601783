//! Builtin modules: a manifest naming a handler compiled into the host is served in the
//! host's process when the runtime has that handler, by its standalone worker when it
//! does not, and is refused with a clear error when it has neither.

mod support;

use std::sync::Arc;

use polyglot_core::{LoadError, Runtime, RuntimeConfig, Value};
use polyglot_worker::{MethodError, Worker};
use serde_json::json;
use support::{args, Lang, Modules};

/// A handler such as the host compiles in: `add` and `where`, which says it ran in
/// process (the test worker's `pid` method would name a worker process instead).
fn adder() -> Arc<Worker> {
    Arc::new(
        Worker::new("adder", "builtin")
            .method("add", |p: Value, _| async move {
                let n = |i| p.as_array().and_then(|a| a.get(i)).and_then(Value::as_i64);
                match (n(0), n(1)) {
                    (Some(a), Some(b)) => Ok(Value::from(a + b)),
                    _ => Err(MethodError::invalid_params("add takes two integers")),
                }
            })
            .method("where", |_p: Value, _| async move {
                Ok(Value::from(std::process::id() as i64))
            }),
    )
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default())
}

/// With the builtin registered, the module runs in this process under its manifest's
/// name and version: no worker is started, even though the manifest gives a command.
#[tokio::test]
async fn a_registered_builtin_serves_in_process() {
    let mods = Modules::new();
    mods.add(
        "calc",
        Lang::Rust,
        json!({"builtin": "adder", "version": "2.1.0", "capabilities": ["add", "where"]}),
    );
    let rt = runtime();
    rt.register_builtin("adder", adder());
    assert_eq!(rt.builtins(), ["adder"]);
    let report = rt.load_dir(mods.dir()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let r = rt
        .call("calc", "add", args(vec![Value::from(40), Value::from(2)]))
        .await
        .unwrap();
    assert_eq!(r.value, Value::from(42));
    assert_eq!(
        (r.served_by.as_str(), r.version.as_str()),
        ("calc", "2.1.0")
    );
    let here = rt.call("calc", "where", Value::Null).await.unwrap();
    assert_eq!(here.value, Value::from(std::process::id() as i64));
    let status = rt.module("calc").unwrap();
    assert!(status.in_process, "{status:?}");
    assert!(status.instances.is_empty(), "no worker: {status:?}");
    rt.shutdown().await;
}

/// Without the builtin, the same manifest starts its standalone worker.
#[tokio::test]
async fn without_the_builtin_its_worker_serves() {
    let mods = Modules::new();
    mods.add("calc", Lang::Rust, json!({"builtin": "adder"}));
    let rt = runtime();
    let report = rt.load_dir(mods.dir()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let status = rt.module("calc").unwrap();
    assert!(!status.in_process);
    let pid = rt.call("calc", "pid", Value::Null).await.unwrap().value;
    assert_ne!(
        pid,
        Value::from(std::process::id() as i64),
        "a worker process"
    );
    rt.shutdown().await;
}

/// A builtin the host lacks, with no worker to fall back on, is a load error naming the
/// file, the field and the builtins the host has; a builtin missing a declared
/// capability too. Other modules load.
#[tokio::test]
async fn a_builtin_the_host_lacks_is_a_clear_load_error() {
    let mods = Modules::new();
    let lacking = mods.add_raw(
        "hasher",
        r#"{"name": "hasher", "language": "rust", "version": "1.0.0", "builtin": "crypto"}"#,
    );
    mods.add(
        "calc",
        Lang::Rust,
        json!({"builtin": "adder", "capabilities": ["add", "mul"]}),
    );
    mods.add("fine", Lang::Rust, json!({}));
    let rt = runtime();
    rt.register_builtin("adder", adder());
    let report = rt.load_dir(mods.dir()).await;
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    let text: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let lacks = report
        .errors
        .iter()
        .find_map(|e| match e {
            LoadError::Manifest(m) if m.field.as_deref() == Some("builtin") => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_eq!(lacks.file, lacking.join("module.json"));
    assert!(
        lacks.message.contains("\"crypto\"") && lacks.message.contains("it has: adder"),
        "{}",
        lacks.message
    );
    assert!(
        text.iter().any(|t| t.contains("does not serve [\"mul\"]")),
        "{text:?}"
    );
    assert!(rt.module("fine").is_some());
    assert!(rt.module("hasher").is_none() && rt.module("calc").is_none());
    rt.shutdown().await;
}
