//! The metrics the runtime records through the [`metrics`] facade: their names, labels
//! and latency buckets, the per-call handles, and the state gauges.
//!
//! With no recorder installed every record is a no-op on a handle that does nothing: a
//! program that does not want metrics pays a map lookup per call (a call's latency comes
//! from the clock reads its attempts make anyway, for deployments' health). A
//! program that wants them installs a recorder (`metrics-exporter-prometheus`, as
//! `polyglot-host` does for its `/metrics`) **before it loads modules**, then calls
//! [`describe`] once, and [`Runtime::record_state_metrics`] before each scrape.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use polyglot_core::{telemetry, Runtime};
//!
//! let prometheus = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(telemetry::CALL_DURATION.into()),
//!         &telemetry::LATENCY_BUCKETS,
//!     )?
//!     .install_recorder()?;
//! telemetry::describe();
//! let runtime = Runtime::default();
//! runtime.load_dir("polyglot-modules".as_ref()).await;
//! // ... calls ...
//! runtime.record_state_metrics(); // in the scrape handler
//! println!("{}", prometheus.render());
//! # Ok(()) }
//! ```
//!
//! # What is recorded where
//! - Per call, in `Runtime::call*`: [`CALLS`] by module, method, version and outcome (`ok`
//!   or the [`CallError::kind`]), and [`CALL_DURATION`] by module, method and version (of
//!   the calls that reached an implementation: from the first attempt to the answer).
//!   Both are recorded on handles registered once per module version and method and
//!   cached on the version, so a call allocates no label and looks nothing up in the
//!   recorder. `version` is the version the call was routed to (a call a fallback served
//!   still counts under the version that was asked); the fallback is in
//!   [`FALLBACK_CALLS`].
//! - When it happens: [`FALLBACK_CALLS`] (a fallback served a call) and
//!   [`WORKER_RESTARTS`] (a supervisor starts a worker again).
//! - From a snapshot, by [`Runtime::record_state_metrics`]: [`CALLS_IN_FLIGHT`],
//!   [`WORKERS_RUNNING`], [`MODULE_INFO`], [`MODULE_AVAILABLE`] and the deployment gauges.
//!   Computing them at scrape time costs the call path nothing.
//!
//! # Label values a caller cannot multiply
//! A module or method name that a caller sent but that does not exist is recorded as
//! [`UNKNOWN`], never as itself: a client calling random names cannot create series
//! without bound. A module version records at most [`MAX_METHOD_LABELS`] method names;
//! beyond, [`OTHER`] (this cap is what bounds a module whose methods are not known yet:
//! no `capabilities`, and no worker ever started to announce them).
//!
//! # Limits
//! Handles are registered with the recorder installed when a version takes its first
//! call: a recorder installed after that is not seen by that version (reloaded and newly
//! deployed versions see it). State gauges of a module or version that went away keep
//! their last value unless the recorder forgets idle gauges (`polyglot-host` sets an idle
//! timeout on gauges for this).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Histogram, SharedString, Unit,
};
use polyglot_hotswap::RolloutPhase;

use crate::error::CallError;
use crate::module::Module;
use crate::resilience::BreakerState;
use crate::runtime::{Reply, Runtime, Slot};

