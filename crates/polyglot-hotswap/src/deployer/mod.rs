//! [`Deployer`]: the deployment manager of one set of versions. This file holds the type,
//! its lock-free read path and its queries; `ops` the control operations, `drive` the
//! rollout machinery (`tick`, promotion, rollback, release), `state` what they change,
//! `builder` how one is made.

mod builder;
mod drive;
mod ops;
mod state;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;

pub use builder::{
    Deadlines, DeployerBuilder, DEFAULT_CHECK_DEADLINE, DEFAULT_DRAIN_DEADLINE,
    DEFAULT_HISTORY_LIMIT, DEFAULT_RETAIN_PREVIOUS, DEFAULT_SCALE_DEADLINE, DEFAULT_START_DEADLINE,
    DEFAULT_TICK,
};
pub use ops::RollbackTo;

use self::builder::Config;
use self::state::{Phase, Record, State};
use crate::clock::{unix_ms, Clock};
use crate::error::DeployError;
use crate::events::{DeployEvent, EventKind, Events};
use crate::health::{HealthSummary, Outcome, ShadowOutcome, Thresholds, Verdict};
use crate::hooks::{HookFailure, Instances, Lifecycle, SmokeCheck, SmokePhase};
use crate::routing::{key_point, Route, Table, TrafficShare};
use crate::status::{RolloutPhase, RolloutStatus, Snapshot, Status, SNAPSHOT_FORMAT};
use crate::version::{VersionId, VersionInfo};

/// The deployment manager of one set of versions of `T` (for the runtime: one module,
/// `T` a version's worker pool).
///
/// The read path ([`active`](Deployer::active), [`route`](Deployer::route),
/// [`record`](Deployer::record)) never locks: it reads a routing table that control
/// operations replace whole. Control operations ([`stage`](Deployer::stage),
/// [`deploy`](Deployer::deploy), [`advance`](Deployer::advance),
/// [`rollback`](Deployer::rollback), [`tick`](Deployer::tick), …) run one at a time.
/// Share it in an `Arc`.
pub struct Deployer<T> {
    cfg: Config,
    clock: Arc<dyn Clock>,
    table: ArcSwap<Table<T>>,
    /// Held by each control operation for its whole length, hooks included.
    control: tokio::sync::Mutex<()>,
    /// Held briefly, never across an await.
    state: Mutex<State<T>>,
    events: Events,
    smoke: Vec<Arc<dyn SmokeCheck<T>>>,
    lifecycle: Arc<dyn Lifecycle<T>>,
    instances: Option<Arc<dyn Instances<T>>>,
}

