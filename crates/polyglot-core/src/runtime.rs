//! [`Runtime`]: the registry of loaded modules, the call path with its routing between
//! versions and its fallback chain, reload without downtime, and graceful shutdown. (The
//! deployment operations are in `deployment::api`.)

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use polyglot_hotswap::{DeployEvent, Outcome, ShadowOutcome, VersionId, EVENT_BUFFER};
use polyglot_protocol::Value;
use polyglot_worker::Handler;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::time::Instant;

use crate::connection::ConnError;
use crate::deployment::state::StateStore;
use crate::deployment::{Deployment, DeploymentConfig};
use crate::discovery::discover;
use crate::error::{CallError, Cause, LoadError};
use crate::events::{EventKind, Events, RuntimeEvent};
use crate::manifest::{Fallback, Manifest};
use crate::module::{ready_budget, Attempt, CallTicket, Module, Policies};
use crate::resilience::{self, Admit, BreakerState, Transition};
use crate::status::ModuleStatus;
use crate::telemetry::{self, CallRecord};

/// Calls in flight get this long to finish on shutdown or when their module is
/// replaced by a reload, before their workers are stopped anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a [`Runtime`]. (Deployments have their own:
/// [`DeploymentConfig`], given to [`Runtime::with_deployments`].)
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

/// Options of one call. (The routing key, which keeps a caller on one version while a
/// deployment splits the traffic, is an argument of [`Runtime::call_keyed`].)
#[derive(Debug, Default, Clone)]
pub struct CallOptions {
    /// The deadline, instead of the module's `timeoutMs`.
    pub timeout: Option<Duration>,
    /// Where progress notifications go, in order, before the result.
    pub progress: Option<mpsc::UnboundedSender<Value>>,
    /// Attempts in all for this call, instead of the module's `retry.maxAttempts` (1: no
    /// retry). Only a method the manifest marks idempotent is ever retried.
    pub max_attempts: Option<u32>,
}

/// A call's result and who served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The result.
    pub value: Value,
    /// The implementation that served it: the module's name, a fallback module's name,
    /// or `module (fallback file)`.
    pub served_by: String,
    /// That implementation's version: the version id its deployment knows it by (the
    /// manifest's `version`, with a `#n` suffix when the same version was deployed again
    /// while still running), or an in-process handler's version.
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

/// What [`Runtime::unload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadReport {
    /// The module.
    pub module: String,
    /// The version that served until then (`None`: it had no active version).
    pub version: Option<String>,
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
    /// Whether only the module's call policies changed, and the running workers took
    /// them (no new workers started).
    pub policies_only: bool,
}

/// The polyglot runtime. Cheap to clone; every clone is the same runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
    /// True for the handle given to shutdown hooks: its calls are taken while the hooks
    /// run, after every other caller is refused.
    pub(crate) for_hooks: bool,
}

/// What a module name maps to.
#[derive(Clone)]
pub(crate) enum Slot {
    /// Served in the host's process by a mounted handler: one version, no deployments.
    Mounted(Arc<Module>),
    /// Loaded from a folder: its versions under a deployer.
    Deployed(Arc<Deployment>),
}

impl Slot {
    /// The manifest file of what serves now, for duplicate reports.
    fn file(&self) -> PathBuf {
        match self {
            Slot::Mounted(m) => m.manifest.file.clone(),
            Slot::Deployed(d) => d
                .active()
                .map(|m| m.manifest.file.clone())
                .unwrap_or_default(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) config: RuntimeConfig,
    pub(crate) deploy_config: DeploymentConfig,
    pub(crate) modules: ArcSwap<HashMap<String, Slot>>,
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Reloads and deployments that create a module, one at a time.
    pub(crate) control: tokio::sync::Mutex<()>,
    pub(crate) events: Events,
    /// Every deployer's events, forwarded.
    pub(crate) deploy_events: broadcast::Sender<DeployEvent>,
    pub(crate) state: Option<StateStore>,
    /// Handlers compiled into the host, by the name manifests give as `builtin`.
    builtins: std::sync::RwLock<HashMap<String, Arc<dyn Handler>>>,
    /// What library users asked to run at shutdown.
    pub(crate) shutdown_hooks: crate::shutdown::ShutdownHooks,
}

impl Inner {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn slot(&self, name: &str) -> Option<Slot> {
        self.modules.load().get(name).cloned()
    }

    pub(crate) fn insert(&self, name: &str, slot: Slot) {
        let replaced = self.modules.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(name.to_owned(), slot.clone());
            map
        });
        // A deployment replaced (by a mounted handler) stops serving: drain its versions.
        if let Some(Slot::Deployed(old)) = replaced.get(name) {
            let replaced_by_itself = matches!(&slot, Slot::Deployed(d) if Arc::ptr_eq(d, old));
            if !replaced_by_itself {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let (old, drain) = (old.clone(), self.config.drain_timeout);
                    rt.spawn(async move {
                        old.stop_tasks().await;
                        old.drain_all(drain).await;
                    });
                }
            }
        }
    }

    /// Removes `name` if it still maps to `dep`.
    pub(crate) fn remove_if(&self, name: &str, dep: &Arc<Deployment>) {
        self.modules.rcu(|map| {
            let mut map = HashMap::clone(map);
            if matches!(map.get(name), Some(Slot::Deployed(d)) if Arc::ptr_eq(d, dep)) {
                map.remove(name);
            }
            map
        });
    }

    /// Writes every deployer's snapshot to the state file (if there is one). Blocking:
    /// call it from a blocking task.
    pub(crate) fn persist(&self) {
        let Some(store) = &self.state else { return };
        let _one_at_a_time = store
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let modules: BTreeMap<String, _> = self
            .modules
            .load()
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Deployed(d) if !d.is_empty() => Some((name.clone(), d.persisted())),
                _ => None,
            })
            .collect();
        if let Err(e) = store.write(modules) {
            tracing::error!(file = %store.path().display(), error = %e, "cannot write the deployment state file");
        }
    }
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new(RuntimeConfig::default())
    }
}