/// Calls, by `module`, `method`, `version` and `outcome` (counter).
pub const CALLS: &str = "polyglot_calls_total";
/// How long calls took, from the first attempt to the answer (fallbacks included), by
/// `module`, `method` and `version`, in seconds (histogram, buckets [`LATENCY_BUCKETS`]).
pub const CALL_DURATION: &str = "polyglot_call_duration_seconds";
/// Calls a fallback served, by `module` (the one asked) and `served_by` (counter).
pub const FALLBACK_CALLS: &str = "polyglot_fallback_calls_total";
/// Worker restarts, by `module` (counter).
pub const WORKER_RESTARTS: &str = "polyglot_worker_restarts_total";
/// Calls in flight, by `module`, over all its running versions (gauge).
pub const CALLS_IN_FLIGHT: &str = "polyglot_calls_in_flight";
/// Worker processes running (started, handshake done, not stopped), by `module`, over all
/// its running versions (gauge).
pub const WORKERS_RUNNING: &str = "polyglot_workers_running";
/// 1 for each module's active version, by `module`, `version` and `language` (an
/// info-style gauge: join on it to label other series with the version).
pub const MODULE_INFO: &str = "polyglot_module_info";
/// 1 while a call to the module would be served (by it or a fallback), else 0, by
/// `module` (gauge).
pub const MODULE_AVAILABLE: &str = "polyglot_module_available";
/// 1 while a deployment of the module is in progress, else 0, by `module` (gauge).
pub const DEPLOYMENT_IN_PROGRESS: &str = "polyglot_deployment_in_progress";
/// Each version's share of the module's calls, 0 to 1, by `module` and `version`
/// (gauge; a shadow, which gets copies outside the shares, is not listed).
pub const DEPLOYMENT_TRAFFIC_RATIO: &str = "polyglot_deployment_traffic_ratio";
/// The stage a canary is in, from 1; 0 when no canary runs, by `module` (gauge).
pub const DEPLOYMENT_STAGE: &str = "polyglot_deployment_stage";
/// Retries, and retries the budget refused, by module, method and outcome (`retried`,
/// `budget_spent`).
pub const RETRIES: &str = "polyglot_retries_total";
/// Each running version's circuit breaker: 0 closed, 1 half-open, 2 open.
pub const BREAKER_STATE: &str = "polyglot_breaker_state";
/// Breaker state changes by module, version and new state.
pub const BREAKER_TRANSITIONS: &str = "polyglot_breaker_transitions_total";

/// The upper bounds, in seconds, of [`CALL_DURATION`]'s buckets: from 50 µs (an
/// in-process builtin answers in tens of microseconds, a worker over stdio in about 80)
/// to 30 s (the default call timeout), about three buckets a decade.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The label value of a module or method that does not exist (or of a version when none
/// took the call). Starts with `_`, which no module name may.
pub const UNKNOWN: &str = "_unknown";

/// The label value of the methods of a version beyond [`MAX_METHOD_LABELS`].
pub const OTHER: &str = "_other";

/// The most method names one module version records as labels: far more than any real
/// module offers, few enough that a module without a method list (a worker that never
/// started) cannot be made to create series without bound.
pub const MAX_METHOD_LABELS: usize = 256;

/// The `outcome` label values of [`CALLS`]: `ok`, then every [`CallError::kind`].
pub const OUTCOMES: [&str; 11] = [
    OK,
    "module_not_found",
    "method_not_found",
    "timeout",
    "worker_exited",
    "remote",
    "frame_too_large",
    "overloaded",
    "unavailable",
    "fallback_failed",
    "shutting_down",
];

const OK: &str = "ok";

/// Describes every metric (help text and unit) to the installed recorder. Call it once,
/// after installing the recorder.
pub fn describe() {
    describe_counter!(
        CALLS,
        Unit::Count,
        "Calls by module, method, version and outcome (ok or the error kind)."
    );
    describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "How long calls took, from the first attempt to the answer, by module, method and version."
    );
    describe_counter!(
        FALLBACK_CALLS,
        Unit::Count,
        "Calls served by a fallback, by the module asked and the implementation that served."
    );
    describe_counter!(WORKER_RESTARTS, Unit::Count, "Worker restarts by module.");
    describe_counter!(
        RETRIES,
        Unit::Count,
        "Retries of idempotent calls by module, method and outcome (retried, budget_spent)."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state by module and running version: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(
        BREAKER_TRANSITIONS,
        Unit::Count,
        "Circuit breaker state changes by module, version and new state."
    );
    describe_gauge!(CALLS_IN_FLIGHT, Unit::Count, "Calls in flight by module.");
    describe_gauge!(
        WORKERS_RUNNING,
        Unit::Count,
        "Worker processes running by module."
    );
    describe_gauge!(
        MODULE_INFO,
        "1 for each module's active version, with its version and language."
    );
    describe_gauge!(
        MODULE_AVAILABLE,
        "1 while a call to the module would be served, by it or a fallback."
    );
    describe_gauge!(
        DEPLOYMENT_IN_PROGRESS,
        "1 while a deployment of the module is in progress."
    );
    describe_gauge!(
        DEPLOYMENT_TRAFFIC_RATIO,
        "Each version's share of the module's calls, 0 to 1."
    );
    describe_gauge!(
        DEPLOYMENT_STAGE,
        "The stage a canary deployment is in, from 1; 0 when none runs."
    );
}

