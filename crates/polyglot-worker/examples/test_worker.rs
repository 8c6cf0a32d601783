//! The Rust worker the runtime's end-to-end tests start. Its methods and start-up
//! behaviours match `tests/workers/python_worker.py`, so every scenario runs against a
//! worker in each language.
//!
//! Methods: echo, add, fail, boom, sleep(ms, cancelMarker?), progress, crash, garbage, unknownId, pid, env,
//! version, big, stray. Environment: TEST_BANNER, TEST_NO_HANDSHAKE, TEST_EXIT_AT_START,
//! TEST_BAD_PROTOCOL, TEST_HEALTH (unhealthy | degraded), TEST_HEALTH_FILE, TEST_MAX_CONCURRENCY,
//! TEST_FAIL_PERCENT (that percent of `echo` calls, spread evenly, fail with `INJECTED`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyglot_worker::{arg, opt_arg, Map, MethodError, Value, Worker};

/// Writes its file when dropped: a cancelled call's future is dropped mid-sleep.
struct CancelMarker(Option<String>);

impl Drop for CancelMarker {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::write(path, "cancelled");
        }
    }
}

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    if let Some(code) = env("TEST_EXIT_AT_START") {
        eprintln!("fatal: cannot load model");
        std::process::exit(code.parse().unwrap_or(1));
    }
    if env("TEST_NO_HANDSHAKE").is_some() {
        eprintln!("starting...");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if let Some(banner) = env("TEST_BANNER") {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{banner}");
        let _ = out.flush();
    }
    if env("TEST_BAD_PROTOCOL").is_some() {
        println!(r#"{{"polyglot":99,"module":"x","version":"1","methods":[]}}"#);
        std::thread::sleep(Duration::from_secs(3600));
    }
    let module = env("POLYGLOT_MODULE").unwrap_or_else(|| "test-worker".into());
    let version = env("POLYGLOT_VERSION").unwrap_or_else(|| "0.0.0".into());
    let max = env("TEST_MAX_CONCURRENCY")
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let fail_percent: u64 = env("TEST_FAIL_PERCENT")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(100);
    let echoes = Arc::new(AtomicU64::new(0));
    Worker::new(module, version.clone())
        .max_concurrency(max)
        .method("echo", move |p: Value, _| {
            // Call n fails when n * percent / 100 steps past a whole number: evenly spread.
            let n = echoes.fetch_add(1, Ordering::Relaxed);
            let fail = (n + 1) * fail_percent / 100 > n * fail_percent / 100;
            async move {
                if fail {
                    return Err(MethodError::new(
                        "INJECTED",
                        "failed on purpose (TEST_FAIL_PERCENT)",
                    ));
                }
                Ok(match p {
                    Value::Array(mut a) if a.len() == 1 => a.pop().unwrap_or_default(),
                    other => other,
                })
            }
        })
        .method("add", |p: Value, _| async move {
            match (arg(&p, 0, "a")?.as_i64(), arg(&p, 1, "b")?.as_i64()) {
                (Some(a), Some(b)) => Ok(Value::from(a + b)),
                _ => Err(MethodError::invalid_params("add takes two integers")),
            }
        })
        .method("fail", |p: Value, _| async move {
            let code = arg(&p, 0, "code")?.as_str().unwrap_or("FAILED").to_owned();
            let msg = arg(&p, 1, "message")?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Err(MethodError::new(code, msg))
        })
        .method("boom", |_p: Value, _| async move {
            let fail = true;
            if fail {
                panic!("boom");
            }
            Ok(Value::Null)
        })
        .method("sleep", |p: Value, _| async move {
            let ms = arg(&p, 0, "ms")?.as_u64().unwrap_or(0);
            // Written when the call is cancelled, so tests can see `$cancel` arrived.
            let marker = opt_arg(&p, 1, "cancelMarker")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let guard = CancelMarker(marker);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            std::mem::forget(guard);
            Ok(Value::from(ms))
        })
        .method("progress", |p: Value, ctx| async move {
            let n = arg(&p, 0, "n")?.as_u64().unwrap_or(0);
            for i in 1..=n {
                let mut step = Map::new();
                step.insert("step".into(), Value::from(i));
                ctx.progress(Value::Map(step));
                tokio::task::yield_now().await;
            }
            Ok(Value::from(n))
        })
        .method("crash", |p: Value, _| async move {
            let code = opt_arg(&p, 0, "code").and_then(Value::as_i64).unwrap_or(3);
            std::process::exit(code as i32)
        })
        .method("garbage", |_p: Value, ctx| async move {
            ctx.write_raw_for_tests(b"this is not protocol\n");
            Ok(Value::from("sent"))
        })
        .method("unknownId", |_p: Value, ctx| async move {
            ctx.write_raw_for_tests(b"{\"id\":987654321987,\"result\":1}\n");
            Ok(Value::from("sent"))
        })
        .method("pid", |_p: Value, _| async move {
            Ok(Value::from(std::process::id()))
        })
        .method("env", |p: Value, _| async move {
            let name = arg(&p, 0, "name")?.as_str().unwrap_or_default().to_owned();
            Ok(Value::from(std::env::var(name).ok()))
        })
        .method("version", move |_p: Value, _| {
            let v = version.clone();
            async move { Ok(Value::from(v)) }
        })
        .method("big", |p: Value, _| async move {
            let n = arg(&p, 0, "n")?.as_u64().unwrap_or(0) as usize;
            Ok(Value::from("x".repeat(n)))
        })
        .method("stray", |_p: Value, _| async move {
            // Careless code printing to stdout: the SDK keeps it off the protocol.
            println!("stray output from a handler");
            Ok(Value::from("printed"))
        })
        .health(|| async {
            let unhealthy = std::env::var("TEST_HEALTH").is_ok_and(|v| v == "unhealthy")
                || std::env::var("TEST_HEALTH_FILE")
                    .is_ok_and(|f| std::path::Path::new(&f).exists());
            if unhealthy {
                Err(MethodError::new("UNHEALTHY", "told to be unhealthy"))
            } else if std::env::var("TEST_HEALTH").is_ok_and(|v| v == "degraded") {
                let mut m = Map::new();
                m.insert("status".into(), Value::from("degraded"));
                m.insert("reason".into(), Value::from("warming up"));
                Ok(Value::Map(m))
            } else {
                Ok(Value::Null)
            }
        })
        .serve()
}
