//! [`Module`]: one loaded implementation of a module (a version), with its pool of
//! supervised worker slots or its in-process handler, its state, and its draining.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use polyglot_protocol::Value;
use polyglot_worker::{Context, Handler};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tracing::Instrument;

use crate::build;
use crate::connection::{ConnError, Connection};
use crate::error::{LoadError, StartError};
use crate::events::Events;
use crate::manifest::{Fallback, Manifest};
use crate::resilience::{Breaker, BreakerPolicy, Idempotent, RetryBudget, RetryPolicy};
use crate::status::{BreakerStatus, HealthState, InstanceStatus, ModuleState, ModuleStatus};
use crate::supervisor::{self, Instance, InstanceState, RestartBudget, SlotContext};
use crate::telemetry::VersionMetrics;
use crate::typescript;

/// Why a module could not take a call; it was never sent, so another implementation may
/// take it.
#[derive(Debug)]
pub(crate) struct Unavailable(pub String);

/// How a call that a module took ended.
pub(crate) enum Attempt {
    Done {
        value: Value,
        instance: usize,
        execution_us: Option<u64>,
    },
    Unavailable(Unavailable),
    Failed(ConnError, usize),
}

enum Backend {
    Workers(Vec<Arc<Instance>>),
    InProcess(Arc<dyn Handler>),
}

/// One loaded implementation of a module.
pub(crate) struct Module {
    pub manifest: Arc<Manifest>,
    /// How responses and errors name it: the module name, or `name (fallback file)`.
    pub label: String,
    backend: Backend,
    /// File fallbacks of this module, started with it.
    pub file_fallbacks: Vec<Arc<Module>>,
    state: Mutex<ModuleState>,
    failure: Mutex<Option<String>>,
    /// Calls that chose this module and have not finished.
    in_flight: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
    /// One per worker slot (`instances` of them); the first `target` are wanted.
    slots: tokio::sync::Mutex<Vec<SlotCtl>>,
    /// How many slots are wanted now (a rolling update scales versions slot by slot).
    target: AtomicUsize,
    /// How many slots it started with: what [`Module::wait_ready`] waits for.
    initial: usize,
    /// What starting a slot needs; `None` for a module without workers.
    spawn: Option<SlotSpawn>,
    /// Set by the first `stop_now`; later ones wait for it to finish.
    stopping: AtomicBool,
    /// True once its workers are stopped.
    stopped: watch::Sender<bool>,
    started: Mutex<StartProgress>,
    started_notify: Notify,
    /// Its metric handles, made at its first call (which names its version id).
    metrics: OnceLock<VersionMetrics>,
    /// Its call policies: the manifest's at first, replaced by a reload that changes
    /// only them ([`Module::set_policies`]).
    policies: ArcSwap<Policies>,
    /// Its circuit breaker.
    pub(crate) breaker: Breaker,
    /// Its retry budget.
    pub(crate) retry_budget: RetryBudget,
    /// Its sources' newest modification time when it was loaded
    /// ([`build::source_stamp`]).
    pub(crate) source_stamp: Option<std::time::SystemTime>,
}

/// The parts of a manifest that apply to each call, and change without new workers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policies {
    pub timeout: Duration,
    pub max_queue: u32,
    pub idempotent: Idempotent,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
}

impl Policies {
    pub(crate) fn of(m: &Manifest) -> Policies {
        Policies {
            timeout: m.timeout,
            max_queue: m.max_queue,
            idempotent: m.idempotent.clone(),
            retry: m.retry,
            breaker: m.breaker,
        }
    }
}

/// One worker slot's supervisor: its stop signal, and its task (the supervisor, or the
/// task retiring it).
struct SlotCtl {
    stop: Arc<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
    active: bool,
}

/// What a module's worker slots share.
struct SlotSpawn {
    /// The manifest its workers are started from: the module's own, or one whose program
    /// was prepared for it (a TypeScript entry compiled and run through the SDK's
    /// launcher, `typescript.rs`).
    launch: Arc<Manifest>,
    /// The module name its workers must announce.
    module: String,
    budget: Arc<RestartBudget>,
    events: Events,
}