/// The metric handles of one module version, per method.
pub(crate) struct VersionMetrics {
    module: SharedString,
    version: SharedString,
    /// Read on every call without a lock; replaced whole when a method is first seen.
    methods: ArcSwap<HashMap<Box<str>, Arc<MethodMetrics>>>,
    /// Serializes the insertion of new methods.
    adding: Mutex<()>,
}

impl VersionMetrics {
    pub(crate) fn new(module: &str, version: &str) -> VersionMetrics {
        VersionMetrics {
            module: SharedString::from(Arc::<str>::from(module)),
            version: SharedString::from(Arc::<str>::from(version)),
            methods: ArcSwap::from_pointee(HashMap::new()),
            adding: Mutex::new(()),
        }
    }

    /// The handles of `method`, registered at its first call ([`OTHER`]'s beyond
    /// [`MAX_METHOD_LABELS`] methods).
    pub(crate) fn method(&self, method: &str) -> Arc<MethodMetrics> {
        if let Some(m) = self.methods.load().get(method) {
            return m.clone();
        }
        let _one_at_a_time = self
            .adding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let map = self.methods.load_full();
        if let Some(m) = map.get(method) {
            return m.clone();
        }
        if map.len() >= MAX_METHOD_LABELS && method != OTHER {
            drop(_one_at_a_time);
            return self.method(OTHER);
        }
        let handles = Arc::new(MethodMetrics::new(
            self.module.clone(),
            SharedString::from(method.to_owned()),
            self.version.clone(),
        ));
        let mut next = HashMap::clone(&map);
        next.insert(method.into(), handles.clone());
        self.methods.store(Arc::new(next));
        handles
    }

    /// The handles of a method the version does not offer.
    pub(crate) fn unknown_method(&self) -> Arc<MethodMetrics> {
        self.method(UNKNOWN)
    }
}

