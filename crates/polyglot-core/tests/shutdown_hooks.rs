//! Shutdown hooks ([`Runtime::on_shutdown`]): run by priority, equal priorities at once,
//! each cut off at its timeout, a failing or panicking one logged by name without holding
//! up the others, and run while modules still serve the hooks' calls (and only theirs).
//!
//! Each test runs on tokio's current-thread runtime, so that the log subscriber it sets for
//! its thread sees the hooks' tasks too.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyglot_core::{CallError, Runtime, Value};
use serde_json::json;
use support::{alive, args, Lang, Modules};

/// Everything logged on this thread while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The line that mentions `hook=name`.
    fn line_of(&self, name: &str) -> Option<String> {
        let key = format!("hook={name} ");
        self.text()
            .lines()
            .find(|l| l.contains(&key) && !l.contains("done"))
            .map(str::to_owned)
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the hooks did, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, what: String) {
        self.0.lock().unwrap().push(what);
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn at(&self, what: &str) -> usize {
        let entries = self.entries();
        entries
            .iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("no {what:?} in {entries:?}"))
    }
}

/// Registers a hook that notes its start and end, sleeping `ms` between them.
fn noting(rt: &Runtime, journal: &Journal, name: &'static str, priority: i32, ms: u64) {
    let journal = journal.clone();
    rt.on_shutdown(
        name,
        priority,
        Duration::from_secs(5),
        move |_rt| async move {
            journal.note(format!("{name} start"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            journal.note(format!("{name} end"));
            Ok(())
        },
    );
}

#[tokio::test]
async fn hooks_run_highest_priority_first_and_equal_priorities_at_once() {
    let rt = Runtime::default();
    let journal = Journal::default();
    // Registered out of order: the priority decides.
    noting(&rt, &journal, "last", -1, 0);
    noting(&rt, &journal, "same-a", 5, 200);
    noting(&rt, &journal, "first", 10, 50);
    noting(&rt, &journal, "same-b", 5, 200);
    let started = Instant::now();
    rt.shutdown().await;
    let j = &journal;
    assert_eq!(j.entries().len(), 8, "{:?}", j.entries());
    assert_eq!(j.at("first start"), 0, "{:?}", j.entries());
    assert_eq!(j.at("first end"), 1, "{:?}", j.entries());
    // Both of priority 5 start before either ends: they run at once.
    for start in ["same-a start", "same-b start"] {
        for end in ["same-a end", "same-b end"] {
            assert!(j.at(start) < j.at(end), "{:?}", j.entries());
        }
    }
    assert_eq!(j.at("last start"), 6, "{:?}", j.entries());
    assert!(
        started.elapsed() < Duration::from_millis(400 + 50 + 300),
        "the two of priority 5 overlap: {:?}",
        started.elapsed()
    );
}

/// Sets its flag when dropped: a hook cut off at its timeout has its future dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_cut_off_with_a_warning_naming_it() {
    let (logs, _guard) = Logs::capture();
    let rt = Runtime::default();
    let journal = Journal::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    rt.on_shutdown(
        "stuck",
        1,
        Duration::from_millis(100),
        move |_rt| async move {
            let _guard = Dropped(flag);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        },
    );
    noting(&rt, &journal, "after", 0, 0);
    let started = Instant::now();
    rt.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(dropped.load(Ordering::SeqCst), "the stuck hook was dropped");
    assert_eq!(journal.entries(), ["after start", "after end"]);
    let line = logs.line_of("stuck").expect("a line about the stuck hook");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("timed out"), "{line}");
    assert!(line.contains("timeout_ms=100"), "{line}");
}

#[tokio::test]
async fn a_hook_that_panics_or_fails_is_logged_and_the_others_and_the_shutdown_go_on() {
    let (logs, _guard) = Logs::capture();
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let pid = rt.module("w").unwrap().instances[0].pid.unwrap();
    let journal = Journal::default();
    rt.on_shutdown("panics", 2, Duration::from_secs(5), |_rt| async move {
        tokio::task::yield_now().await;
        panic!("the hook went wrong");
    });
    rt.on_shutdown("panics-at-once", 2, Duration::from_secs(5), |rt| {
        if rt.modules().len() == 1 {
            panic!("before its future was made");
        }
        async { Ok(()) }
    });
    rt.on_shutdown("fails", 2, Duration::from_secs(5), |_rt| async move {
        Err("the disk is full".into())
    });
    noting(&rt, &journal, "after", 1, 0);
    rt.shutdown().await;
    assert_eq!(journal.entries(), ["after start", "after end"]);
    assert!(!alive(pid), "the workers were stopped after the hooks");
    let line = logs.line_of("panics").expect("a line about the panic");
    assert!(line.contains("panicked"), "{line}");
    assert!(line.contains("the hook went wrong"), "{line}");
    let line = logs.line_of("panics-at-once").expect("a line about it");
    assert!(line.contains("before its future was made"), "{line}");
    let line = logs.line_of("fails").expect("a line about the failure");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("the disk is full"), "{line}");
}

#[tokio::test]
async fn a_hook_calls_modules_after_calls_in_flight_drained_and_before_workers_stop() {
    let mods = Modules::new();
    mods.add("w", Lang::Rust, json!({}));
    let rt = mods.start().await;
    let pid = rt.module("w").unwrap().instances[0].pid.unwrap();
    let outer = rt.clone();
    let seen = Arc::new(Mutex::new(None));
    let kept = Arc::new(Mutex::new(None));
    let (seen_by_hook, kept_by_hook) = (seen.clone(), kept.clone());
    rt.on_shutdown(
        "uses-w",
        0,
        Duration::from_secs(5),
        move |hook_rt| async move {
            let started = Instant::now();
            let refused = outer.call("w", "echo", args(vec![Value::from("x")])).await;
            let served = hook_rt
                .call("w", "echo", args(vec![Value::from("from a hook")]))
                .await?;
            let worker_alive = alive(pid);
            *seen_by_hook.lock().unwrap() = Some((started, refused, served.value, worker_alive));
            *kept_by_hook.lock().unwrap() = Some(hook_rt);
            Ok(())
        },
    );
    let slow = tokio::spawn({
        let rt = rt.clone();
        async move {
            let r = rt.call("w", "sleep", args(vec![300.into()])).await;
            (r, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rt.shutdown().await;
    let (slow_result, slow_done) = slow.await.unwrap();
    slow_result.expect("the call in flight at shutdown finished");
    let (hook_started, refused, served, worker_alive) =
        seen.lock().unwrap().take().expect("the hook ran");
    assert!(slow_done <= hook_started, "the hook ran after the drain");
    assert!(
        matches!(refused, Err(CallError::ShuttingDown)),
        "other handles are refused: {refused:?}"
    );
    assert_eq!(served, Value::from("from a hook"));
    assert!(worker_alive, "the worker still ran during the hook");
    assert!(!alive(pid), "and was stopped after it");
    // The hooks' handle is refused too once they are over.
    let hook_rt = kept.lock().unwrap().take().unwrap();
    assert!(matches!(
        hook_rt
            .call("w", "echo", args(vec![Value::from("late")]))
            .await,
        Err(CallError::ShuttingDown)
    ));
}

#[tokio::test]
async fn a_hook_registered_after_the_shutdown_does_not_run() {
    let rt = Runtime::default();
    let journal = Journal::default();
    rt.shutdown().await;
    noting(&rt, &journal, "late", 0, 0);
    rt.shutdown().await;
    assert!(journal.entries().is_empty());
}
