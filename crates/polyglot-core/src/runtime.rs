//! [`Runtime`]: the registry of loaded modules, the call path with its fallback chain,
//! reload without downtime, and graceful shutdown.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use polyglot_protocol::Value;
use polyglot_worker::Handler;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::build;
use crate::connection::ConnError;
use crate::discovery::discover;
use crate::error::{CallError, Cause, LoadError};
use crate::events::{EventKind, Events, RuntimeEvent};
use crate::manifest::{Fallback, Manifest};
use crate::module::{Attempt, CallTicket, Module};
use crate::status::ModuleStatus;

/// Calls in flight get this long to finish on shutdown or when their module is
/// replaced by a reload, before their workers are stopped anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How long calls in flight may take to finish on shutdown and reload.
    pub drain_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Options of one call.
#[derive(Debug, Default, Clone)]
pub struct CallOptions {
    /// The deadline, instead of the module's `timeoutMs`.
    pub timeout: Option<Duration>,
    /// Where progress notifications go, in order, before the result.
    pub progress: Option<mpsc::UnboundedSender<Value>>,
}

/// A call's result and who served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The result.
    pub value: Value,
    /// The implementation that served it: the module's name, a fallback module's name,
    /// or `module (fallback file)`.
    pub served_by: String,
    /// That implementation's version.
    pub version: String,
    /// Whether a fallback served it.
    pub fallback: bool,
    /// The worker instance that ran it.
    pub instance: usize,
    /// Time spent in the method, as the worker measured it.
    pub execution_time: Option<Duration>,
}

/// What loading a modules directory did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Modules loaded and ready.
    pub ready: Vec<String>,
    /// Problems: bad manifests (not loaded), failed builds and starts (loaded, but calls
    /// fall back until they recover).
    pub errors: Vec<LoadError>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// The module.
    pub module: String,
    /// The version that served before.
    pub old_version: String,
    /// The version that serves now.
    pub new_version: String,
}

/// The polyglot runtime. Cheap to clone; every clone is the same runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    config: RuntimeConfig,
    modules: ArcSwap<HashMap<String, Arc<Module>>>,
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    reload_lock: tokio::sync::Mutex<()>,
    events: Events,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new(RuntimeConfig::default())
    }
}

