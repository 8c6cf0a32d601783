//! What a worker gets of the host, with real worker processes: a clean environment (the
//! host's secrets never reach it), the host variables its `inheritEnv` names, and the
//! resource limits of its manifest's `limits`, which fail an allocation or end the worker
//! like a crash.

mod support;

use std::sync::Once;
use std::time::Duration;

use polyglot_core::{CallError, CallOptions, EventKind, InstanceState, Value, WORKER_ENV};
use serde_json::json;
use support::{args, eventually, Lang, Modules, LANGUAGES};

/// A secret in the host's environment, as an operator's API key or cloud token is.
const SECRET: &str = "s3cr3t-never-in-a-worker";

/// Puts a secret and a variable to pass through into this test process's environment,
/// which the runtime's workers are started from. Once, before any test of this binary
/// starts a worker (each test calls it first); std's environment lock orders it with the
/// spawns of tests already running.
fn host_env() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        std::env::set_var("POLYGLOT_API_KEY", SECRET);
        std::env::set_var("ISOLATION_TEST_TOKEN", SECRET);
        std::env::set_var("ISOLATION_TEST_PASSED", "passed through");
    });
}

/// A Python worker with methods that run into limits, written into `mods` as module
/// `name` with `extra` merged into its manifest.
fn limited(mods: &Modules, name: &str, extra: serde_json::Value) {
    let dir = mods.dir().join(name);
    let script = dir.join("worker.py");
    let mut manifest = json!({"args": [script.display().to_string()]});
    support::merge(&mut manifest, extra);
    mods.add(name, Lang::Python, manifest);
    std::fs::write(&script, LIMITED_WORKER).unwrap();
}

const LIMITED_WORKER: &str = r#"
import os
import resource

from polyglot_worker import MethodError, Worker

worker = Worker(os.environ["POLYGLOT_MODULE"], version=os.environ["POLYGLOT_VERSION"])


@worker.method
def spin() -> None:
    while True:
        pass


@worker.method
def alloc(mb: int) -> int:
    try:
        block = bytearray(mb << 20)
    except MemoryError:
        raise MethodError("OUT_OF_MEMORY", f"cannot allocate {mb} MB") from None
    return len(block) >> 20


@worker.method
def limits() -> dict:
    def get(r: int) -> list:
        return [-1 if v == resource.RLIM_INFINITY else v for v in resource.getrlimit(r)]
    return {
        "data": get(resource.RLIMIT_DATA),
        "cpu": get(resource.RLIMIT_CPU),
        "core": get(resource.RLIMIT_CORE)[:1],
        "nofile": get(resource.RLIMIT_NOFILE),
    }


@worker.method
def environ() -> list:
    return sorted(os.environ)


worker.serve()
"#;

fn text(v: &str) -> Value {
    Value::from(v)
}

#[tokio::test]
async fn the_hosts_secrets_never_reach_a_worker() {
    host_env();
    for lang in LANGUAGES {
        let mods = Modules::new();
        mods.add("w", lang, json!({"env": {"MODE": "test"}}));
        let rt = mods.start().await;
        let env = |name: &'static str| {
            let rt = rt.clone();
            async move {
                rt.call("w", "env", args(vec![text(name)]))
                    .await
                    .unwrap()
                    .value
            }
        };
        assert_eq!(env("POLYGLOT_API_KEY").await, Value::Null, "{lang:?}");
        assert_eq!(env("ISOLATION_TEST_TOKEN").await, Value::Null, "{lang:?}");
        assert_eq!(env("ISOLATION_TEST_PASSED").await, Value::Null, "{lang:?}");
        let path = std::env::var("PATH").unwrap();
        assert_eq!(env("PATH").await, text(&path), "{lang:?}");
        assert_eq!(env("MODE").await, text("test"), "{lang:?}");
        assert_eq!(env("POLYGLOT_MODULE").await, text("w"), "{lang:?}");
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn a_worker_has_nothing_but_the_allowlist_its_env_and_the_protocols_variables() {
    host_env();
    let mods = Modules::new();
    limited(&mods, "w", json!({"env": {"MODE": "test"}}));
    let rt = mods.start().await;
    let names = rt.call("w", "environ", args(vec![])).await.unwrap().value;
    let Value::Array(names) = names else {
        panic!("{names:?}")
    };
    let manifest_env = ["MODE", "PYTHONPATH", "PYTHONUNBUFFERED"];
    for n in &names {
        let n = n.as_str().unwrap();
        assert!(
            WORKER_ENV.contains(&n) || manifest_env.contains(&n) || n.starts_with("POLYGLOT_"),
            "the worker got {n} from the host: {names:?}"
        );
    }
    assert!(names.contains(&text("PATH")), "{names:?}");
    assert!(!names.contains(&text("POLYGLOT_API_KEY")), "{names:?}");
    rt.shutdown().await;
}

#[tokio::test]
async fn inherit_env_passes_a_named_host_variable_through() {
    host_env();
    let mods = Modules::new();
    mods.add(
        "w",
        Lang::Python,
        json!({"inheritEnv": ["ISOLATION_TEST_PASSED", "ISOLATION_TEST_ABSENT"]}),
    );
    let rt = mods.start().await;
    let env = |name: &'static str| {
        let rt = rt.clone();
        async move {
            rt.call("w", "env", args(vec![text(name)]))
                .await
                .unwrap()
                .value
        }
    };
    assert_eq!(env("ISOLATION_TEST_PASSED").await, text("passed through"));
    assert_eq!(env("ISOLATION_TEST_ABSENT").await, Value::Null);
    assert_eq!(env("ISOLATION_TEST_TOKEN").await, Value::Null);
    rt.shutdown().await;
}