#[derive(Default)]
struct StartProgress {
    ok: usize,
    errors: Vec<StartError>,
}

impl Module {
    fn base(
        manifest: Arc<Manifest>,
        label: String,
        backend: Backend,
        file_fallbacks: Vec<Arc<Module>>,
        state: ModuleState,
        failure: Option<String>,
    ) -> Module {
        let slots = match &backend {
            Backend::Workers(list) => list
                .iter()
                .map(|_| SlotCtl {
                    stop: Arc::new(watch::channel(false).0),
                    task: None,
                    active: false,
                })
                .collect(),
            Backend::InProcess(_) => Vec::new(),
        };
        Module {
            label,
            backend,
            file_fallbacks,
            state: Mutex::new(state),
            failure: Mutex::new(failure),
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            slots: tokio::sync::Mutex::new(slots),
            target: AtomicUsize::new(0),
            initial: 0,
            spawn: None,
            stopping: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            started: Mutex::new(StartProgress::default()),
            started_notify: Notify::new(),
            metrics: OnceLock::new(),
            policies: ArcSwap::from_pointee(Policies::of(&manifest)),
            source_stamp: build::source_stamp(&manifest),
            breaker: Breaker::new(),
            retry_budget: RetryBudget::new(),
            manifest,
        }
    }

    /// Its call policies now.
    pub(crate) fn policies(&self) -> Arc<Policies> {
        self.policies.load_full()
    }

    /// Applies `manifest`'s call policies to calls from now on; the calls in flight keep
    /// the ones they started with.
    pub(crate) fn set_policies(&self, manifest: &Manifest) {
        self.policies.store(Arc::new(Policies::of(manifest)));
    }

    /// Starts `initial` of the `instances` workers of `manifest` (which must announce
    /// module `module`), each from `launch` (`manifest` itself, unless its program was
    /// prepared); [`Module::scale`] starts or retires the others.
    pub(crate) fn start(
        manifest: Arc<Manifest>,
        launch: Arc<Manifest>,
        module: &str,
        label: String,
        file_fallbacks: Vec<Arc<Module>>,
        events: &Events,
        initial: usize,
    ) -> Arc<Module> {
        let instances: Vec<Arc<Instance>> = (0..manifest.instances as usize)
            .map(|i| Arc::new(Instance::new(i)))
            .collect();
        let initial = initial.min(instances.len());
        let mut m = Module::base(
            manifest.clone(),
            label,
            Backend::Workers(instances),
            file_fallbacks,
            ModuleState::Starting,
            None,
        );
        m.initial = initial;
        m.spawn = Some(SlotSpawn {
            launch,
            module: module.to_owned(),
            budget: Arc::new(RestartBudget::new(manifest.restart)),
            events: events.clone(),
        });
        let m = Arc::new(m);
        if let (Backend::Workers(instances), Some(sp)) = (&m.backend, &m.spawn) {
            let mut slots = m.slots.try_lock().expect("a new module's slots are free");
            for (slot, instance) in slots.iter_mut().zip(instances).take(initial) {
                slot.task = Some(m.spawn_slot(sp, instance.clone(), &slot.stop));
                slot.active = true;
            }
        }
        m.target.store(initial, Ordering::SeqCst);
        m
    }