impl Runtime {
    /// An empty runtime. Load modules with [`Runtime::load_dir`] or [`Runtime::mount`].
    pub fn new(config: RuntimeConfig) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                config,
                modules: ArcSwap::from_pointee(HashMap::new()),
                shutting_down: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                reload_lock: tokio::sync::Mutex::new(()),
                events: Events::new(),
            }),
        }
    }

    /// Loads every module folder under `dir`: validates manifests, builds what needs
    /// building, starts workers and waits until they answer their first health check.
    /// One bad module never stops the others; its problem is in the report.
    pub async fn load_dir(&self, dir: &Path) -> LoadReport {
        let mut report = LoadReport::default();
        let (manifests, errors) = discover(dir);
        report.errors.extend(errors);
        let mut started = Vec::new();
        for m in manifests {
            let existing = self
                .inner
                .modules
                .load()
                .get(&m.name)
                .map(|e| e.manifest.file.clone());
            if let Some(other) = existing {
                report.errors.push(LoadError::Duplicate {
                    name: m.name,
                    file: m.file,
                    other,
                });
                continue;
            }
            let (module, err) = start_module(Arc::new(m), &self.inner.events).await;
            self.insert(module.clone());
            // File fallbacks are started with their module: wait for them too.
            started.extend(module.file_fallbacks.iter().cloned());
            match err {
                // Already reported; its calls fall back until a reload fixes it.
                Some(e) => report.errors.push(e),
                None => started.push(module),
            }
        }
        let waits: Vec<_> = started
            .into_iter()
            .map(|m| {
                tokio::spawn(async move {
                    let r = m
                        .wait_ready(Instant::now() + ready_budget(&m.manifest))
                        .await;
                    (m.label.clone(), r)
                })
            })
            .collect();
        for w in waits {
            match w.await {
                Ok((name, Ok(()))) => report.ready.push(name),
                Ok((name, Err(message))) => report.errors.push(LoadError::NotReady {
                    module: name,
                    message,
                }),
                Err(e) => tracing::error!("waiting for a module to start failed: {e}"),
            }
        }
        report
    }

    /// Serves a module in the host's own process with `handler`: no process hop.
    /// Replaces a module of the same name.
    pub fn mount(&self, handler: Arc<dyn Handler>) {
        let manifest = Manifest::in_process(handler.module(), handler.version());
        self.insert(Module::in_process(Arc::new(manifest), handler));
    }

    fn insert(&self, module: Arc<Module>) {
        let name = module.manifest.name.clone();
        self.inner.modules.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(name.clone(), module.clone());
            map
        });
    }

    /// Calls `method` of `module` with `params`, with the module's deadline.
    ///
    /// # Errors
    /// A [`CallError`] naming the module and method: not found, timeout, worker exited,
    /// the method's own error, unavailable (with every implementation's cause).
    pub async fn call(
        &self,
        module: &str,
        method: &str,
        params: Value,
    ) -> Result<Reply, CallError> {
        self.call_with(module, method, params, CallOptions::default())
            .await
    }

    /// [`Runtime::call`] with options: a deadline, progress notifications.
    ///
    /// # Errors
    /// As [`Runtime::call`].
    pub async fn call_with(
        &self,
        module: &str,
        method: &str,
        params: Value,
        opts: CallOptions,
    ) -> Result<Reply, CallError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(CallError::ShuttingDown);
        }
        let _global = GlobalTicket::enter(&self.inner);
        let Some(primary) = self.enter(module) else {
            return Err(CallError::ModuleNotFound {
                module: module.to_owned(),
            });
        };
        if let Some(methods) = primary.0.methods() {
            if !methods.iter().any(|m| m == method) {
                return Err(CallError::MethodNotFound {
                    module: module.to_owned(),
                    method: method.to_owned(),
                    offered: methods,
                });
            }
        }
        let deadline = Instant::now() + opts.timeout.unwrap_or(primary.0.manifest.timeout);
        let mut causes: Vec<Cause> = Vec::new();
        let mut visited: HashSet<String> = HashSet::from([module.to_owned()]);
        let mut chain: VecDeque<CallTicket> = VecDeque::from([primary]);
        let mut first = true;
        while let Some(ticket) = chain.pop_front() {
            let m = &ticket.0;
            if !first {
                if let Some(methods) = m.methods() {
                    if !methods.iter().any(|x| x == method) {
                        causes.push(Cause {
                            implementation: m.label.clone(),
                            reason: format!("does not offer method {method:?}"),
                        });
                        self.queue_fallbacks(m, &mut visited, &mut chain, &mut causes);
                        continue;
                    }
                }
            }
            match m
                .attempt(method, &params, deadline, opts.progress.clone())
                .await
            {
                Attempt::Done {
                    value,
                    instance,
                    execution_us,
                } => {
                    if !first {
                        tracing::info!(module, method, served_by = %m.label, "served by a fallback");
                        self.inner.events.emit(
                            module,
                            EventKind::FallbackUsed {
                                method: method.to_owned(),
                                served_by: m.label.clone(),
                            },
                        );
                    }
                    return Ok(Reply {
                        value,
                        served_by: m.label.clone(),
                        version: m.manifest.version.clone(),
                        fallback: !first,
                        instance,
                        execution_time: execution_us.map(Duration::from_micros),
                    });
                }
                Attempt::Unavailable(u) => {
                    causes.push(Cause {
                        implementation: m.label.clone(),
                        reason: u.0,
                    });
                    self.queue_fallbacks(m, &mut visited, &mut chain, &mut causes);
                }
                Attempt::Failed(e, instance) => {
                    let error = conn_error(e, m, method, instance, opts.timeout);
                    if first {
                        return Err(error);
                    }
                    return Err(CallError::FallbackFailed {
                        module: module.to_owned(),
                        method: method.to_owned(),
                        causes,
                        served_by: m.label.clone(),
                        error: Box::new(error),
                    });
                }
            }
            first = false;
        }
        Err(CallError::Unavailable {
            module: module.to_owned(),
            method: method.to_owned(),
            causes,
        })
    }

    /// Adds `m`'s fallbacks to the chain, depth first, each implementation once.
    fn queue_fallbacks(
        &self,
        m: &Arc<Module>,
        visited: &mut HashSet<String>,
        chain: &mut VecDeque<CallTicket>,
        causes: &mut Vec<Cause>,
    ) {
        let mut next = Vec::new();
        let mut files = m.file_fallbacks.iter();
        for f in &m.manifest.fallback {
            match f {
                Fallback::Module(name) => {
                    if !visited.insert(name.clone()) {
                        continue;
                    }
                    match self.enter(name) {
                        Some(t) => next.push(t),
                        None => causes.push(Cause {
                            implementation: name.clone(),
                            reason: "is not loaded".into(),
                        }),
                    }
                }
                Fallback::File(_) => {
                    if let Some(fm) = files.next() {
                        if visited.insert(fm.label.clone()) {
                            if let Some(t) = fm.enter() {
                                next.push(t);
                            }
                        }
                    }
                }
            }
        }
        for t in next.into_iter().rev() {
            chain.push_front(t);
        }
    }

    /// Registers a call on the current module of that name (a module being replaced by a
    /// reload hands over to its successor).
    fn enter(&self, name: &str) -> Option<CallTicket> {
        for _ in 0..8 {
            let m = self.inner.modules.load().get(name).cloned()?;
            if let Some(t) = m.enter() {
                return Some(t);
            }
        }
        None
    }

    /// Subscribes to the runtime's events from now on: workers started and exited, health
    /// changes, fallback use, reloads.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    /// Every loaded module, sorted by name.
    pub fn modules(&self) -> Vec<ModuleStatus> {
        let mut v: Vec<ModuleStatus> = self
            .inner
            .modules
            .load()
            .values()
            .map(|m| m.status())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// One module's status.
    pub fn module(&self, name: &str) -> Option<ModuleStatus> {
        self.inner.modules.load().get(name).map(|m| m.status())
    }

    /// Reloads a module without downtime: re-reads its manifest, builds, starts the new
    /// workers and waits for their handshake and health, switches new calls to them
    /// atomically, lets the old workers finish their calls, then stops them. If the new
    /// version fails to start, the old one keeps serving and the error says why.
    ///
    /// # Errors
    /// A [`LoadError`]: not found, bad manifest, failed build, new workers not ready.
    pub async fn reload(&self, name: &str) -> Result<ReloadReport, LoadError> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let old = self
            .inner
            .modules
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| LoadError::NotFound(name.to_owned()))?;
        if old.status().in_process {
            return Err(LoadError::NotReady {
                module: name.to_owned(),
                message: "an in-process module has no manifest to reload".into(),
            });
        }
        let manifest = Manifest::load(&old.manifest.dir)?;
        if manifest.name != name {
            return Err(LoadError::NotReady {
                module: name.to_owned(),
                message: format!(
                    "its manifest now names module {:?}; a reload keeps the name",
                    manifest.name
                ),
            });
        }
        let manifest = Arc::new(manifest);
        build::ensure_built(&manifest).await?;
        let (new, err) = start_module(manifest.clone(), &self.inner.events).await;
        if let Some(e) = err {
            new.stop_now().await;
            return Err(e);
        }
        if let Err(message) = new
            .wait_ready(Instant::now() + ready_budget(&manifest))
            .await
        {
            new.stop_now().await;
            tracing::warn!(
                module = name,
                "reload refused, the running version keeps serving: {message}"
            );
            return Err(LoadError::NotReady {
                module: name.to_owned(),
                message,
            });
        }
        self.insert(new);
        tracing::info!(module = name, old_version = %old.manifest.version, new_version = %manifest.version, "reloaded; draining the old workers");
        old.drain_and_stop(self.inner.config.drain_timeout).await;
        self.inner.events.emit(
            name,
            EventKind::ReloadDone {
                old_version: old.manifest.version.clone(),
                new_version: manifest.version.clone(),
            },
        );
        Ok(ReloadReport {
            module: name.to_owned(),
            old_version: old.manifest.version.clone(),
            new_version: manifest.version.clone(),
        })
    }

    /// Stops taking calls, lets calls in flight finish (up to the drain timeout), then
    /// stops every worker: `$shutdown`, a grace period, then kill.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.inner.config.drain_timeout;
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!(
                    in_flight = self.inner.in_flight.load(Ordering::SeqCst),
                    "drain deadline passed; stopping workers anyway"
                );
                break;
            }
        }
        let modules: Vec<Arc<Module>> = self.inner.modules.load().values().cloned().collect();
        let stops: Vec<_> = modules
            .into_iter()
            .map(|m| tokio::spawn(async move { m.stop_now().await }))
            .collect();
        for s in stops {
            let _ = s.await;
        }
    }
}