#[tokio::test]
async fn limits_are_set_in_the_worker() {
    host_env();
    let mods = Modules::new();
    limited(
        &mods,
        "w",
        json!({"limits": {"memoryMb": 256, "cpuSeconds": 60, "openFiles": 64}}),
    );
    let rt = mods.start().await;
    let got = rt.call("w", "limits", args(vec![])).await.unwrap().value;
    let grace = polyglot_core::CPU_LIMIT_GRACE_SECS as i64;
    assert_eq!(
        got.to_json(),
        json!({
            "data": [256 << 20, 256 << 20],
            "cpu": [60, 60 + grace],
            "core": [0],
            "nofile": [64, 64],
        })
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_cpu_limit_ends_a_spinning_worker_with_sigxcpu_and_it_comes_back() {
    host_env();
    let mods = Modules::new();
    limited(&mods, "w", json!({"limits": {"cpuSeconds": 1}}));
    let rt = mods.start().await;
    let mut events = rt.subscribe();
    let pid_before = rt.module("w").unwrap().instances[0].pid;
    let opts = CallOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CallOptions::default()
    };
    let started = std::time::Instant::now();
    match rt.call_with("w", "spin", args(vec![]), opts).await {
        Err(CallError::WorkerExited { reason, .. }) => {
            assert!(reason.contains("SIGXCPU"), "{reason}")
        }
        other => panic!("the spinning worker must be ended: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ended at its CPU limit, not the call's deadline"
    );
    let exited = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let EventKind::WorkerExited { reason, .. } = events.recv().await.unwrap().kind {
                return reason;
            }
        }
    })
    .await
    .expect("a WorkerExited event");
    assert!(exited.contains("SIGXCPU"), "{exited}");
    eventually(Duration::from_secs(10), "the worker is back", || {
        rt.module("w").unwrap().instances[0].state == InstanceState::Healthy
    })
    .await;
    let status = rt.module("w").unwrap();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("SIGXCPU"),
        "{status:?}"
    );
    assert_eq!(status.restarts, 1);
    assert_ne!(status.instances[0].pid, pid_before, "a new process serves");
    let got = rt.call("w", "alloc", args(vec![1.into()])).await.unwrap();
    assert_eq!(got.value.to_json(), json!(1));
    rt.shutdown().await;
}

#[tokio::test]
async fn a_memory_limit_fails_a_big_allocation_and_the_worker_serves_on() {
    host_env();
    let mods = Modules::new();
    limited(&mods, "w", json!({"limits": {"memoryMb": 256}}));
    let rt = mods.start().await;
    let pid = rt.module("w").unwrap().instances[0].pid;
    match rt.call("w", "alloc", args(vec![512.into()])).await {
        Err(CallError::Remote { code, message, .. }) => {
            assert_eq!(code, "OUT_OF_MEMORY", "{message}")
        }
        other => panic!("512 MB must not fit in a 256 MB limit: {other:?}"),
    }
    let small = rt.call("w", "alloc", args(vec![32.into()])).await.unwrap();
    assert_eq!(small.value.to_json(), json!(32));
    assert_eq!(
        rt.module("w").unwrap().instances[0].pid,
        pid,
        "the same worker"
    );
    rt.shutdown().await;
}

/// A descriptor the host holds without close-on-exec (as one inherited from the shell
/// that started it) does not pass to its workers: only their stdio does.
#[tokio::test]
async fn a_worker_inherits_no_descriptor_of_the_host_but_its_stdio() {
    host_env();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("host-only-descriptor");
    let file = std::fs::File::create(&marker).unwrap();
    // `dup` makes a descriptor without close-on-exec, which std's own never are.
    #[allow(unsafe_code)]
    // SAFETY: `dup` of a descriptor this function owns; the copy is closed below.
    let leaky = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&file)) };
    assert!(leaky > 2, "dup failed");
    for lang in [Lang::Rust, Lang::Python] {
        let mods = Modules::new();
        mods.add("w", lang, json!({"instances": 1}));
        let rt = mods.start().await;
        let pid = rt.module("w").unwrap().instances[0].pid.expect("a pid");
        let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name(), std::fs::read_link(e.path()).ok()?))
            })
            .collect();
        assert!(
            !fds.iter().any(|(_, target)| *target == marker),
            "{lang:?}: the worker holds the host's descriptor: {fds:?}"
        );
        rt.shutdown().await;
    }
    #[allow(unsafe_code)]
    // SAFETY: closes the copy made above, once.
    unsafe {
        libc::close(leaky)
    };
}
