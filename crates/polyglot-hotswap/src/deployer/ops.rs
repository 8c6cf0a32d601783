//! The control operations: stage, prepare, deploy, advance, pause, resume, abort,
//! rollback, set the split, restore. Each holds the control lock for its whole length.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::state::{Phase, Record, Rollout, State};
use super::Deployer;
use crate::error::{chain, DeployError, Operation};
use crate::events::EventKind;
use crate::health::HealthWindow;
use crate::hooks::{BoxError, HookFailure};
use crate::routing::key_point;
use crate::status::{Snapshot, SNAPSHOT_FORMAT};
use crate::strategy::{Strategy, StrategyError};
use crate::version::{VersionId, VersionMeta, VersionState};

/// Mixed with a version's id into the seed of its rollout's key hash, so that the keys a
/// rollout sends to its new version are not the same slice every time.
pub(super) const ROLLOUT_SEED_SALT: u64 = 0x706f_6c79_676c_6f74; // "polyglot"

/// Where a [rollback](Deployer::rollback) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTo {
    /// The most recently active version last judged healthy (normally the previous one).
    /// Candidates that fail their warm check, or were released and cannot be revived,
    /// are skipped, each with a `RollbackRefused` event.
    Previous,
    /// This version. Refused if it was judged unhealthy, failed, or fails its warm check.
    Version(String),
}