impl Runtime {
    /// An empty runtime with the default [`DeploymentConfig`] (nothing persisted). Load
    /// modules with [`Runtime::load_dir`] or [`Runtime::mount`].
    pub fn new(config: RuntimeConfig) -> Runtime {
        Runtime::with_deployments(config, DeploymentConfig::default())
    }

    /// An empty runtime whose deployments judge, keep and persist versions as `deployments`
    /// says.
    pub fn with_deployments(config: RuntimeConfig, deployments: DeploymentConfig) -> Runtime {
        let state = deployments.state_file.clone().map(StateStore::new);
        Runtime {
            inner: Arc::new(Inner {
                config,
                deploy_config: deployments,
                modules: ArcSwap::from_pointee(HashMap::new()),
                shutting_down: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                control: tokio::sync::Mutex::new(()),
                events: Events::new(),
                deploy_events: broadcast::channel(EVENT_BUFFER).0,
                state,
                builtins: std::sync::RwLock::new(HashMap::new()),
                shutdown_hooks: crate::shutdown::ShutdownHooks::default(),
            }),
            for_hooks: false,
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Loads every module folder under `dir`: validates manifests, builds what needs
    /// building, starts workers and waits until they answer their first health check.
    /// One bad module never stops the others; its problem is in the report.
    ///
    /// With a state file ([`DeploymentConfig::state_file`]), a module comes back on the
    /// version that was active when the state was written, from that version's folder,
    /// with its deployment history; a state file that cannot be read is reported here and
    /// moved aside.
    pub async fn load_dir(&self, dir: &Path) -> LoadReport {
        let mut report = LoadReport::default();
        if let Some(store) = &self.inner.state {
            report.errors.extend(store.ensure_loaded());
        }
        let (manifests, errors) = discover(dir);
        report.errors.extend(errors);
        let mut started = Vec::new();
        let mut added = Vec::new();
        for m in manifests {
            let name = m.name.clone();
            if self.add_found(m, &mut report, &mut started).await {
                added.push(name);
            }
        }
        wait_started(started, &mut report).await;
        for name in added {
            self.emit_loaded(&name);
        }
        report
    }

    /// Loads one module folder into a running runtime, as [`Runtime::load_dir`] loads
    /// each of its folders: validates the manifest, builds, starts the workers (or serves
    /// it in process by its builtin) and waits until they answer their first health
    /// check. A module of the same name already loaded is not replaced (that is
    /// [`Runtime::reload`]'s or [`Runtime::deploy`]'s work): it is reported as a
    /// duplicate. Emits [`EventKind::ModuleLoaded`] when the module was added.
    ///
    /// The report says what happened: the module in `ready`; or in `errors` a bad
    /// manifest or a duplicate (nothing added), or a failed build or start (added, its
    /// calls fall back until a reload fixes it).
    pub async fn load_module(&self, dir: &Path) -> LoadReport {
        let mut report = LoadReport::default();
        let m = match Manifest::load(dir) {
            Ok(m) => m,
            Err(e) => {
                report.errors.push(e.into());
                return report;
            }
        };
        let name = m.name.clone();
        if self.inner.is_shutting_down() {
            report.errors.push(LoadError::NotReady {
                module: name,
                message: "the runtime is shutting down and loads nothing more".into(),
            });
            return report;
        }
        let mut started = Vec::new();
        let added = {
            // Not while a deployment or a reload creates or replaces a module.
            let _one_at_a_time = self.inner.control.lock().await;
            self.add_found(m, &mut report, &mut started).await
        };
        wait_started(started, &mut report).await;
        if added {
            tracing::info!(module = %name, dir = %dir.display(), "module loaded");
            self.emit_loaded(&name);
        }
        report
    }

    /// Removes module `name` from the runtime: new calls to it find no such module (and
    /// calls to a module it is the fallback of go on down their chain), its deployment
    /// stops where it is, and every running version of it lets its calls in flight
    /// finish (up to the drain timeout) before its workers are stopped; returns once they
    /// are. With a state file, the module's entry leaves it. Emits
    /// [`EventKind::ModuleUnloaded`].
    ///
    /// # Errors
    /// [`LoadError::NotFound`] when no module of that name is loaded.
    pub async fn unload(&self, name: &str) -> Result<UnloadReport, LoadError> {
        let _one_at_a_time = self.inner.control.lock().await;
        let mut removed = None;
        self.inner.modules.rcu(|map| {
            let mut map = HashMap::clone(map);
            removed = map.remove(name);
            map
        });
        let Some(slot) = removed else {
            return Err(LoadError::NotFound(name.to_owned()));
        };
        let version = slot_status(&slot).map(|s| s.version);
        tracing::info!(module = name, version = ?version, "unloading: draining its calls, then stopping its workers");
        let drain = self.inner.config.drain_timeout;
        match &slot {
            Slot::Mounted(m) => m.drain_and_stop(drain).await,
            Slot::Deployed(d) => {
                d.stop_tasks().await;
                d.drain_all(drain).await;
            }
        }
        if self.inner.state.is_some() {
            let inner = self.inner.clone();
            let _ = tokio::task::spawn_blocking(move || inner.persist()).await;
        }
        self.inner.events.emit(
            name,
            EventKind::ModuleUnloaded {
                version: version.clone().unwrap_or_default(),
            },
        );
        tracing::info!(module = name, "module unloaded");
        Ok(UnloadReport {
            module: name.to_owned(),
            version,
        })
    }

    /// Emits [`EventKind::ModuleLoaded`] for module `name` as it is now.
    fn emit_loaded(&self, name: &str) {
        let version = self.module(name).map(|s| s.version).unwrap_or_default();
        self.inner
            .events
            .emit(name, EventKind::ModuleLoaded { version });
    }

    /// Adds the module of manifest `m`, found in a folder: served in process by its
    /// builtin when this runtime has it, else given its deployment and its workers started
    /// (their modules, file fallbacks included, go to `started` to be waited for).
    /// Problems go to `report`. Returns whether it was added: not for a duplicate name or
    /// a builtin that cannot serve.
    async fn add_found(
        &self,
        m: Manifest,
        report: &mut LoadReport,
        started: &mut Vec<Arc<Module>>,
    ) -> bool {
        if let Some(other) = self.inner.slot(&m.name) {
            report.errors.push(LoadError::Duplicate {
                name: m.name,
                file: m.file,
                other: other.file(),
            });
            return false;
        }
        if let Some(b) = m.builtin.clone() {
            if let Some(handler) = self.builtin(&b) {
                let served = handler.methods();
                let missing: Vec<&String> = m
                    .capabilities
                    .iter()
                    .filter(|c| !served.contains(c))
                    .collect();
                if !missing.is_empty() {
                    report
                        .errors
                        .push(LoadError::Manifest(crate::ManifestError {
                            file: m.file.clone(),
                            field: Some("capabilities".into()),
                            message: format!(
                            "the builtin {b:?} does not serve {missing:?} (it serves {served:?})"
                        ),
                        }));
                    return false;
                }
                tracing::info!(module = %m.name, builtin = %b, "served in process");
                let name = m.name.clone();
                self.inner.insert(
                    &name,
                    Slot::Mounted(Module::in_process(Arc::new(m), handler)),
                );
                report.ready.push(name);
                return true;
            }
            if m.program.command.as_os_str().is_empty() {
                report
                    .errors
                    .push(LoadError::Manifest(crate::ManifestError {
                        file: m.file.clone(),
                        field: Some("builtin".into()),
                        message: format!(
                            "module {:?} is the builtin {b:?}, which this host does not have \
                             (it has: {}), and gives no `command` or `path` to run it as a worker",
                            m.name,
                            self.builtins().join(", ")
                        ),
                    }));
                return false;
            }
        }
        let (module, err) = self.load_found(Arc::new(m), report).await;
        // File fallbacks are started with their module: wait for them too.
        started.extend(module.file_fallbacks.iter().cloned());
        match err {
            // Already reported; its calls fall back until a reload fixes it.
            Some(e) => report.errors.push(e),
            None => started.push(module),
        }
        true
    }

    /// Makes `handler` the builtin `name`: a module whose manifest says `"builtin": name`
    /// and is loaded after this ([`Runtime::load_dir`]) is served by it in this process,
    /// with no worker, under the manifest's name, version and fallbacks. A builtin
    /// registered again replaces the first for modules loaded later.
    pub fn register_builtin(&self, name: &str, handler: Arc<dyn Handler>) {
        self.inner
            .builtins
            .write()
            .expect("builtins lock")
            .insert(name.to_owned(), handler);
    }

    /// The builtin registered under `name`.
    fn builtin(&self, name: &str) -> Option<Arc<dyn Handler>> {
        self.inner
            .builtins
            .read()
            .expect("builtins lock")
            .get(name)
            .cloned()
    }

    /// The names of the registered builtins, sorted.
    pub fn builtins(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .builtins
            .read()
            .expect("builtins lock")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Serves a module in the host's own process with `handler`: no process hop.
    /// Replaces a module of the same name (a module loaded from a folder is drained and
    /// stopped).
    pub fn mount(&self, handler: Arc<dyn Handler>) {
        let manifest = Manifest::in_process(handler.module(), handler.version());
        let name = manifest.name.clone();
        self.inner.insert(
            &name,
            Slot::Mounted(Module::in_process(Arc::new(manifest), handler)),
        );
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
    /// While a deployment splits a module's traffic, a call without a routing key goes to
    /// a version at random (in the split's proportions); see [`Runtime::call_keyed`].
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
        self.call_routed(module, method, params, None, opts).await
    }

    /// [`Runtime::call_with`] with a routing key (a user, a session, a tenant): while a
    /// deployment splits the module's traffic between two versions (canary, A/B, rolling),
    /// every call with the same key goes to the same version, and a growing canary only
    /// takes keys, never gives them back. The version that served is in
    /// [`Reply::version`].
    ///
    /// # Errors
    /// As [`Runtime::call`].
    pub async fn call_keyed(
        &self,
        module: &str,
        method: &str,
        params: Value,
        routing_key: &str,
        opts: CallOptions,
    ) -> Result<Reply, CallError> {
        self.call_routed(module, method, params, Some(routing_key), opts)
            .await
    }

    /// Runs a call and records it in the metrics (`telemetry`).
    async fn call_routed(
        &self,
        module: &str,
        method: &str,
        params: Value,
        key: Option<&str>,
        opts: CallOptions,
    ) -> Result<Reply, CallError> {
        let mut record = CallRecord::default();
        let result = self
            .call_unrecorded(module, method, params, key, opts, &mut record)
            .await;
        let known = record.handles.is_some() || self.inner.slot(module).is_some();
        let label = if known { module } else { telemetry::UNKNOWN };
        record.finish(label, &result);
        result
    }

    /// The call itself; leaves in `record` the metric handles of the version (and method)
    /// the call was routed to, once it is, and how long its attempts took.
    async fn call_unrecorded(
        &self,
        module: &str,
        method: &str,
        mut params: Value,
        key: Option<&str>,
        opts: CallOptions,
        record: &mut CallRecord,
    ) -> Result<Reply, CallError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) && !self.hook_may_call() {
            return Err(CallError::ShuttingDown);
        }
        let _global = GlobalTicket::enter(&self.inner);
        let primary = match self.enter(module, key) {
            Ok(p) => p,
            Err(Miss::NotLoaded) => {
                return Err(CallError::ModuleNotFound {
                    module: module.to_owned(),
                })
            }
            Err(Miss::NoVersion(reason)) => {
                return Err(CallError::Unavailable {
                    module: module.to_owned(),
                    method: method.to_owned(),
                    causes: vec![Cause {
                        implementation: module.to_owned(),
                        reason,
                    }],
                })
            }
        };
        let metrics = primary.ticket.0.metrics(&primary.version);
        if let Some(methods) = primary.ticket.0.methods() {
            if !methods.iter().any(|m| m == method) {
                record.handles = Some(metrics.unknown_method());
                return Err(CallError::MethodNotFound {
                    module: module.to_owned(),
                    method: method.to_owned(),
                    offered: methods,
                });
            }
        }
        record.handles = Some(metrics.method(method));
        let deadline = Instant::now() + opts.timeout.unwrap_or(primary.ticket.0.policies().timeout);
        let mut causes: Vec<Cause> = Vec::new();
        let mut visited: HashSet<String> = HashSet::from([module.to_owned()]);
        // While a new version shadows, it gets a copy of the call; only the primary's
        // answer reaches the caller.
        let mut shadow = primary.shadow_copy(method, &params, deadline);
        let mut chain: VecDeque<Entered> = VecDeque::from([primary]);
        let mut first = true;
        let mut first_started = None;
        while let Some(entered) = chain.pop_front() {
            let m = &entered.ticket.0;
            let policies = m.policies();
            let (mut admit, change) = m.breaker.admit(&policies.breaker);
            if let Some(t) = change {
                self.breaker_changed(m, &entered.version, t);
            }
            if let Admit::No(left) = admit {
                causes.push(Cause {
                    implementation: m.label.clone(),
                    reason: breaker_open_reason(m, left),
                });
                self.queue_fallbacks(m, &mut visited, &mut chain, &mut causes);
                first = false;
                continue;
            }
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
            // Retries of an idempotent method, on this implementation, before any fallback.
            let retries = policies.idempotent.allows(method) && !m.runs_in_process();
            let max_attempts = if retries {
                opts.max_attempts
                    .unwrap_or(policies.retry.max_attempts)
                    .clamp(1, crate::manifest::MAX_ATTEMPTS)
            } else {
                1
            };
            if retries {
                m.retry_budget.deposit();
            }
            let has_fallback = !m.manifest.fallback.is_empty();
            let mut tries = 0;
            let call_started = *first_started.get_or_insert_with(std::time::Instant::now);
            let (attempt, took) = loop {
                tries += 1;
                let attempt_deadline = match policies.retry.attempt_timeout {
                    Some(t) if retries => deadline.min(Instant::now() + t),
                    _ => deadline,
                };
                let started = std::time::Instant::now();
                let attempt = m
                    .attempt(method, &mut params, attempt_deadline, opts.progress.clone())
                    .await;
                let took = started.elapsed();
                entered.record(&attempt, took);
                let outcome = breaker_outcome(&attempt);
                if let Some(t) = m.breaker.record(&policies.breaker, admit, outcome) {
                    self.breaker_changed(m, &entered.version, t);
                }
                let worth_retrying = match &attempt {
                    Attempt::Failed(ConnError::Closed(_), _) => true,
                    // The attempt's own deadline, not the call's.
                    Attempt::Failed(ConnError::Timeout, _) => attempt_deadline < deadline,
                    // A fallback takes it at once.
                    Attempt::Unavailable(_) => !has_fallback,
                    _ => false,
                };
                if !worth_retrying || tries >= max_attempts {
                    break (attempt, took);
                }
                let wait = policies.retry.backoff(tries);
                if Instant::now() + wait >= deadline {
                    break (attempt, took);
                }
                if !m.retry_budget.withdraw(&policies.retry) {
                    telemetry::retry_refused(module, method);
                    tracing::debug!(module, method, "retry budget spent; not retrying");
                    break (attempt, took);
                }
                telemetry::retried(module, method);
                tracing::debug!(module, method, attempt = tries, ?wait, "retrying");
                tokio::time::sleep(wait).await;
                let (again, change) = m.breaker.admit(&policies.breaker);
                if let Some(t) = change {
                    self.breaker_changed(m, &entered.version, t);
                }
                if let Admit::No(left) = again {
                    // Opened meanwhile: a fallback serves the call, as it would have had
                    // the breaker been open when the call came.
                    if has_fallback {
                        let why = breaker_open_reason(m, left);
                        break (Attempt::Unavailable(crate::module::Unavailable(why)), took);
                    }
                    break (attempt, took);
                }
                admit = again;
            };
            // The call's latency: a lone first attempt's, else from the first attempt's
            // start to the end of this one.
            record.took = Some(if first && tries == 1 {
                took
            } else {
                call_started.elapsed()
            });
            if let Some(copy) = shadow.take() {
                copy.compare(&attempt);
            }
            match attempt {
                Attempt::Done {
                    value,
                    instance,
                    execution_us,
                } => {
                    if !first {
                        tracing::info!(module, method, served_by = %m.label, "served by a fallback");
                        telemetry::fallback_used(module, &m.label);
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
                        version: entered.version,
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
                // It announces the method but does not serve it (a fallback implementing
                // part of a module): the call goes on down the chain, as from one that is
                // unavailable. Not from an in-process handler, which took the params.
                Attempt::Failed(ConnError::Remote(e), _)
                    if e.code == polyglot_protocol::code::NOT_SUPPORTED && !m.runs_in_process() =>
                {
                    causes.push(Cause {
                        implementation: m.label.clone(),
                        reason: format!("does not support method {method:?}: {}", e.message),
                    });
                    self.queue_fallbacks(m, &mut visited, &mut chain, &mut causes);
                }
                Attempt::Failed(e, instance) => {
                    let timeout = match policies.retry.attempt_timeout {
                        Some(t) if retries => Some(opts.timeout.map_or(t, |c| c.min(t))),
                        _ => opts.timeout,
                    };
                    let error = conn_error(e, m, method, instance, timeout);
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
        chain: &mut VecDeque<Entered>,
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
                    match self.enter(name, None) {
                        Ok(t) => next.push(t),
                        Err(Miss::NotLoaded) => causes.push(Cause {
                            implementation: name.clone(),
                            reason: "is not loaded".into(),
                        }),
                        Err(Miss::NoVersion(reason)) => causes.push(Cause {
                            implementation: name.clone(),
                            reason,
                        }),
                    }
                }
                Fallback::File(_) => {
                    if let Some(fm) = files.next() {
                        if visited.insert(fm.label.clone()) {
                            match fm.enter() {
                                Some(ticket) => next.push(Entered::plain(ticket)),
                                None => causes.push(Cause {
                                    implementation: fm.label.clone(),
                                    reason: "is stopping".into(),
                                }),
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

    /// The implementation a call to `name` would be served by now: the module itself when
    /// it runs in process or a worker of its active version takes calls, else the first of
    /// its fallbacks, in order (a fallback module's own fallbacks included), that would.
    /// `None` when none would, or no module of that name is loaded.
    pub fn serving(&self, name: &str) -> Option<String> {
        self.serving_from(name, &mut HashSet::new())
    }

    fn serving_from(&self, name: &str, visited: &mut HashSet<String>) -> Option<String> {
        if !visited.insert(name.to_owned()) {
            return None;
        }
        let m = match self.inner.slot(name)? {
            Slot::Mounted(m) => m,
            Slot::Deployed(d) => d.active()?,
        };
        if m.takes_calls() {
            return Some(m.label.clone());
        }
        let mut files = m.file_fallbacks.iter();
        for f in &m.manifest.fallback {
            let found = match f {
                Fallback::Module(other) => self.serving_from(other, visited),
                Fallback::File(_) => files
                    .next()
                    .filter(|fm| fm.takes_calls())
                    .map(|fm| fm.label.clone()),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Registers a call on the version of module `name` that the routing key (or a
    /// random point) leads to, and keeps that version for the whole attempt. A version
    /// already draining (released by its deployment the instant before) hands over to
    /// whatever the routing table says now. Lock-free.
    fn enter(&self, name: &str, key: Option<&str>) -> Result<Entered, Miss> {
        let mut reason = None;
        for _ in 0..ENTER_ATTEMPTS {
            let slot = self.inner.slot(name).ok_or(Miss::NotLoaded)?;
            match slot {
                Slot::Mounted(m) => {
                    if let Some(ticket) = m.enter() {
                        return Ok(Entered::plain(ticket));
                    }
                }
                Slot::Deployed(d) => {
                    let Some(route) = d.route(key) else {
                        reason = Some(
                            "has no active version (its first deployment has not finished)"
                                .to_owned(),
                        );
                        continue;
                    };
                    if let Some(ticket) = route.target.enter() {
                        let shadow = route.shadow.map(|s| (s.version, s.target));
                        return Ok(Entered {
                            ticket,
                            version: route.version.to_string(),
                            record: Some((d, route.version)),
                            shadow,
                        });
                    }
                }
            }
        }
        Err(Miss::NoVersion(reason.unwrap_or_else(|| {
            "has no version taking calls: each one found was draining".to_owned()
        })))
    }

    /// Subscribes to the runtime's events from now on: workers started and exited, health
    /// changes, fallback use, reloads.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    /// Every loaded module, sorted by name: the status of its active version.
    pub fn modules(&self) -> Vec<ModuleStatus> {
        let mut v: Vec<ModuleStatus> = self
            .inner
            .modules
            .load()
            .values()
            .filter_map(slot_status)
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// One module's status: that of its active version. (Every version of it:
    /// [`Runtime::deployment`] and [`Runtime::history`].)
    pub fn module(&self, name: &str) -> Option<ModuleStatus> {
        self.inner.slot(name).as_ref().and_then(slot_status)
    }

    /// Reloads a module without downtime: re-reads the manifest in the folder of its
    /// active version, builds, starts the new workers and waits for their handshake and
    /// health, and deploys them as an immediate deployment (its warm and smoke checks
    /// included), which switches new calls to them atomically; then lets the old workers
    /// finish their calls and stops them before returning (unless
    /// [`DeploymentConfig::retain_previous`] keeps them for an instant rollback). If the
    /// new version fails to start or its checks, the old one keeps serving and the error
    /// says why.
    ///
    /// # Errors
    /// A [`LoadError`]: not found, bad manifest, failed build, new workers not ready,
    /// failed checks, a deployment of the module in progress.
    pub async fn reload(&self, name: &str) -> Result<ReloadReport, LoadError> {
        let _one_at_a_time = self.inner.control.lock().await;
        let not_ready = |message: &str| LoadError::NotReady {
            module: name.to_owned(),
            message: message.to_owned(),
        };
        let dep = match self.inner.slot(name) {
            None => return Err(LoadError::NotFound(name.to_owned())),
            Some(Slot::Mounted(_)) => {
                return Err(not_ready("an in-process module has no manifest to reload"))
            }
            Some(Slot::Deployed(d)) => d,
        };
        let (Some(old), Some(old_id)) = (dep.active(), dep.deployer.active_version()) else {
            return Err(not_ready("it has no active version to reload"));
        };
        let manifest = Manifest::load(&old.manifest.dir)?;
        if manifest.name != name {
            return Err(not_ready(&format!(
                "its manifest now names module {:?}; a reload keeps the name",
                manifest.name
            )));
        }
        if old.manifest.differs_only_in_policies(&manifest)
            && Policies::of(&manifest) != *old.policies()
            && crate::build::source_stamp(&manifest) == old.source_stamp
        {
            // Only call policies changed: the running version takes them, from its next
            // call on, and keeps its workers.
            old.set_policies(&manifest);
            for f in &old.file_fallbacks {
                f.set_policies(&manifest);
            }
            tracing::info!(module = name, version = %old_id, "reloaded its call policies; the workers keep running");
            self.inner.events.emit(
                name,
                EventKind::PoliciesUpdated {
                    version: old_id.to_string(),
                },
            );
            return Ok(ReloadReport {
                module: name.to_owned(),
                old_version: old.manifest.version.clone(),
                new_version: manifest.version.clone(),
                policies_only: true,
            });
        }
        let manifest = Arc::new(manifest);
        let meta = polyglot_hotswap::VersionMeta::new(
            "reload",
            format!("reloaded from {}", manifest.dir.display()),
        );
        if let Err(e) = self
            .deploy_version(
                &dep,
                manifest.clone(),
                polyglot_hotswap::Strategy::Immediate,
                meta,
            )
            .await
        {
            let e = e.into_load_error(name);
            tracing::warn!(module = name, error = %e, "reload refused, the running version keeps serving");
            return Err(e);
        }
        tracing::info!(module = name, old_version = %old.manifest.version, new_version = %manifest.version, "reloaded; draining the old workers");
        // Release the old version now, rather than at the next tick, and wait until its
        // calls are done and its workers stopped.
        dep.deployer.tick().await;
        let retained = dep
            .deployer
            .version(old_id.as_str())
            .is_some_and(|v| v.retained);
        if !retained {
            let bound = self.inner.config.drain_timeout + old.manifest.shutdown_grace + STOP_MARGIN;
            if tokio::time::timeout(bound, old.wait_stopped())
                .await
                .is_err()
            {
                tracing::warn!(module = name, version = %old_id, "the old version is still stopping");
            }
        }
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
            policies_only: false,
        })
    }

    /// Stops taking calls, lets calls in flight finish (up to the drain timeout), runs the
    /// shutdown hooks ([`Runtime::on_shutdown`]; their calls are still served), stops
    /// every deployment where it is (no tick after this; the state file gets its last
    /// write), then drains and stops every running version of every module: `$shutdown`,
    /// a grace period, then kill.
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
        self.run_shutdown_hooks().await;
        let slots: Vec<Slot> = self.inner.modules.load().values().cloned().collect();
        for s in &slots {
            if let Slot::Deployed(d) = s {
                d.stop_tasks().await;
            }
        }
        if self.inner.state.is_some() {
            let inner = self.inner.clone();
            let _ = tokio::task::spawn_blocking(move || inner.persist()).await;
        }
        let drain = deadline.saturating_duration_since(Instant::now());
        let stops: Vec<_> = slots
            .into_iter()
            .map(|s| {
                tokio::spawn(async move {
                    match s {
                        Slot::Mounted(m) => m.stop_now().await,
                        Slot::Deployed(d) => d.drain_all(drain).await,
                    }
                })
            })
            .collect();
        for s in stops {
            let _ = s.await;
        }
    }
}

/// How many times a call looks a module up again when the version it found was draining
/// (released the instant before): each lookup reads the routing table as it is now, so a
/// second one finds the successor unless deployments switch faster than a lookup.
const ENTER_ATTEMPTS: usize = 8;

/// Beyond its drain timeout and its workers' shutdown grace, how long a reload waits for
/// the old version to have stopped: the time to reap processes and close pipes.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// Why a module could not be entered.
enum Miss {
    /// No module of that name.
    NotLoaded,
    /// It has no version taking calls, and why.
    NoVersion(String),
}

/// A call registered on one version of a module, kept for the whole attempt.
struct Entered {
    ticket: CallTicket,
    /// The version, for the reply.
    version: String,
    /// Where its outcome is recorded: the deployment and its version id.
    record: Option<(Arc<Deployment>, VersionId)>,
    /// The version shadowing it, which gets a copy of the call.
    shadow: Option<(VersionId, Arc<Module>)>,
}

impl Entered {
    /// A call on a module outside deployments (in-process, a file fallback).
    fn plain(ticket: CallTicket) -> Entered {
        let version = ticket.0.manifest.version.clone();
        Entered {
            ticket,
            version,
            record: None,
            shadow: None,
        }
    }

    /// Sends a copy of the call to the shadowing version, if one shadows, in a task of
    /// its own (registered on that version, so that its drain waits for it).
    fn shadow_copy(&self, method: &str, params: &Value, deadline: Instant) -> Option<ShadowCopy> {
        let (d, _) = self.record.as_ref()?;
        let (version, module) = self.shadow.as_ref()?;
        let ticket = module.enter()?;
        let (method, mut params) = (method.to_owned(), params.clone());
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let attempt = ticket.0.attempt(&method, &mut params, deadline, None).await;
            (attempt, started.elapsed())
        });
        Some(ShadowCopy {
            deployment: d.clone(),
            version: version.clone(),
            task,
        })
    }

    /// Counts the attempt in its version's health: an answer is `Ok`; a method's error,
    /// a worker that exited, an overload, an answer over the frame limit, and a version
    /// with no worker taking calls (the call then goes down the fallback chain) are
    /// `Error`; a deadline is `Timeout`. A request over the frame limit is the caller's,
    /// not the version's, and is not counted.
    fn record(&self, attempt: &Attempt, took: Duration) {
        let Some((d, version)) = &self.record else {
            return;
        };
        let outcome = match attempt {
            Attempt::Done { .. } => Outcome::Ok,
            Attempt::Failed(ConnError::Timeout, _) => Outcome::Timeout,
            Attempt::Failed(ConnError::TooLarge("request", _), _) => return,
            Attempt::Failed(..) | Attempt::Unavailable(_) => Outcome::Error,
        };
        d.deployer.record(version.as_str(), outcome, took);
    }
}

/// A copy of a call running on the shadowing version.
struct ShadowCopy {
    deployment: Arc<Deployment>,
    version: VersionId,
    task: tokio::task::JoinHandle<(Attempt, Duration)>,
}

/// What the primary answered, to compare the shadow's answer with.
enum Primary {
    Value(Value),
    Error(String),
    Nothing,
}

impl ShadowCopy {
    /// Once the copy is done, records how its answer compares with the primary's `attempt`:
    /// the same result, or the same error code, is a match. Without a primary answer to
    /// compare (it was unavailable or failed in the transport) only the copy's own
    /// outcome counts.
    fn compare(self, attempt: &Attempt) {
        let primary = match attempt {
            Attempt::Done { value, .. } => Primary::Value(value.clone()),
            Attempt::Failed(ConnError::Remote(e), _) => Primary::Error(e.code.clone()),
            _ => Primary::Nothing,
        };
        tokio::spawn(async move {
            let Ok((copy, took)) = self.task.await else {
                return;
            };
            let deployer = &self.deployment.deployer;
            let v = self.version.as_str();
            let outcome = match (&copy, &primary) {
                (Attempt::Done { .. }, Primary::Nothing) => {
                    return deployer.record(v, Outcome::Ok, took);
                }
                (Attempt::Done { value, .. }, Primary::Value(p)) if value == p => {
                    ShadowOutcome::Match
                }
                (Attempt::Done { .. }, _) => ShadowOutcome::Mismatch,
                (Attempt::Failed(ConnError::Remote(e), _), Primary::Error(code))
                    if e.code == *code =>
                {
                    ShadowOutcome::Match
                }
                (Attempt::Failed(ConnError::Timeout, _), _) => ShadowOutcome::Timeout,
                _ => ShadowOutcome::Error,
            };
            deployer.record_shadow(v, outcome, took);
        });
    }
}

/// Waits until each module of `started` is ready (or its start budget is spent), and
/// records which are in `report`.
async fn wait_started(started: Vec<Arc<Module>>, report: &mut LoadReport) {
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
}

fn slot_status(slot: &Slot) -> Option<ModuleStatus> {
    match slot {
        Slot::Mounted(m) => Some(m.status()),
        Slot::Deployed(d) => d.active().map(|m| m.status()),
    }
}

/// The error a caller gets for a call that a worker took and did not answer with a
/// result.
pub(crate) fn conn_error(
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
            timeout: timeout.unwrap_or(m.policies().timeout),
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
            queue: m.policies().max_queue,
        },
    }
}

/// How an attempt counts for its version's breaker. A timeout is a failure: the breaker
/// is there so that calls stop waiting on a version that does not answer. A method's
/// own error is an answer. The rest count for nothing: a worker that exits fails every
/// call it held at once, and the supervisor restarts it (a crash loop fails the module
/// by its restart policy); counting each of those calls would open the breaker on one
/// crash and keep a version whose other workers serve out of traffic for a cool-down.
/// A version with no worker taking calls is unavailable already; a request too large
/// never reached a worker; an overloaded refusal is load shedding, not a fault.
fn breaker_outcome(attempt: &Attempt) -> resilience::Outcome {
    match attempt {
        Attempt::Done { .. } | Attempt::Failed(ConnError::Remote(_), _) => {
            resilience::Outcome::Answered
        }
        Attempt::Failed(ConnError::Timeout, _) => resilience::Outcome::Failed,
        Attempt::Failed(
            ConnError::Closed(_) | ConnError::TooLarge(..) | ConnError::Overloaded,
            _,
        )
        | Attempt::Unavailable(_) => resilience::Outcome::Neutral,
    }
}

/// Why a call skipped `m`: its breaker is open, why, and when it probes again.
fn breaker_open_reason(m: &Module, left: Duration) -> String {
    let (state, why) = m.breaker.state();
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    match state {
        BreakerState::HalfOpen => {
            format!("has its circuit breaker half-open{why} and its probe calls out")
        }
        _ => format!(
            "has its circuit breaker open{why}; next probe in {} ms",
            left.as_millis()
        ),
    }
}

impl Runtime {
    /// Reports a breaker's change of state: log, metric, event.
    fn breaker_changed(&self, m: &Module, version: &str, t: Transition) {
        let reason = if t.to == BreakerState::Open {
            m.breaker.state().1
        } else {
            String::new()
        };
        match t.to {
            BreakerState::Open => {
                tracing::warn!(module = %m.label, version, reason = %reason, "circuit breaker opened")
            }
            _ => {
                tracing::info!(module = %m.label, version, from = t.from.as_str(), to = t.to.as_str(),
                "circuit breaker changed")
            }
        }
        telemetry::breaker_changed(&m.label, version, t.to);
        self.inner.events.emit(
            &m.label,
            EventKind::BreakerChanged {
                version: version.to_owned(),
                from: t.from,
                to: t.to,
                reason,
            },
        );
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