/// Starts a module and its file fallbacks; a failed build gives a module that takes no
/// calls (they fall back) and says why.
async fn start_module(
    manifest: Arc<Manifest>,
    events: &Events,
) -> (Arc<Module>, Option<LoadError>) {
    let name = manifest.name.clone();
    let file_fallbacks: Vec<Arc<Module>> = manifest
        .fallback
        .iter()
        .filter_map(|f| match f {
            Fallback::File(p) => Some(p),
            Fallback::Module(_) => None,
        })
        .map(|p| {
            let rel = p
                .strip_prefix(&manifest.dir)
                .unwrap_or(p)
                .display()
                .to_string();
            let fm = Arc::new(manifest.for_fallback_file(p));
            Module::start(
                fm,
                &name,
                format!("{name} (fallback {rel})"),
                Vec::new(),
                events,
            )
        })
        .collect();
    match build::ensure_built(&manifest).await {
        Ok(_) => (
            Module::start(manifest, &name, name.clone(), file_fallbacks, events),
            None,
        ),
        Err(e) => {
            tracing::error!(module = %name, "{e}");
            (
                Module::failed(
                    manifest,
                    name.clone(),
                    format!("its build failed: {}", e.reason),
                    file_fallbacks,
                ),
                Some(e.into()),
            )
        }
    }
}