impl<T: Send + Sync + 'static> Deployer<T> {
    /// Stages `value` as `version`: it can then be [deployed](Deployer::deploy). A version
    /// that was superseded (and released), rolled back or failed can be staged again with
    /// a new value; what was known of its health (its mark) is kept, its metrics start
    /// afresh.
    ///
    /// # Errors
    /// [`DeployError::InvalidVersionId`]; [`DeployError::IllegalTransition`] when the
    /// version exists and is preparing, staged, deployed, active, or still retained.
    pub async fn stage(
        &self,
        version: impl Into<String>,
        value: Arc<T>,
        meta: VersionMeta,
    ) -> Result<(), DeployError> {
        let id = VersionId::new(version)?;
        let _op = self.control.lock().await;
        {
            let mut st = self.st();
            self.admit(&mut st, &id, Some(value), meta, Operation::Stage)?;
            self.publish(&st);
        }
        self.emit(&id, EventKind::Staged);
        Ok(())
    }

    /// Stages `version` from a future that starts it (for the runtime: spawns its pool).
    /// The version is *preparing* while `start` runs, which other operations do not wait
    /// for; it has [`Deadlines::start`](crate::Deadlines::start) to finish.
    ///
    /// # Errors
    /// As [`stage`](Deployer::stage); [`DeployError::StartFailed`] when `start` fails or
    /// runs past its deadline (the version is then *failed*).
    pub async fn prepare<F, E>(
        &self,
        version: impl Into<String>,
        meta: VersionMeta,
        start: F,
    ) -> Result<(), DeployError>
    where
        F: Future<Output = Result<Arc<T>, E>>,
        E: Into<BoxError>,
    {
        let id = VersionId::new(version)?;
        {
            let _op = self.control.lock().await;
            let mut st = self.st();
            self.admit(&mut st, &id, None, meta, Operation::Prepare)?;
            self.publish(&st);
        }
        // Should this future be dropped while `start` runs, the version must not stay
        // preparing for ever.
        let mut cancelled = Cancelled {
            deployer: self,
            version: Some(id.clone()),
        };
        let limit = self.cfg.deadlines.start;
        let started = match self.within(limit, start).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(HookFailure::Failed(e.into())),
            None => Err(HookFailure::TimedOut(limit)),
        };
        let _op = self.control.lock().await;
        cancelled.version = None;
        let (wall, now) = (self.wall_ms(), self.now());
        let failed = {
            let mut st = self.st();
            let Some(r) = st
                .get_mut(id.as_str())
                .filter(|r| r.state == VersionState::Preparing)
            else {
                // Nothing else changes a preparing version; if this ever happens, say so.
                return Err(DeployError::UnknownVersion {
                    version: id.to_string(),
                    op: Operation::Prepare,
                });
            };
            let failed = match started {
                Ok(value) => {
                    r.value = Some(value);
                    r.state = VersionState::Staged;
                    None
                }
                Err(source) => {
                    let e = DeployError::StartFailed {
                        version: id.clone(),
                        source,
                    };
                    r.state = VersionState::Failed { reason: chain(&e) };
                    r.ended_at_ms = Some(wall);
                    r.summary = Some(r.health.summary(now, Duration::ZERO));
                    Some(e)
                }
            };
            self.publish(&st);
            failed
        };
        match failed {
            None => {
                self.emit(&id, EventKind::Staged);
                Ok(())
            }
            Some(e) => {
                self.emit(&id, EventKind::Failed { reason: chain(&e) });
                Err(e)
            }
        }
    }

    /// Adds a version, or takes a finished one back, as staged (with a value) or
    /// preparing (without).
    fn admit(
        &self,
        st: &mut State<T>,
        id: &VersionId,
        value: Option<Arc<T>>,
        meta: VersionMeta,
        op: Operation,
    ) -> Result<(), DeployError> {
        let state = match value {
            Some(_) => VersionState::Staged,
            None => VersionState::Preparing,
        };
        let health = Arc::new(HealthWindow::new(self.cfg.window, self.cfg.buckets));
        let wall = self.wall_ms();
        if let Some(i) = st.records.iter().position(|r| r.id == *id) {
            let r = &st.records[i];
            let retained = r.state == VersionState::Superseded && r.value.is_some();
            if !r.state.is_terminal() || retained || st.in_use(id.as_str()) {
                return Err(DeployError::IllegalTransition {
                    version: id.clone(),
                    state: r.state.clone(),
                    op,
                });
            }
            let mut r = st.records.remove(i);
            if let Some(old) = r.value.take() {
                st.pending_release.push((id.clone(), old));
            }
            r.value = value;
            r.state = state;
            r.meta = meta;
            r.staged_at_ms = wall;
            r.health = health;
            r.summary = None;
            r.retain_until = None;
            r.unhealthy_reported = false;
            st.records.push(r);
        } else {
            st.records.push(Record {
                id: id.clone(),
                meta,
                value,
                health,
                state,
                mark: Default::default(),
                strategy: None,
                staged_at_ms: wall,
                started_at_ms: None,
                activated_at_ms: None,
                ended_at_ms: None,
                summary: None,
                served: 0,
                retain_until: None,
                unhealthy_reported: false,
            });
        }
        st.evict(self.cfg.history_limit);
        Ok(())
    }

    /// Deploys the staged `version` by `strategy`: runs its warm check and smoke checks,
    /// then moves traffic as the strategy says. Immediate and blue-green switch within
    /// this call; the others go on with [`tick`](Deployer::tick) and
    /// [`advance`](Deployer::advance). Works whatever the active version's health: a fix
    /// can be deployed over a broken version.
    ///
    /// # Errors
    /// [`DeployError::UnknownVersion`], [`DeployError::IllegalTransition`] (not staged),
    /// [`DeployError::DeploymentInProgress`], [`DeployError::InvalidStrategy`],
    /// [`DeployError::NoInstances`]; and when the deployment itself fails (the version is
    /// then failed, or rolled back): [`DeployError::WarmFailed`],
    /// [`DeployError::SmokeFailed`], [`DeployError::ScaleFailed`].
    pub async fn deploy(&self, version: &str, strategy: Strategy) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let (id, inner) = {
            let mut st = self.st();
            let Some(r) = st.get(version) else {
                return Err(DeployError::UnknownVersion {
                    version: version.to_owned(),
                    op: Operation::Deploy,
                });
            };
            let id = r.id.clone();
            if let Some(ro) = &st.rollout {
                return Err(DeployError::DeploymentInProgress {
                    op: Operation::Deploy,
                    requested: id,
                    in_progress: ro.new.clone(),
                });
            }
            if r.state != VersionState::Staged {
                return Err(DeployError::IllegalTransition {
                    version: id,
                    state: r.state.clone(),
                    op: Operation::Deploy,
                });
            }
            strategy
                .validate()
                .map_err(|source| DeployError::InvalidStrategy {
                    version: id.clone(),
                    op: Operation::Deploy,
                    source,
                })?;
            let inner = match &strategy {
                Strategy::Scheduled(s) => (*s.then).clone(),
                other => other.clone(),
            };
            if matches!(inner, Strategy::Rolling(_)) && self.instances.is_none() {
                return Err(DeployError::NoInstances { version: id });
            }
            if let Strategy::Scheduled(s) = &strategy {
                if self.wall_ms() < s.at_ms {
                    let at_ms = s.at_ms;
                    if let Some(r) = st.get_mut(version) {
                        r.strategy = Some(strategy.clone());
                    }
                    st.rollout = Some(Rollout {
                        new: id.clone(),
                        stable: st.active.clone(),
                        strategy: strategy.clone(),
                        phase: Phase::Waiting { at_ms, then: inner },
                        since: self.now(),
                        paused_at: None,
                        held: None,
                        seed: key_point(id.as_str().as_bytes(), ROLLOUT_SEED_SALT),
                    });
                    drop(st);
                    self.emit(&id, EventKind::Scheduled { at_ms });
                    return Ok(());
                }
            }
            (id, inner)
        };
        self.start(id, strategy, inner).await
    }

    /// Moves the deployment on now: the next canary stage (or the promotion after the
    /// last), the promotion of an A/B test's B or of a shadow, the next rolling step, the
    /// end of a blue-green grace period, or the start of a scheduled deployment whose
    /// time has come. The analysis must have passed: time run and a healthy verdict.
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`]; [`DeployError::NotApplicable`] while paused;
    /// [`DeployError::TooEarly`] before a schedule's time; [`DeployError::NotReady`] when
    /// the analysis has not passed; those of the promotion's smoke checks.
    pub async fn advance(&self) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let now = self.now();
        let (new, phase, since, shown, verdict) = {
            let st = self.st();
            let Some(r) = &st.rollout else {
                return Err(DeployError::NoDeployment {
                    op: Operation::Advance,
                });
            };
            if r.paused_at.is_some() {
                return Err(DeployError::NotApplicable {
                    version: r.new.clone(),
                    op: Operation::Advance,
                    reason: "it is paused; resume it first".into(),
                });
            }
            let verdict = st
                .get(r.new.as_str())
                .map(|rec| self.judge(rec, r.since, now).1);
            (
                r.new.clone(),
                r.phase.clone(),
                r.since,
                r.strategy.clone(),
                verdict,
            )
        };
        let ran = now.saturating_sub(since);
        let not_ready = |reason: String| DeployError::NotReady {
            version: new.clone(),
            reason,
        };
        let passed = verdict.as_ref().is_some_and(|v| v.is_healthy());
        let verdict = verdict.map(|v| v.to_string()).unwrap_or_default();
        match phase {
            Phase::Waiting { at_ms, then } => {
                let wall = self.wall_ms();
                if wall < at_ms {
                    return Err(DeployError::TooEarly {
                        version: new,
                        at_ms,
                        early: Duration::from_millis(at_ms - wall),
                    });
                }
                self.start(new, shown, then).await
            }
            Phase::Checking | Phase::Promoting { .. } => Err(DeployError::NotApplicable {
                version: new,
                op: Operation::Advance,
                reason: "its checks are running".into(),
            }),
            Phase::Canary { cfg, stage } => {
                let s = cfg.stages[stage];
                if ran < s.duration {
                    return Err(not_ready(format!(
                        "stage {stage} ({}%) has run {ran:?} of its {:?}",
                        s.percent, s.duration
                    )));
                }
                if !passed {
                    return Err(not_ready(format!(
                        "the analysis of stage {stage} ({}%) has not passed: {verdict}",
                        s.percent
                    )));
                }
                self.next_stage().await
            }
            Phase::AbTest { .. } => {
                if !passed {
                    return Err(not_ready(format!(
                        "B has not passed its analysis: {verdict}"
                    )));
                }
                self.promote(None).await
            }
            Phase::Shadow { cfg } => {
                if ran < cfg.duration {
                    return Err(not_ready(format!(
                        "it has shadowed for {ran:?} of its {:?}",
                        cfg.duration
                    )));
                }
                if !passed {
                    return Err(not_ready(format!(
                        "its shadow analysis has not passed: {verdict}"
                    )));
                }
                self.promote(None).await
            }
            Phase::Rolling(_) => self.rolling_step().await,
            Phase::Grace { .. } => {
                if !passed {
                    return Err(not_ready(format!(
                        "it has not been judged healthy since the switch: {verdict}"
                    )));
                }
                self.succeed();
                Ok(())
            }
        }
    }

    /// Pauses the deployment: it neither advances nor runs into its deadlines until
    /// [`resume`](Deployer::resume)d. A version judged unhealthy while paused is still
    /// rolled back (when automatic rollback is on).
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`]; [`DeployError::NotApplicable`] when already paused.
    pub async fn pause(&self) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let now = self.now();
        let new = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Err(DeployError::NoDeployment {
                    op: Operation::Pause,
                });
            };
            if r.paused_at.is_some() {
                return Err(DeployError::NotApplicable {
                    version: r.new.clone(),
                    op: Operation::Pause,
                    reason: "it is already paused".into(),
                });
            }
            r.paused_at = Some(now);
            r.new.clone()
        };
        self.emit(&new, EventKind::Paused);
        Ok(())
    }

    /// Resumes a paused deployment; its stage and deadlines go on from where they were.
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`]; [`DeployError::NotApplicable`] when not paused.
    pub async fn resume(&self) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let now = self.now();
        let new = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Err(DeployError::NoDeployment {
                    op: Operation::Resume,
                });
            };
            let Some(paused_at) = r.paused_at.take() else {
                return Err(DeployError::NotApplicable {
                    version: r.new.clone(),
                    op: Operation::Resume,
                    reason: "it is not paused".into(),
                });
            };
            let paused_for = now.saturating_sub(paused_at);
            r.since += paused_for;
            if let Phase::Rolling(p) = &mut r.phase {
                p.progress_at += paused_for;
            }
            r.new.clone()
        };
        self.emit(&new, EventKind::Resumed);
        Ok(())
    }

    /// Ends the deployment: the new version is *failed* with `why` in its reason, and the
    /// traffic goes back to the version active before it started, without a health
    /// check (it is where the traffic was). A first deployment that has already switched
    /// has nothing to go back to: its version stays active.
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`].
    pub async fn abort(&self, why: &str) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        if self.st().rollout.is_none() {
            return Err(DeployError::NoDeployment {
                op: Operation::Abort,
            });
        }
        self.abort_rollout(format!("aborted: {why}")).await;
        Ok(())
    }

    /// Rolls back: the deployment in progress if there is one, else the active version.
    /// The target must be known healthy (for [`RollbackTo::Previous`]) or at least not
    /// known unhealthy (for a named one), is revived if it was released, and must pass
    /// its warm check before it takes the traffic. Returns the version that took it.
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`] when nothing is active;
    /// [`DeployError::NoRollbackTarget`] when no candidate passed (nothing changed; the
    /// error lists the refusals and what to do instead); for a named target
    /// [`DeployError::UnknownVersion`] and [`DeployError::RollbackRefused`].
    pub async fn rollback(&self, to: RollbackTo, why: &str) -> Result<VersionId, DeployError> {
        let _op = self.control.lock().await;
        self.roll_back(to, format!("rolled back by hand: {why}"), false)
            .await
    }

    /// Changes an A/B test's split: B gets `percent_b` percent of the keys. Keys move only
    /// between A and B in one direction, and only as many as the change needs.
    ///
    /// # Errors
    /// [`DeployError::NoDeployment`]; [`DeployError::NotApplicable`] when the deployment is
    /// not an A/B test; [`DeployError::InvalidStrategy`] for a percent outside 1 to 99.
    pub async fn set_split(&self, percent_b: u8) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let new = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Err(DeployError::NoDeployment {
                    op: Operation::SetSplit,
                });
            };
            let Phase::AbTest { percent, .. } = &mut r.phase else {
                return Err(DeployError::NotApplicable {
                    version: r.new.clone(),
                    op: Operation::SetSplit,
                    reason: format!(
                        "only an A/B test has a split; this deployment is {}",
                        r.strategy.kind()
                    ),
                });
            };
            if !(1..=99).contains(&percent_b) {
                return Err(DeployError::InvalidStrategy {
                    version: r.new.clone(),
                    op: Operation::SetSplit,
                    source: StrategyError {
                        field: "abTest.percentB".into(),
                        problem: format!("{percent_b} is not between 1 and 99"),
                    },
                });
            }
            *percent = percent_b;
            let new = r.new.clone();
            st.show_share();
            self.publish(&st);
            new
        };
        self.emit(
            &new,
            EventKind::StageAdvanced {
                stage: 0,
                percent: percent_b,
            },
        );
        Ok(())
    }

    /// Restores a new deployer from a [`Snapshot`]: its history, and its active version
    /// with the value `value_of` gives for it. `value_of` is also asked for each version
    /// that was staged, or superseded and retained; a `None` leaves it without a value.
    /// A deployment in progress when the snapshot was taken is not resumed: a version
    /// that was still rolling out is *failed* ("interrupted by a restart").
    ///
    /// # Errors
    /// [`DeployError::Restore`] when the deployer already holds versions, the snapshot's
    /// format is unknown or it is inconsistent, or no value is given for its active
    /// version.
    pub async fn restore(
        &self,
        snapshot: Snapshot,
        mut value_of: impl FnMut(&VersionId) -> Option<Arc<T>>,
    ) -> Result<(), DeployError> {
        let _op = self.control.lock().await;
        let fail = |problem: String| DeployError::Restore {
            deployment: self.events.deployment().to_owned(),
            problem,
        };
        if !self.st().records.is_empty() {
            return Err(fail(
                "this deployer already holds versions; restore into a new one".into(),
            ));
        }
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(fail(format!(
                "its format is {}, and this build reads format {SNAPSHOT_FORMAT}",
                snapshot.format
            )));
        }
        if let Some(a) = &snapshot.active {
            if !snapshot
                .versions
                .iter()
                .any(|v| v.version == *a && v.state == VersionState::Active)
            {
                return Err(fail(format!(
                    "its active version {a} is not in its history as active"
                )));
            }
        }
        for (i, v) in snapshot.versions.iter().enumerate() {
            if snapshot.versions[..i]
                .iter()
                .any(|w| w.version == v.version)
            {
                return Err(fail(format!("version {} appears twice", v.version)));
            }
        }
        let now = self.now();
        let mut records = Vec::with_capacity(snapshot.versions.len());
        for info in snapshot.versions {
            let is_active = snapshot.active.as_ref() == Some(&info.version);
            let (state, value) = if is_active {
                let Some(v) = value_of(&info.version) else {
                    return Err(fail(format!(
                        "no value was given for its active version {}",
                        info.version
                    )));
                };
                (VersionState::Active, Some(v))
            } else {
                match info.state {
                    s @ (VersionState::Preparing
                    | VersionState::RollingOut { .. }
                    | VersionState::RollingBack) => (
                        VersionState::Failed {
                            reason: format!("interrupted by a restart while {s}"),
                        },
                        None,
                    ),
                    VersionState::Staged => match value_of(&info.version) {
                        Some(v) => (VersionState::Staged, Some(v)),
                        None => (
                            VersionState::Failed {
                                reason: "staged, but not given a value after a restart".into(),
                            },
                            None,
                        ),
                    },
                    VersionState::Active | VersionState::Superseded => {
                        let v = info.retained.then(|| value_of(&info.version)).flatten();
                        (VersionState::Superseded, v)
                    }
                    s => (s, None),
                }
            };
            let retain_until = (state == VersionState::Superseded && value.is_some())
                .then_some(now + self.cfg.retain_previous);
            records.push(Record {
                id: info.version,
                meta: info.meta,
                value,
                health: Arc::new(HealthWindow::new(self.cfg.window, self.cfg.buckets)),
                state,
                mark: info.health,
                strategy: info.strategy,
                staged_at_ms: info.staged_at_ms,
                started_at_ms: info.started_at_ms,
                activated_at_ms: info.activated_at_ms,
                ended_at_ms: info.ended_at_ms,
                summary: info.summary,
                served: 0,
                retain_until,
                unhealthy_reported: false,
            });
        }
        // The order versions stopped serving in, for "the most recent version known
        // healthy", comes back from when each ended.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| (records[i].ended_at_ms.unwrap_or(0), i));
        for (rank, i) in order.into_iter().enumerate() {
            records[i].served = rank as u64 + 1;
        }
        {
            let mut st = self.st();
            st.seq = records.len() as u64;
            st.records = records;
            st.active = snapshot.active.clone();
            st.rollout = None;
            st.evict(self.cfg.history_limit);
            self.publish(&st);
        }
        if let Some(a) = &snapshot.active {
            self.emit(a, EventKind::Restored);
        }
        Ok(())
    }
}

/// Fails a version still preparing when the `prepare` that started it is dropped.
struct Cancelled<'a, T: Send + Sync + 'static> {
    deployer: &'a Deployer<T>,
    version: Option<VersionId>,
}

impl<T: Send + Sync + 'static> Drop for Cancelled<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.version.take() else {
            return;
        };
        let mut st = self.deployer.st();
        if let Some(r) = st
            .get_mut(id.as_str())
            .filter(|r| r.state == VersionState::Preparing)
        {
            r.state = VersionState::Failed {
                reason: "its prepare() was cancelled before it finished starting".into(),
            };
        }
    }
}