/// The metric handles of one method of one module version.
pub(crate) struct MethodMetrics {
    labels: [(&'static str, SharedString); 3],
    duration: Histogram,
    /// One counter per outcome, registered when the outcome first happens (so that the
    /// output lists the outcomes that happened, not eleven zeros per method).
    calls: [OnceLock<Counter>; OUTCOMES.len()],
}

impl MethodMetrics {
    fn new(module: SharedString, method: SharedString, version: SharedString) -> MethodMetrics {
        let labels = [("module", module), ("method", method), ("version", version)];
        let duration = histogram!(CALL_DURATION, labels_of(&labels));
        MethodMetrics {
            labels,
            duration,
            calls: Default::default(),
        }
    }

    fn record(&self, outcome: &'static str, took: Option<Duration>) {
        if let Some(took) = took {
            self.duration.record(took.as_secs_f64());
        }
        let counter = || {
            let mut labels = labels_of(&self.labels);
            labels.push(metrics::Label::new("outcome", outcome));
            counter!(CALLS, labels)
        };
        match OUTCOMES.iter().position(|o| *o == outcome) {
            Some(i) => self.calls[i].get_or_init(counter).increment(1),
            // An error kind added without its place in OUTCOMES: still counted.
            None => counter().increment(1),
        }
    }
}

fn labels_of(labels: &[(&'static str, SharedString)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect()
}

/// What the call path leaves for a call's metrics.
#[derive(Default)]
pub(crate) struct CallRecord {
    /// The handles of the version and method the call was routed to, once it was.
    pub handles: Option<Arc<MethodMetrics>>,
    /// How long its attempts took, from the first one's start; none when no implementation
    /// was tried.
    pub took: Option<Duration>,
}

impl CallRecord {
    /// Records a call that ended with `result`: on its handles when it reached a module
    /// version, else (the module does not exist, has no version, or the runtime is
    /// shutting down) under `module` with method [`UNKNOWN`] and no version. Its latency
    /// when an implementation was tried.
    pub(crate) fn finish(self, module: &str, result: &Result<Reply, CallError>) {
        let outcome = match result {
            Ok(_) => OK,
            Err(e) => e.kind(),
        };
        match self.handles {
            Some(h) => h.record(outcome, self.took),
            None => counter!(CALLS, "module" => module.to_owned(), "method" => UNKNOWN,
                "version" => "", "outcome" => outcome)
            .increment(1),
        }
    }
}

/// Counts a call of `module` that the fallback `served_by` served.
pub(crate) fn fallback_used(module: &str, served_by: &str) {
    counter!(FALLBACK_CALLS, "module" => module.to_owned(), "served_by" => served_by.to_owned())
        .increment(1);
}

/// Counts a retry of a call of `module`'s `method`.
pub(crate) fn retried(module: &str, method: &str) {
    counter!(RETRIES, "module" => module.to_owned(), "method" => method.to_owned(),
        "outcome" => "retried")
    .increment(1);
}

/// Counts a retry the budget refused.
pub(crate) fn retry_refused(module: &str, method: &str) {
    counter!(RETRIES, "module" => module.to_owned(), "method" => method.to_owned(),
        "outcome" => "budget_spent")
    .increment(1);
}

/// Counts a breaker's change of state.
pub(crate) fn breaker_changed(module: &str, version: &str, to: BreakerState) {
    counter!(BREAKER_TRANSITIONS, "module" => module.to_owned(), "version" => version.to_owned(),
        "to" => to.as_str())
    .increment(1);
}

/// Counts a restart of one of `module`'s workers.
pub(crate) fn worker_restarted(module: &str) {
    counter!(WORKER_RESTARTS, "module" => module.to_owned()).increment(1);
}

impl Runtime {
    /// Sets the state gauges on the installed `metrics` recorder from a snapshot taken now:
    /// [`CALLS_IN_FLIGHT`] and [`WORKERS_RUNNING`] (over every running version of each
    /// module), [`MODULE_INFO`] and [`MODULE_AVAILABLE`], and for modules loaded from a
    /// folder [`DEPLOYMENT_IN_PROGRESS`], [`DEPLOYMENT_TRAFFIC_RATIO`] and
    /// [`DEPLOYMENT_STAGE`]. A scrape handler calls it before rendering; it costs the call
    /// path nothing.
    pub fn record_state_metrics(&self) {
        let slots = self.inner().modules.load();
        for (name, slot) in slots.iter() {
            let module = SharedString::from(Arc::<str>::from(name.as_str()));
            let (versions, active, deployment) = match slot {
                Slot::Mounted(m) => (
                    vec![m.clone()],
                    Some((m.manifest.version.clone(), m.clone())),
                    None,
                ),
                Slot::Deployed(d) => {
                    let status = d.deployer.status();
                    let active = status
                        .active
                        .as_ref()
                        .map(ToString::to_string)
                        .zip(d.active());
                    (d.versions.live(), active, Some(status))
                }
            };
            let sum = |f: fn(&Module) -> usize| versions.iter().map(|m| f(m)).sum::<usize>() as f64;
            let by_id = match slot {
                Slot::Mounted(m) => vec![(m.manifest.version.clone(), m.clone())],
                Slot::Deployed(d) => d.versions.live_by_id(),
            };
            for (version, m) in by_id {
                gauge!(BREAKER_STATE, "module" => module.clone(), "version" => version)
                    .set(m.breaker.state().0.gauge());
            }
            gauge!(CALLS_IN_FLIGHT, "module" => module.clone()).set(sum(Module::in_flight));
            gauge!(WORKERS_RUNNING, "module" => module.clone()).set(sum(Module::running_workers));
            if let Some((version, m)) = active {
                gauge!(MODULE_INFO, "module" => module.clone(), "version" => version,
                    "language" => m.manifest.language.clone())
                .set(1.0);
            }
            let available = self.serving(name).is_some();
            gauge!(MODULE_AVAILABLE, "module" => module.clone())
                .set(f64::from(u8::from(available)));
            let Some(status) = deployment else { continue };
            let stage = match status.rollout.as_ref().map(|r| &r.phase) {
                Some(RolloutPhase::Canary { stage, .. }) => *stage as f64 + 1.0,
                _ => 0.0,
            };
            gauge!(DEPLOYMENT_IN_PROGRESS, "module" => module.clone())
                .set(f64::from(u8::from(status.rollout.is_some())));
            gauge!(DEPLOYMENT_STAGE, "module" => module.clone()).set(stage);
            for t in status.traffic.iter().filter(|t| !t.shadow) {
                gauge!(DEPLOYMENT_TRAFFIC_RATIO, "module" => module.clone(),
                    "version" => t.version.to_string())
                .set(t.percent / 100.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_ok_then_every_error_kind() {
        let (module, method) = (String::from("m"), String::from("f"));
        let kinds = [
            CallError::ModuleNotFound {
                module: module.clone(),
            },
            CallError::MethodNotFound {
                module: module.clone(),
                method: method.clone(),
                offered: Vec::new(),
            },
            CallError::Timeout {
                module: module.clone(),
                method: method.clone(),
                timeout: Duration::from_secs(1),
            },
            CallError::WorkerExited {
                module: module.clone(),
                method: method.clone(),
                instance: 0,
                reason: String::new(),
            },
            CallError::Remote {
                module: module.clone(),
                method: method.clone(),
                code: "E".into(),
                message: String::new(),
                data: None,
            },
            CallError::FrameTooLarge {
                module: module.clone(),
                method: method.clone(),
                what: "request",
                size: 2,
                limit: 1,
            },
            CallError::Overloaded {
                module: module.clone(),
                method: method.clone(),
                queue: 1,
            },
            CallError::Unavailable {
                module: module.clone(),
                method: method.clone(),
                causes: Vec::new(),
            },
            CallError::FallbackFailed {
                module: module.clone(),
                method: method.clone(),
                causes: Vec::new(),
                served_by: "b".into(),
                error: Box::new(CallError::ShuttingDown),
            },
            CallError::ShuttingDown,
        ];
        assert_eq!(kinds.len() + 1, OUTCOMES.len());
        for k in kinds {
            assert!(OUTCOMES.contains(&k.kind()), "{}", k.kind());
        }
        assert_eq!(OUTCOMES[0], "ok");
    }

    #[test]
    fn buckets_rise_from_50_microseconds_to_30_seconds() {
        assert_eq!(LATENCY_BUCKETS[0], 0.000_05);
        assert_eq!(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1], 30.0);
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_version_records_a_bounded_number_of_methods() {
        let v = VersionMetrics::new("m", "1.0.0");
        for i in 0..MAX_METHOD_LABELS + 10 {
            v.method(&format!("method{i}"));
        }
        let map = v.methods.load();
        assert_eq!(map.len(), MAX_METHOD_LABELS + 1, "the cap plus `_other`");
        assert!(map.contains_key(OTHER));
        assert!(Arc::ptr_eq(&v.method("method0"), &v.method("method0")));
    }
}