    /// Starts the supervisor of `instance`'s slot, stopped by `stop`.
    fn spawn_slot(
        self: &Arc<Self>,
        sp: &SlotSpawn,
        instance: Arc<Instance>,
        stop: &watch::Sender<bool>,
    ) -> tokio::task::JoinHandle<()> {
        instance.set_retired(false);
        instance.mark_starting();
        stop.send_replace(false);
        let weak = Arc::downgrade(self);
        let weak2 = Arc::downgrade(self);
        let cx = SlotContext {
            manifest: sp.launch.clone(),
            module: sp.module.clone(),
            label: self.label.clone(),
            instance,
            budget: sp.budget.clone(),
            on_failed: Arc::new(move |why| {
                if let Some(m) = weak.upgrade() {
                    m.fail(why);
                }
            }),
            on_started: Arc::new(move |r| {
                if let Some(m) = weak2.upgrade() {
                    m.record_start(r);
                }
            }),
            events: sp.events.clone(),
        };
        // Every log line of the slot (its supervisor, and the worker's forwarded output)
        // names the module, the version and the instance.
        let span = tracing::info_span!(
            "worker",
            module = %self.label,
            version = %self.manifest.version,
            instance = cx.instance.index
        );
        tokio::spawn(supervisor::supervise(cx, stop.subscribe()).instrument(span))
    }

    /// Runs `replicas` of its worker slots: starts those missing, and retires those
    /// beyond (they take no new calls, finish theirs within the call timeout, then
    /// stop). Returns once the retired workers have exited (so that a rolling update
    /// never runs more workers than it allows), and new ones are starting, not ready.
    ///
    /// # Errors
    /// When `replicas` is more than its pool's `instances`, or it is stopping.
    pub(crate) async fn scale(self: &Arc<Self>, replicas: usize) -> Result<(), String> {
        let (Backend::Workers(instances), Some(sp)) = (&self.backend, &self.spawn) else {
            return Ok(());
        };
        let mut retiring = Vec::new();
        let mut slots = self.slots.lock().await;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(format!("{} is stopping", self.label));
        }
        if replicas > slots.len() {
            return Err(format!(
                "{} {} cannot run {replicas} instances: its pool has {} (`instances` in its module.json)",
                self.label,
                self.manifest.version,
                slots.len()
            ));
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            let want = i < replicas;
            if want && !slot.active {
                // A slot still retiring finishes stopping before it starts again.
                if let Some(t) = slot.task.take() {
                    let _ = t.await;
                }
                slot.task = Some(self.spawn_slot(sp, instances[i].clone(), &slot.stop));
                slot.active = true;
            } else if !want && slot.active {
                let instance = instances[i].clone();
                instance.set_retired(true);
                let (gone, exited) = tokio::sync::oneshot::channel::<()>();
                retiring.push(exited);
                slot.active = false;
                let supervisor = slot.task.take();
                let stop = slot.stop.clone();
                let drain = self.policies().timeout;
                let label = self.label.clone();
                slot.task = Some(tokio::spawn(async move {
                    let mut stopped = stop.subscribe();
                    let deadline = Instant::now() + drain;
                    loop {
                        let busy = instance.connection().map_or(0, |c| c.outstanding());
                        if busy == 0 || *stopped.borrow() {
                            break;
                        }
                        if Instant::now() >= deadline {
                            tracing::warn!(module = %label, instance = instance.index, in_flight = busy,
                                "a retired worker still had calls at its drain deadline; stopping it");
                            break;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(10)) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                    stop.send_replace(true);
                    if let Some(t) = supervisor {
                        let _ = t.await;
                    }
                    let _ = gone.send(());
                }));
            }
        }
        self.target.store(replicas, Ordering::SeqCst);
        drop(slots);
        // Drain, `$shutdown`, grace, kill: within these, every retired worker has exited.
        let deadline = Instant::now()
            + self.policies().timeout
            + self.manifest.shutdown_grace
            + Duration::from_secs(1);
        for exited in retiring {
            if tokio::time::timeout_at(deadline, exited).await.is_err() {
                tracing::warn!(module = %self.label, "a retired worker is taking long to exit");
                break;
            }
        }
        Ok(())
    }

    /// Builds what needs building and starts the workers of `manifest` and of its file
    /// fallbacks, without waiting for them. A failed build gives a module that takes no
    /// calls (they fall back) and says why, with the error.
    pub(crate) async fn load(
        manifest: Arc<Manifest>,
        events: &Events,
    ) -> (Arc<Module>, Option<LoadError>) {
        let all = manifest.instances as usize;
        Module::load_scaled(manifest, events, all).await
    }