/// How long a module may take to become ready: its handshake timeout, plus a health
/// check, plus its back-off so a first crash can be retried once.
fn ready_budget(m: &Manifest) -> Duration {
    m.handshake_timeout + m.health_check.timeout + m.restart.backoff_initial * 2
}

fn conn_error(
    e: ConnError,
    m: &Module,
    method: &str,
    instance: usize,
    timeout: Option<Duration>,
) -> CallError {
    let module = m.label.clone();
    let method = method.to_owned();
    match e {
        ConnError::Timeout => CallError::Timeout {
            module,
            method,
            timeout: timeout.unwrap_or(m.manifest.timeout),
        },
        ConnError::Closed(reason) => CallError::WorkerExited {
            module,
            method,
            instance,
            reason,
        },
        ConnError::Remote(e) => CallError::Remote {
            module,
            method,
            code: e.code,
            message: e.message,
            data: e.data,
        },
        ConnError::TooLarge(what, size) => CallError::FrameTooLarge {
            module,
            method,
            what,
            size,
            limit: m.manifest.max_frame,
        },
        ConnError::Overloaded => CallError::Overloaded {
            module,
            method,
            queue: m.manifest.max_queue,
        },
    }
}

/// Counts a call in the runtime's in-flight total, for the shutdown drain.
struct GlobalTicket<'a>(&'a Inner);

impl<'a> GlobalTicket<'a> {
    fn enter(inner: &'a Inner) -> GlobalTicket<'a> {
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        GlobalTicket(inner)
    }
}

impl Drop for GlobalTicket<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The default modules directory: `./polyglot-modules`.
pub fn default_modules_dir() -> PathBuf {
    PathBuf::from("polyglot-modules")
}
