//! Shutdown hooks: work a library user registers with [`Runtime::on_shutdown`], run by
//! [`Runtime::shutdown`] once callers are refused and the calls in flight drained, and
//! before any worker is stopped, so that a hook can still call modules (flush a cache
//! through one, ask a worker to save its state) and nothing a hook needs is gone.
//!
//! Hooks run by priority, highest first; hooks of one priority run at once, each in a task
//! of its own. Each is cut off at its timeout; one that fails, panics or times out is
//! logged with its name and does not hold up the others or the shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::chain;
use crate::runtime::Runtime;

/// What a shutdown hook may fail with: any error (`?` converts one).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type HookFuture = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>>;

/// One registered hook.
struct Hook {
    name: String,
    priority: i32,
    timeout: Duration,
    run: Box<dyn FnOnce(Runtime) -> HookFuture + Send>,
}

/// The hooks of a runtime, until its shutdown takes them.
pub(crate) struct ShutdownHooks {
    /// The hooks; `None` once the shutdown has taken them, and one registered then never
    /// runs.
    hooks: Mutex<Option<Vec<Hook>>>,
    /// True while the hooks run: calls through the handle given to them are taken.
    running: AtomicBool,
}

impl Default for ShutdownHooks {
    fn default() -> ShutdownHooks {
        ShutdownHooks {
            hooks: Mutex::new(Some(Vec::new())),
            running: AtomicBool::new(false),
        }
    }
}

impl ShutdownHooks {
    fn add(&self, hook: Hook) -> Result<(), Hook> {
        match self.lock().as_mut() {
            Some(hooks) => {
                hooks.push(hook);
                Ok(())
            }
            None => Err(hook),
        }
    }

    fn take(&self) -> Vec<Hook> {
        self.lock().take().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Hook>>> {
        self.hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Runtime {
    /// Registers `hook` to run when the runtime shuts down ([`Runtime::shutdown`]): after
    /// new calls are refused and the calls in flight have drained, before any worker is
    /// stopped. Hooks run by `priority`, highest first; hooks of equal priority run
    /// concurrently. Each gets `timeout`: a hook still running then is cut off (its future
    /// dropped) with a warning that names it. A hook that returns an error or panics is
    /// logged with its name; the other hooks and the shutdown go on.
    ///
    /// The hook is given a handle of this runtime whose calls are served while the hooks
    /// run, although every other caller is refused by then: call modules through that
    /// handle, not through a clone captured earlier (and not after the hook has
    /// returned). A hook registered once the shutdown has begun does not run.
    ///
    /// ```no_run
    /// # async fn run(runtime: polyglot_core::Runtime) {
    /// use std::time::Duration;
    /// use polyglot_core::Value;
    ///
    /// runtime.on_shutdown("flush-cache", 10, Duration::from_secs(5), |rt| async move {
    ///     rt.call("cache", "flush", Value::Array(Vec::new())).await?;
    ///     Ok(())
    /// });
    /// runtime.shutdown().await; // flushes the cache, then stops the workers
    /// # }
    /// ```
    pub fn on_shutdown<F, Fut>(
        &self,
        name: impl Into<String>,
        priority: i32,
        timeout: Duration,
        hook: F,
    ) where
        F: FnOnce(Runtime) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let hook = Hook {
            name: name.into(),
            priority,
            timeout,
            run: Box::new(move |rt| Box::pin(hook(rt))),
        };
        if let Err(hook) = self.inner().shutdown_hooks.add(hook) {
            tracing::warn!(hook = %hook.name, "a shutdown hook registered after the shutdown began does not run");
        }
    }

    /// Whether this handle's calls are taken although the runtime is shutting down: it is
    /// the one given to the shutdown hooks, and they are running.
    pub(crate) fn hook_may_call(&self) -> bool {
        self.for_hooks && self.inner().shutdown_hooks.running.load(Ordering::SeqCst)
    }

    /// Runs the registered hooks, by priority, and returns when every one has ended or
    /// been cut off.
    pub(crate) async fn run_shutdown_hooks(&self) {
        let hooks_of = &self.inner().shutdown_hooks;
        let mut hooks = hooks_of.take();
        if hooks.is_empty() {
            return;
        }
        hooks.sort_by_key(|h| std::cmp::Reverse(h.priority));
        let mut handle = self.clone();
        handle.for_hooks = true;
        hooks_of.running.store(true, Ordering::SeqCst);
        tracing::info!(hooks = hooks.len(), "running the shutdown hooks");
        let mut hooks = hooks.into_iter().peekable();
        while let Some(first) = hooks.next() {
            let priority = first.priority;
            let mut group = vec![first];
            while let Some(h) = hooks.next_if(|h| h.priority == priority) {
                group.push(h);
            }
            let runs: Vec<_> = group
                .into_iter()
                .map(|h| tokio::spawn(run_hook(h, handle.clone())))
                .collect();
            for r in runs {
                // `run_hook` catches what its hook does; it cannot panic itself.
                let _ = r.await;
            }
        }
        hooks_of.running.store(false, Ordering::SeqCst);
    }
}

/// Runs one hook in a task of its own, within its timeout, and logs how it ended.
async fn run_hook(hook: Hook, rt: Runtime) {
    let Hook {
        name,
        priority,
        timeout,
        run,
    } = hook;
    let started = std::time::Instant::now();
    // Called inside the task: a hook that panics before its first await is caught too.
    let mut task = tokio::spawn(async move { run(rt).await });
    let took_ms = || started.elapsed().as_millis() as u64;
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(Ok(()))) => {
            tracing::info!(hook = %name, priority, took_ms = took_ms(), "shutdown hook done")
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(hook = %name, priority, error = %chain(&*e), "shutdown hook failed; the shutdown goes on")
        }
        Ok(Err(e)) => {
            let panic = if e.is_panic() {
                panic_message(e.into_panic())
            } else {
                "cancelled".to_owned()
            };
            tracing::error!(hook = %name, priority, panic = %panic, "shutdown hook panicked; the shutdown goes on")
        }
        Err(_) => {
            task.abort();
            tracing::warn!(hook = %name, priority, timeout_ms = timeout.as_millis() as u64,
                "shutdown hook timed out and was cut off; the shutdown goes on")
        }
    }
}

/// The text a panic was raised with, when it was a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "(not a string)".to_owned(),
        },
    }
}