    /// [`Module::load`] starting `initial` of its workers.
    pub(crate) async fn load_scaled(
        manifest: Arc<Manifest>,
        events: &Events,
        initial: usize,
    ) -> (Arc<Module>, Option<LoadError>) {
        let name = manifest.name.clone();
        // File fallbacks start at once (a TypeScript one once compiled), while the module
        // itself builds: they serve its calls meanwhile.
        let fallbacks = async {
            let mut started = Vec::new();
            for p in manifest.fallback.iter().filter_map(|f| match f {
                Fallback::File(p) => Some(p),
                Fallback::Module(_) => None,
            }) {
                let rel = p
                    .strip_prefix(&manifest.dir)
                    .unwrap_or(p)
                    .display()
                    .to_string();
                let label = format!("{name} (fallback {rel})");
                let fm = Arc::new(manifest.for_fallback_file(p));
                let n = fm.instances as usize;
                started.push(match typescript::prepare(&fm).await {
                    Ok(launch) => {
                        let launch = launch.map_or_else(|| fm.clone(), Arc::new);
                        Module::start(fm, launch, &name, label, Vec::new(), events, n)
                    }
                    Err(e) => {
                        tracing::error!(module = %name, fallback = %rel, error = %e, "fallback cannot start");
                        Module::failed(fm, label, e.to_string(), Vec::new())
                    }
                });
            }
            started
        };
        let built = async {
            build::ensure_built(&manifest).await?;
            typescript::prepare(&manifest).await
        };
        let (file_fallbacks, built) = tokio::join!(fallbacks, built);
        match built {
            Ok(launch) => {
                let launch = launch.map_or_else(|| manifest.clone(), Arc::new);
                (
                    Module::start(
                        manifest,
                        launch,
                        &name,
                        name.clone(),
                        file_fallbacks,
                        events,
                        initial,
                    ),
                    None,
                )
            }
            Err(e) => {
                tracing::error!(module = %name, error = %e, "build failed");
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

    /// [`Module::load_scaled`], then waits until every worker started answered its first
    /// health check; a module that does not get there is stopped and the error says why.
    /// How a new version is started.
    pub(crate) async fn launch(
        manifest: Arc<Manifest>,
        events: &Events,
        initial: usize,
    ) -> Result<Arc<Module>, LoadError> {
        let (module, err) = Module::load_scaled(manifest.clone(), events, initial).await;
        if let Some(e) = err {
            module.stop_now().await;
            return Err(e);
        }
        if let Err(message) = module
            .wait_ready(Instant::now() + ready_budget(&manifest))
            .await
        {
            module.stop_now().await;
            return Err(LoadError::NotReady {
                module: manifest.name.clone(),
                message,
            });
        }
        Ok(module)
    }

    /// A module that could not be started at all (bad build): it takes no calls, and says
    /// why.
    pub(crate) fn failed(
        manifest: Arc<Manifest>,
        label: String,
        why: String,
        file_fallbacks: Vec<Arc<Module>>,
    ) -> Arc<Module> {
        Arc::new(Module::base(
            manifest,
            label,
            Backend::Workers(Vec::new()),
            file_fallbacks,
            ModuleState::Failed,
            Some(why),
        ))
    }

    /// A module served in the host's own process by `handler`.
    pub(crate) fn in_process(manifest: Arc<Manifest>, handler: Arc<dyn Handler>) -> Arc<Module> {
        let label = manifest.name.clone();
        Arc::new(Module::base(
            manifest,
            label,
            Backend::InProcess(handler),
            Vec::new(),
            ModuleState::Running,
            None,
        ))
    }

    fn fail(&self, why: String) {
        *self.state.lock().expect("state lock") = ModuleState::Failed;
        *self.failure.lock().expect("failure lock") = Some(why);
    }

    fn record_start(&self, r: Result<(), StartError>) {
        let mut p = self.started.lock().expect("start lock");
        match r {
            Ok(()) => {
                p.ok += 1;
                let mut st = self.state.lock().expect("state lock");
                if *st == ModuleState::Starting {
                    *st = ModuleState::Running;
                }
            }
            Err(e) => p.errors.push(e),
        }
        drop(p);
        self.started_notify.notify_waiters();
    }

    /// Waits until every worker slot has completed its first start, then checks each with
    /// `$health`. Errors with the first start failure.
    pub(crate) async fn wait_ready(&self, deadline: Instant) -> Result<(), String> {
        let Backend::Workers(instances) = &self.backend else {
            return Ok(());
        };
        // One that could not start at all (a fallback file whose TypeScript does not
        // compile) has no worker to wait for, and is not ready.
        if let Some(why) = self.failure() {
            return Err(why);
        }
        loop {
            let notified = self.started_notify.notified();
            {
                let p = self.started.lock().expect("start lock");
                if let Some(e) = p.errors.first() {
                    return Err(e.to_string());
                }
                if p.ok >= self.initial {
                    break;
                }
            }
            if let Some(why) = self.failure() {
                return Err(why);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err("its workers did not start in time".into());
            }
        }
        for i in instances.iter().take(self.initial) {
            let Some(conn) = i.connection() else {
                return Err(format!("worker {} stopped right after starting", i.index));
            };
            let hc = self.manifest.health_check.timeout;
            let d = deadline.min(Instant::now() + hc);
            match conn.call("$health", &Value::Null, d, None).await {
                Ok(_) => {}
                Err(ConnError::Remote(e)) => {
                    return Err(format!("worker {} is unhealthy: {e}", i.index))
                }
                Err(ConnError::Timeout) => {
                    return Err(format!(
                        "worker {} did not answer its health check in time",
                        i.index
                    ))
                }
                Err(e) => return Err(format!("worker {} health check: {e:?}", i.index)),
            }
        }
        Ok(())
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    pub(crate) fn state(&self) -> ModuleState {
        *self.state.lock().expect("state lock")
    }

    /// The methods callers may use: the manifest's capabilities, else what the running
    /// workers (or the in-process handler) serve; `None` when unknown yet.
    pub(crate) fn methods(&self) -> Option<Vec<String>> {
        if !self.manifest.capabilities.is_empty() {
            return Some(self.manifest.capabilities.clone());
        }
        match &self.backend {
            Backend::InProcess(h) => Some(h.methods()),
            Backend::Workers(instances) => instances
                .iter()
                .find_map(|i| i.connection())
                .map(|c| c.handshake().methods.clone()),
        }
    }

    /// Registers a call on this module. `None` when it is draining: the caller looks the
    /// module up again and finds its successor.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<CallTicket> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.draining.load(Ordering::SeqCst) {
            self.leave();
            return None;
        }
        Some(CallTicket(self.clone()))
    }

    fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Runs one call on the least busy available worker.
    ///
    /// An in-process handler takes `params` (leaving `Null`) instead of a copy: a
    /// megabyte param would otherwise be copied on every call. Its attempt is never
    /// `Unavailable`, so the call ends with it and no fallback needs the params again.
    pub(crate) async fn attempt(
        &self,
        method: &str,
        params: &mut Value,
        deadline: Instant,
        progress: Option<mpsc::UnboundedSender<Value>>,
    ) -> Attempt {
        match &self.backend {
            Backend::InProcess(h) => {
                let started = std::time::Instant::now();
                let params = std::mem::take(params);
                let fut = h.call(method, params, Context::detached(method));
                match tokio::time::timeout_at(deadline, fut).await {
                    Ok(Ok(value)) => Attempt::Done {
                        value,
                        instance: 0,
                        execution_us: Some(started.elapsed().as_micros() as u64),
                    },
                    Ok(Err(e)) => Attempt::Failed(ConnError::Remote(e.into()), 0),
                    Err(_) => Attempt::Failed(ConnError::Timeout, 0),
                }
            }
            Backend::Workers(instances) => {
                let Some((instance, conn)) = pick(instances) else {
                    return Attempt::Unavailable(Unavailable(self.unavailable_reason()));
                };
                let limit = conn.handshake().max_concurrency as usize
                    + self.policies.load().max_queue as usize;
                match conn
                    .call_bounded(method, params, deadline, progress, limit)
                    .await
                {
                    Ok((value, execution_us)) => Attempt::Done {
                        value,
                        instance,
                        execution_us,
                    },
                    Err(e) => Attempt::Failed(e, instance),
                }
            }
        }
    }

    fn unavailable_reason(&self) -> String {
        if let Some(f) = self.failure() {
            return format!("is failed: {f}");
        }
        let Backend::Workers(instances) = &self.backend else {
            return "is unavailable".into();
        };
        let states: Vec<String> = instances
            .iter()
            .map(|i| {
                let err = i.last_error.lock().expect("last error lock").clone();
                match err {
                    Some(e) => format!("worker {} is {:?} ({e})", i.index, i.state()),
                    None => format!("worker {} is {:?}", i.index, i.state()),
                }
                .to_lowercase()
            })
            .collect();
        format!("has no worker taking calls: {}", states.join("; "))
    }

    /// Stops routing to this module, waits up to `drain` for its calls in flight, then
    /// stops its workers (`$shutdown`, grace period, kill).
    pub(crate) async fn drain_and_stop(&self, drain: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        *self.state.lock().expect("state lock") = ModuleState::Draining;
        let deadline = Instant::now() + drain;
        loop {
            let idle = self.idle.notified();
            let n = self.in_flight.load(Ordering::SeqCst);
            if n == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!(module = %self.label, in_flight = self.in_flight.load(Ordering::SeqCst),
                    "drain deadline passed with calls in flight; stopping anyway");
                break;
            }
        }
        self.stop_now().await;
    }

    /// Stops the workers now (still gracefully: `$shutdown`, grace, kill). A second call
    /// (a shutdown meeting a deployment's release) waits for the first to finish.
    pub(crate) async fn stop_now(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            self.wait_stopped().await;
            return;
        }
        let tasks: Vec<_> = {
            let mut slots = self.slots.lock().await;
            slots
                .iter_mut()
                .filter_map(|s| {
                    s.active = false;
                    s.stop.send_replace(true);
                    s.task.take()
                })
                .collect()
        };
        for t in tasks {
            let _ = t.await;
        }
        for f in &self.file_fallbacks {
            Box::pin(f.stop_now()).await;
        }
        *self.state.lock().expect("state lock") = ModuleState::Stopped;
        self.stopped.send_replace(true);
    }