impl<T: Send + Sync + 'static> Deployer<T> {
    /// A builder with the defaults.
    pub fn builder() -> DeployerBuilder<T> {
        DeployerBuilder::new()
    }

    /// The active version's value: the one that serves requests when no deployment is in
    /// progress, and the rest of them while one is. Lock-free.
    #[inline]
    pub fn active(&self) -> Option<Arc<T>> {
        self.table
            .load()
            .primary
            .as_ref()
            .map(|l| Arc::clone(&l.target))
    }

    /// The active version's id. Lock-free.
    pub fn active_version(&self) -> Option<VersionId> {
        self.table
            .load()
            .primary
            .as_ref()
            .map(|l| l.version.clone())
    }

    /// Where the request with this key goes: the same key gets the same version for as
    /// long as the split does not change, and a change of split moves only the keys it
    /// must. `None` while nothing is active. Lock-free.
    #[inline]
    pub fn route(&self, key: impl AsRef<[u8]>) -> Option<Route<T>> {
        let table = self.table.load();
        let point = match table.candidate {
            Some(_) => key_point(key.as_ref(), table.seed),
            None => 0,
        };
        table.route_point(point)
    }

    /// Where a request without a key goes: a random point, so shares hold on average.
    pub fn route_any(&self) -> Option<Route<T>> {
        let table = self.table.load();
        table.route_point(fastrand::u64(..))
    }

    /// Counts one call of `version` (from [`Route::version`]). Lock-free: a few atomic
    /// additions. A version the deployer no longer knows is ignored.
    #[inline]
    pub fn record(&self, version: &str, outcome: Outcome, latency: Duration) {
        if let Some(h) = self.table.load().health_of(version) {
            h.record(self.clock.now(), outcome, latency);
        }
    }

    /// Counts one shadow call of `version` and how its answer compared with the
    /// primary's. Lock-free.
    pub fn record_shadow(&self, version: &str, outcome: ShadowOutcome, latency: Duration) {
        if let Some(h) = self.table.load().health_of(version) {
            h.record_shadow(self.clock.now(), outcome, latency);
        }
    }

    /// Each version's share of requests now.
    pub fn traffic(&self) -> Vec<TrafficShare> {
        self.table.load().shares()
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeployEvent> {
        self.events.subscribe()
    }

    /// The thresholds versions are judged against.
    pub fn thresholds(&self) -> &Thresholds {
        &self.cfg.thresholds
    }

    /// What is active, what is being deployed, and where requests go.
    pub fn status(&self) -> Status {
        let now = self.now();
        let st = self.st();
        let rollout = st.rollout.as_ref().map(|r| {
            let paused_for = r
                .paused_at
                .map(|p| now.saturating_sub(p))
                .unwrap_or_default();
            let phase = match &r.phase {
                Phase::Waiting { at_ms, .. } => RolloutPhase::Scheduled { at_ms: *at_ms },
                Phase::Checking => RolloutPhase::Checking,
                Phase::Canary { cfg, stage } => RolloutPhase::Canary {
                    stage: *stage,
                    stages: cfg.stages.len(),
                },
                Phase::AbTest { .. } => RolloutPhase::AbTest,
                Phase::Shadow { .. } => RolloutPhase::Shadow,
                Phase::Rolling(p) => RolloutPhase::Rolling {
                    ready: p.ready_new,
                    replicas: p.cfg.replicas,
                    batch: p.batch,
                },
                Phase::Promoting { .. } => RolloutPhase::Promoting,
                Phase::Grace { .. } => RolloutPhase::Grace,
            };
            let (percent, verdict) = match st.get(r.new.as_str()) {
                Some(rec) => (
                    match rec.state {
                        crate::VersionState::RollingOut { percent } => percent,
                        crate::VersionState::Active => 100,
                        _ => 0,
                    },
                    self.judge(rec, r.since, now).1,
                ),
                None => (0, self.cfg.thresholds.judge(&HealthSummary::default())),
            };
            RolloutStatus {
                version: r.new.clone(),
                from: r.stable.clone(),
                strategy: r.strategy.kind(),
                phase,
                percent,
                paused: r.paused_at.is_some(),
                phase_elapsed: now.saturating_sub(r.since).saturating_sub(paused_for),
                verdict,
            }
        });
        Status {
            deployment: self.events.deployment().to_owned(),
            active: st.active.clone(),
            rollout,
            traffic: self.traffic(),
        }
    }

    /// The history: every version known, in staging order, at most the history limit
    /// (plus those still in use).
    pub fn history(&self) -> Vec<VersionInfo> {
        let now = self.now();
        let st = self.st();
        st.records.iter().map(|r| self.info(r, now)).collect()
    }

    /// One version's history entry.
    pub fn version(&self, version: &str) -> Option<VersionInfo> {
        let now = self.now();
        let st = self.st();
        st.get(version).map(|r| self.info(r, now))
    }

    /// A version's metrics over the health window.
    pub fn health(&self, version: &str) -> Option<HealthSummary> {
        let now = self.now();
        let st = self.st();
        st.get(version)
            .map(|r| r.health.summary(now, Duration::ZERO))
    }

    /// A version's verdict over the health window.
    pub fn verdict(&self, version: &str) -> Option<Verdict> {
        self.health(version).map(|s| self.cfg.thresholds.judge(&s))
    }

    /// What to persist: the active version and the history.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.now();
        let st = self.st();
        Snapshot {
            format: SNAPSHOT_FORMAT,
            deployment: self.events.deployment().to_owned(),
            taken_at_ms: self.wall_ms(),
            active: st.active.clone(),
            deploying: st.rollout.as_ref().map(|r| r.new.clone()),
            versions: st.records.iter().map(|r| self.info(r, now)).collect(),
        }
    }

    fn info(&self, r: &Record<T>, now: Duration) -> VersionInfo {
        let live = r
            .value
            .is_some()
            .then(|| r.health.summary(now, Duration::ZERO));
        r.info(live)
    }

    // ---- helpers shared by `ops` and `drive` ----

    fn st(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the state half-changed in a way
        // that matters more than refusing all further work would.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn wall_ms(&self) -> u64 {
        unix_ms(self.clock.wall())
    }

    fn emit(&self, version: &VersionId, kind: EventKind) {
        self.events.emit(self.wall_ms(), version, kind);
    }

    /// A version's metrics since `since` and their verdict.
    fn judge(&self, r: &Record<T>, since: Duration, now: Duration) -> (HealthSummary, Verdict) {
        let s = r.health.summary(now, since);
        let v = self.cfg.thresholds.judge(&s);
        (s, v)
    }

    /// Replaces the routing table with one made from `st`.
    fn publish(&self, st: &State<T>) {
        let lane = |id: &VersionId| {
            st.get(id.as_str()).and_then(|r| {
                r.value.as_ref().map(|t| crate::routing::Lane {
                    version: id.clone(),
                    target: Arc::clone(t),
                })
            })
        };
        let primary = st.active.as_ref().and_then(lane);
        let (mut candidate, mut shadow, mut seed) = (None, None, 0);
        if let Some(r) = &st.rollout {
            let is_active = st.active.as_ref() == Some(&r.new);
            let ppm = r.phase.candidate_ppm();
            if !is_active && ppm > 0 && primary.is_some() {
                candidate = lane(&r.new).map(|l| (l, crate::routing::ppm_to_threshold(ppm)));
            }
            if let Phase::Shadow { .. } = r.phase {
                shadow = lane(&r.new);
            }
            seed = r.seed;
        }
        self.table.store(Arc::new(Table {
            primary,
            candidate,
            shadow,
            seed,
            health: st
                .records
                .iter()
                .map(|r| (r.id.clone(), Arc::clone(&r.health)))
                .collect(),
        }));
    }

    /// Runs `f` until it finishes or `limit` passes on the deployer's clock.
    async fn within<F: Future>(&self, limit: Duration, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            out = f => Some(out),
            () = self.clock.sleep(limit) => None,
        }
    }

    async fn warm(&self, version: &VersionId, target: Arc<T>) -> Result<(), DeployError> {
        let limit = self.cfg.deadlines.checks;
        let source = match self
            .within(limit, self.lifecycle.warm(version.clone(), target))
            .await
        {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => HookFailure::Failed(e),
            None => HookFailure::TimedOut(limit),
        };
        Err(DeployError::WarmFailed {
            version: version.clone(),
            source,
        })
    }

    async fn smoke(
        &self,
        version: &VersionId,
        target: &Arc<T>,
        phase: SmokePhase,
    ) -> Result<(), DeployError> {
        let limit = self.cfg.deadlines.checks;
        for check in &self.smoke {
            let run = check.run(version.clone(), Arc::clone(target), phase);
            let failure = match self.within(limit, run).await {
                Some(Ok(())) => continue,
                Some(Err(f)) => f,
                None => crate::SmokeFailure::new(format!("it did not finish within {limit:?}")),
            };
            return Err(DeployError::SmokeFailed {
                version: version.clone(),
                check: check.name().to_owned(),
                phase,
                source: failure,
            });
        }
        Ok(())
    }

    async fn scale(
        &self,
        version: &VersionId,
        target: &Arc<T>,
        replicas: usize,
    ) -> Result<(), DeployError> {
        let Some(instances) = &self.instances else {
            return Err(DeployError::NoInstances {
                version: version.clone(),
            });
        };
        let limit = self.cfg.deadlines.scale;
        let source = match self
            .within(
                limit,
                instances.scale(version.clone(), Arc::clone(target), replicas),
            )
            .await
        {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => HookFailure::Failed(e),
            None => HookFailure::TimedOut(limit),
        };
        Err(DeployError::ScaleFailed {
            version: version.clone(),
            replicas,
            source,
        })
    }
}