    /// Completes once the workers are stopped.
    pub(crate) async fn wait_stopped(&self) {
        let mut rx = self.stopped.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Its metric handles, labelled with `version` (its version id) at the first call.
    pub(crate) fn metrics(&self, version: &str) -> &VersionMetrics {
        self.metrics
            .get_or_init(|| VersionMetrics::new(&self.manifest.name, version))
    }

    /// Calls that chose this module and have not finished.
    /// Whether it is served by an in-process handler (which takes its params by move,
    /// so a call to it is never retried).
    pub(crate) fn runs_in_process(&self) -> bool {
        matches!(self.backend, Backend::InProcess(_))
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Worker processes running: started, handshake done, not stopped (serving or failing
    /// health checks).
    pub(crate) fn running_workers(&self) -> usize {
        match &self.backend {
            Backend::InProcess(_) => 0,
            Backend::Workers(list) => list
                .iter()
                .filter(|i| {
                    matches!(
                        i.state(),
                        InstanceState::Healthy | InstanceState::Degraded | InstanceState::Unhealthy
                    )
                })
                .count(),
        }
    }

    /// Whether it would take a call now: it runs in process, or a worker takes calls.
    pub(crate) fn takes_calls(&self) -> bool {
        self.ready_instances() > 0
    }

    /// How many workers take calls now: what a rolling update counts as ready.
    pub(crate) fn ready_instances(&self) -> usize {
        match &self.backend {
            Backend::InProcess(_) => 1,
            Backend::Workers(list) => list.iter().filter(|i| i.routable().is_some()).count(),
        }
    }

    /// A snapshot for display and health endpoints.
    pub(crate) fn status(&self) -> ModuleStatus {
        let m = &self.manifest;
        let (instances, health) = match &self.backend {
            Backend::InProcess(_) => (Vec::new(), HealthState::Healthy),
            Backend::Workers(list) => {
                let wanted = self.target.load(Ordering::SeqCst);
                let inst: Vec<InstanceStatus> =
                    list.iter()
                        .filter(|i| i.index < wanted || i.state() != InstanceState::Stopped)
                        .map(|i| InstanceStatus {
                            index: i.index,
                            state: i.state(),
                            pid: match i.pid.load(Ordering::Relaxed) {
                                0 => None,
                                p => Some(p),
                            },
                            address: self.manifest.endpoint.clone().or_else(|| {
                                i.connection().and_then(|c| c.handshake().address.clone())
                            }),
                            restarts: i.restarts.load(Ordering::Relaxed),
                            in_flight: i.connection().map_or(0, |c| c.outstanding()),
                            last_error: i.last_error.lock().expect("last error lock").clone(),
                        })
                        .collect();
                let up = inst
                    .iter()
                    .filter(|i| i.state == InstanceState::Healthy)
                    .count();
                let serving = inst
                    .iter()
                    .filter(|i| matches!(i.state, InstanceState::Healthy | InstanceState::Degraded))
                    .count();
                let health = if up == inst.len() && !inst.is_empty() {
                    HealthState::Healthy
                } else if serving > 0 {
                    HealthState::Degraded
                } else {
                    HealthState::Unhealthy
                };
                (inst, health)
            }
        };
        let restarts = instances.iter().map(|i| i.restarts).sum();
        let last_error = self
            .failure()
            .or_else(|| instances.iter().find_map(|i| i.last_error.clone()));
        ModuleStatus {
            name: m.name.clone(),
            implementation: self.label.clone(),
            version: m.version.clone(),
            language: m.language.clone(),
            in_process: matches!(self.backend, Backend::InProcess(_)),
            required: m.required,
            state: self.state(),
            health,
            methods: self.methods().unwrap_or_default(),
            fallback: m.fallback.iter().map(|f| f.to_string()).collect(),
            instances,
            restarts,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            last_error,
            breaker: {
                let (state, reason) = self.breaker.state();
                BreakerStatus {
                    state,
                    reason: (!reason.is_empty()).then_some(reason),
                    disabled: !self.policies().breaker.enabled,
                }
            },
        }
    }
}

/// How long a module may take to become ready: its handshake timeout, plus a health
/// check, plus its back-off so a first crash can be retried once.
pub(crate) fn ready_budget(m: &Manifest) -> Duration {
    m.handshake_timeout + m.health_check.timeout + m.restart.backoff_initial * 2
}

/// A call registered on a module; dropping it ends the registration.
pub(crate) struct CallTicket(pub Arc<Module>);

impl Drop for CallTicket {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The routable worker with the fewest calls outstanding; failing that, a retired one
/// still finishing its calls.
fn pick(instances: &[Arc<Instance>]) -> Option<(usize, Arc<Connection>)> {
    pick_by(instances, Instance::routable).or_else(|| pick_by(instances, Instance::retiring))
}

fn pick_by(
    instances: &[Arc<Instance>],
    usable: fn(&Instance) -> Option<Arc<Connection>>,
) -> Option<(usize, Arc<Connection>)> {
    let mut best: Option<(usize, Arc<Connection>)> = None;
    for i in instances {
        if let Some(c) = usable(i) {
            if best
                .as_ref()
                .is_none_or(|(_, b)| c.outstanding() < b.outstanding())
            {
                best = Some((i.index, c));
            }
        }
    }
    best
}
