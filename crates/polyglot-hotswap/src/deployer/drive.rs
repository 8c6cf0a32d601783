//! The rollout machinery: [`Deployer::tick`] (judge, step, release), and the moves the
//! operations share: start, next stage, promote, succeed, roll back, abort, the rolling
//! step.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use super::ops::{RollbackTo, ROLLOUT_SEED_SALT};
use super::state::{Hold, Phase, Record, RollingProgress, Rollout};
use super::Deployer;
use crate::error::{chain, list_refusals, DeployError, Operation, Refusal};
use crate::events::EventKind;
use crate::hooks::SmokePhase;
use crate::rolling::{self, Counts};
use crate::routing::key_point;
use crate::strategy::{Advance, BlueGreen, Strategy};
use crate::version::{HealthMark, VersionId, VersionState};

impl<T: Send + Sync + 'static> Deployer<T> {
    /// Judges the versions in use, moves the deployment on (its automatic advances, its
    /// deadlines, its automatic rollback), and releases versions no longer needed.
    /// Deterministic under a [`ManualClock`](crate::ManualClock). Call it periodically
    /// ([`drive`](Deployer::drive) does), or by hand in tests.
    pub async fn tick(&self) {
        let op = self.control.lock().await;
        self.recover();
        self.judge_in_use();
        if let Err(e) = self.step().await {
            tracing::debug!(
                deployment = %self.events.deployment(),
                error = %chain(&e),
                "the deployment did not move on"
            );
        }
        let released = self.collect_releases();
        drop(op);
        // Outside the control lock: a slow drain must not hold up a rollback.
        let limit = self.cfg.deadlines.drain;
        for (id, value) in released {
            let drained = self
                .within(limit, self.lifecycle.release(id.clone(), value))
                .await
                .is_some();
            self.emit(&id, EventKind::Released { drained });
        }
    }

    /// Ticks every `every` on the deployer's clock, for ever. Spawn it:
    /// `tokio::spawn(async move { deployer.drive(DEFAULT_TICK).await })`.
    pub async fn drive(&self, every: Duration) {
        loop {
            self.tick().await;
            self.clock.sleep(every).await;
        }
    }

    /// Puts back a version left *rolling back* by a rollback whose future was dropped
    /// while it checked its target: the rollback did not happen.
    fn recover(&self) {
        let mut st = self.st();
        let active = st.active.clone();
        let new = st.rollout.as_ref().map(|r| r.new.clone());
        let mut changed = false;
        for r in st
            .records
            .iter_mut()
            .filter(|r| r.state == VersionState::RollingBack)
        {
            r.state = if active.as_ref() == Some(&r.id) {
                VersionState::Active
            } else if new.as_ref() == Some(&r.id) {
                VersionState::RollingOut { percent: 0 }
            } else {
                VersionState::Superseded
            };
            changed = true;
        }
        if changed {
            st.show_share();
            self.publish(&st);
        }
    }

    /// Updates the health marks of the active version and of the one being deployed, and
    /// reports a version turning unhealthy.
    fn judge_in_use(&self) {
        let (now, wall) = (self.now(), self.wall_ms());
        let mut events = Vec::new();
        {
            let mut st = self.st();
            let mut judged: Vec<(VersionId, Duration)> = Vec::new();
            if let Some(r) = &st.rollout {
                if !matches!(r.phase, Phase::Waiting { .. } | Phase::Checking) {
                    judged.push((r.new.clone(), r.since));
                }
            }
            if let Some(a) = &st.active {
                if !judged.iter().any(|(v, _)| v == a) {
                    judged.push((a.clone(), Duration::ZERO));
                }
            }
            for (id, since) in judged {
                let Some(rec) = st.get_mut(id.as_str()) else {
                    continue;
                };
                let (_, verdict) = self.judge(rec, since, now);
                if verdict.is_healthy() {
                    rec.mark = HealthMark::Healthy { at_ms: wall };
                    rec.unhealthy_reported = false;
                } else if verdict.is_unhealthy() {
                    let reason = verdict.to_string();
                    rec.mark = HealthMark::Unhealthy {
                        at_ms: wall,
                        reason: reason.clone(),
                    };
                    if !rec.unhealthy_reported {
                        rec.unhealthy_reported = true;
                        events.push((id, EventKind::HealthFailed { reason }));
                    }
                }
            }
        }
        for (id, kind) in events {
            self.emit(&id, kind);
        }
    }

    /// One step of the deployment in progress.
    async fn step(&self) -> Result<(), DeployError> {
        let now = self.now();
        let Some((new, phase, since, paused, shown, verdict)) = ({
            let st = self.st();
            st.rollout.as_ref().and_then(|r| {
                let verdict = self.judge(st.get(r.new.as_str())?, r.since, now).1;
                Some((
                    r.new.clone(),
                    r.phase.clone(),
                    r.since,
                    r.paused_at.is_some(),
                    r.strategy.clone(),
                    verdict,
                ))
            })
        }) else {
            return Ok(());
        };
        let watched = !matches!(
            phase,
            Phase::Waiting { .. } | Phase::Checking | Phase::Promoting { .. }
        );
        if watched && verdict.is_unhealthy() && self.cfg.auto_rollback {
            let reason = format!("{}: {verdict}", describe(&phase));
            return self
                .roll_back(RollbackTo::Previous, reason, true)
                .await
                .map(drop);
        }
        if paused {
            return Ok(());
        }
        let ran = now.saturating_sub(since);
        match phase {
            Phase::Waiting { at_ms, then } => {
                if self.wall_ms() >= at_ms {
                    return self.start(new, shown, then).await;
                }
                Ok(())
            }
            // Only an operation holds a rollout in these phases, and none runs while a
            // tick does: the one that did was cancelled (its future dropped) mid-way.
            Phase::Checking => {
                self.abort_rollout(
                    "interrupted: the operation that started it was cancelled during its \
                     checks before traffic"
                        .into(),
                )
                .await;
                Ok(())
            }
            Phase::Promoting { grace } => {
                let value = self.st().get(new.as_str()).and_then(|r| r.value.clone());
                match value {
                    Some(v) => self.after_promotion(&new, &v, grace).await,
                    None => Ok(()),
                }
            }
            Phase::Canary { cfg, stage } => {
                let s = cfg.stages[stage];
                if ran >= s.duration {
                    if verdict.is_healthy() {
                        if cfg.advance == Advance::Auto {
                            return self.next_stage().await;
                        }
                        self.hold(
                            Hold::Manual,
                            format!(
                                "stage {stage} ({}%) passed its analysis; waiting for advance()",
                                s.percent
                            ),
                        );
                    } else {
                        self.hold(
                            Hold::Analysis,
                            format!("stage {stage} ({}%): {verdict}", s.percent),
                        );
                    }
                }
                if ran >= cfg.stage_deadline {
                    let reason = format!(
                        "stage {stage} ({}%) did not advance within its deadline of {:?} ({verdict})",
                        s.percent, cfg.stage_deadline
                    );
                    return self
                        .roll_back(RollbackTo::Previous, reason, true)
                        .await
                        .map(drop);
                }
                Ok(())
            }
            Phase::AbTest { cfg, percent } => {
                if ran >= cfg.deadline {
                    // No decision: keep A, the version the test started from.
                    self.abort_rollout(format!(
                        "the A/B test ({percent}% to B) reached its deadline of {:?} without a decision, so A was kept",
                        cfg.deadline
                    ))
                    .await;
                }
                Ok(())
            }
            Phase::Shadow { cfg } => {
                if ran >= cfg.duration {
                    if verdict.is_healthy() {
                        if cfg.advance == Advance::Auto {
                            return self.promote(None).await;
                        }
                        self.hold(
                            Hold::Manual,
                            "the shadow passed its analysis; waiting for advance()".into(),
                        );
                    } else {
                        self.hold(Hold::Analysis, format!("shadow: {verdict}"));
                    }
                }
                if ran >= cfg.deadline {
                    let reason = format!(
                        "the shadow did not pass within its deadline of {:?} ({verdict})",
                        cfg.deadline
                    );
                    return self
                        .roll_back(RollbackTo::Previous, reason, true)
                        .await
                        .map(drop);
                }
                Ok(())
            }
            Phase::Rolling(_) => self.rolling_step().await,
            Phase::Grace { cfg } => {
                if ran >= cfg.grace {
                    if verdict.is_healthy() {
                        self.succeed();
                        return Ok(());
                    }
                    self.hold(
                        Hold::Analysis,
                        format!("the grace period is over; {verdict}"),
                    );
                }
                if ran >= cfg.deadline {
                    let reason = format!(
                        "not judged healthy within {:?} of the switch ({verdict})",
                        cfg.deadline
                    );
                    return self
                        .roll_back(RollbackTo::Previous, reason, true)
                        .await
                        .map(drop);
                }
                Ok(())
            }
        }
    }

    /// Sends `Held` once per phase and kind of hold.
    fn hold(&self, kind: Hold, reason: String) {
        let new = {
            let mut st = self.st();
            match st.rollout.as_mut() {
                Some(r) if r.held != Some(kind) => {
                    r.held = Some(kind);
                    r.new.clone()
                }
                _ => return,
            }
        };
        self.emit(&new, EventKind::Held { reason });
    }

    /// Starts `strategy` (never a schedule) for the staged `new`; `shown` is the strategy
    /// as asked for, for the history.
    pub(super) async fn start(
        &self,
        new: VersionId,
        shown: Strategy,
        strategy: Strategy,
    ) -> Result<(), DeployError> {
        let (now, wall) = (self.now(), self.wall_ms());
        let (value, stable) = {
            let mut st = self.st();
            let stable = st.active.clone();
            let Some(rec) = st.get_mut(new.as_str()) else {
                return Err(DeployError::UnknownVersion {
                    version: new.to_string(),
                    op: Operation::Deploy,
                });
            };
            let Some(value) = rec.value.clone() else {
                return Err(DeployError::IllegalTransition {
                    version: new.clone(),
                    state: rec.state.clone(),
                    op: Operation::Deploy,
                });
            };
            rec.state = VersionState::RollingOut { percent: 0 };
            rec.started_at_ms = Some(wall);
            rec.strategy = Some(shown.clone());
            rec.unhealthy_reported = false;
            st.rollout = Some(Rollout {
                new: new.clone(),
                stable: stable.clone(),
                strategy: shown.clone(),
                phase: Phase::Checking,
                since: now,
                paused_at: None,
                held: None,
                seed: key_point(new.as_str().as_bytes(), ROLLOUT_SEED_SALT),
            });
            (value, stable)
        };
        self.emit(
            &new,
            EventKind::Started {
                strategy: shown.kind(),
                from: stable.clone(),
            },
        );
        let mut checked = self.warm(&new, Arc::clone(&value)).await;
        if checked.is_ok() {
            checked = self.smoke(&new, &value, SmokePhase::BeforeTraffic).await;
        }
        if let (Ok(()), Strategy::Rolling(r), None) = (&checked, &strategy, &stable) {
            checked = self.scale(&new, &value, r.replicas).await;
        }
        if let Err(e) = checked {
            self.abort_rollout(chain(&e)).await;
            return Err(e);
        }
        if stable.is_none() {
            // Nothing to move traffic from, nothing to compare with.
            return self.promote(None).await;
        }
        match strategy {
            Strategy::Immediate | Strategy::Scheduled(_) => self.promote(None).await,
            Strategy::BlueGreen(cfg) => self.promote(Some(cfg)).await,
            Strategy::Canary(cfg) => {
                let percent = cfg.stages[0].percent;
                self.enter(Phase::Canary { cfg, stage: 0 });
                self.emit(&new, EventKind::StageAdvanced { stage: 0, percent });
                Ok(())
            }
            Strategy::AbTest(cfg) => {
                let percent = cfg.percent_b;
                self.enter(Phase::AbTest { cfg, percent });
                self.emit(&new, EventKind::StageAdvanced { stage: 0, percent });
                Ok(())
            }
            Strategy::Shadow(cfg) => {
                self.enter(Phase::Shadow { cfg });
                self.emit(
                    &new,
                    EventKind::StageAdvanced {
                        stage: 0,
                        percent: 0,
                    },
                );
                Ok(())
            }
            Strategy::Rolling(cfg) => {
                let (surge, unavailable) = cfg.resolve();
                let replicas = cfg.replicas;
                self.enter(Phase::Rolling(RollingProgress {
                    cfg,
                    surge,
                    unavailable,
                    desired_new: 0,
                    desired_old: replicas,
                    ready_new: 0,
                    ready_old: 0,
                    batch: 0,
                    progress_at: self.now(),
                }));
                self.rolling_step().await
            }
        }
    }

    /// Puts the rollout in `phase` from now, and publishes its traffic.
    fn enter(&self, phase: Phase) {
        let now = self.now();
        let mut st = self.st();
        if let Some(r) = st.rollout.as_mut() {
            r.phase = phase;
            r.since = now;
            r.held = None;
        }
        st.show_share();
        self.publish(&st);
    }

    /// The next canary stage, or the promotion after the last.
    pub(super) async fn next_stage(&self) -> Result<(), DeployError> {
        let now = self.now();
        let advanced = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Ok(());
            };
            let Phase::Canary { cfg, stage } = &mut r.phase else {
                return Ok(());
            };
            if *stage + 1 >= cfg.stages.len() {
                None
            } else {
                *stage += 1;
                let (stage, percent) = (*stage, cfg.stages[*stage].percent);
                r.since = now;
                r.held = None;
                let new = r.new.clone();
                st.show_share();
                self.publish(&st);
                Some((new, stage, percent))
            }
        };
        match advanced {
            Some((new, stage, percent)) => {
                self.emit(&new, EventKind::StageAdvanced { stage, percent });
                Ok(())
            }
            None => self.promote(None).await,
        }
    }

    /// Switches all traffic to the new version and makes it active; runs the
    /// after-promotion smoke checks (a failure rolls back); then either succeeds or, for
    /// blue-green, enters the grace period.
    pub(super) async fn promote(&self, grace: Option<BlueGreen>) -> Result<(), DeployError> {
        let (now, wall) = (self.now(), self.wall_ms());
        let (new, from, value) = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Ok(());
            };
            r.phase = Phase::Promoting {
                grace: grace.clone(),
            };
            r.since = now;
            r.held = None;
            let (new, stable) = (r.new.clone(), r.stable.clone());
            if let Some(s) = &stable {
                let seq = st.next_seq();
                if let Some(rec) = st.get_mut(s.as_str()) {
                    rec.state = VersionState::Superseded;
                    rec.ended_at_ms = Some(wall);
                    rec.served = seq;
                    rec.summary = Some(rec.health.summary(now, Duration::ZERO));
                }
            }
            let Some(rec) = st.get_mut(new.as_str()) else {
                return Ok(());
            };
            rec.state = VersionState::Active;
            rec.activated_at_ms = Some(wall);
            let value = rec.value.clone();
            st.active = Some(new.clone());
            self.publish(&st);
            (new, stable, value)
        };
        self.emit(&new, EventKind::Promoted { from });
        let Some(value) = value else {
            return Ok(());
        };
        self.after_promotion(&new, &value, grace).await
    }

    /// The after-promotion smoke checks (a failure rolls back), then the grace period or
    /// success.
    async fn after_promotion(
        &self,
        new: &VersionId,
        value: &Arc<T>,
        grace: Option<BlueGreen>,
    ) -> Result<(), DeployError> {
        if let Err(e) = self.smoke(new, value, SmokePhase::AfterPromotion).await {
            let _ = self.roll_back(RollbackTo::Previous, chain(&e), true).await;
            return Err(e);
        }
        match grace {
            Some(cfg) => {
                self.enter(Phase::Grace { cfg });
                Ok(())
            }
            None => {
                self.succeed();
                Ok(())
            }
        }
    }

    /// Ends the deployment as a success.
    pub(super) fn succeed(&self) {
        let now = self.now();
        let new = {
            let mut st = self.st();
            let Some(r) = st.rollout.take() else {
                return;
            };
            // Blue-green's grace period was the old version's standby time already.
            let retain = match r.phase {
                Phase::Grace { .. } => Duration::ZERO,
                _ => self.cfg.retain_previous,
            };
            if let Some(s) = &r.stable {
                if let Some(rec) = st.get_mut(s.as_str()) {
                    if rec.state == VersionState::Superseded {
                        rec.retain_until = Some(now + retain);
                    }
                }
            }
            self.publish(&st);
            r.new
        };
        self.emit(&new, EventKind::Succeeded);
    }

    /// Rolls back the deployment in progress, or the active version. See
    /// [`Deployer::rollback`]. `automatic` rollbacks (health, deadlines, failed checks)
    /// that find no target abort instead: the traffic returns to where it was.
    pub(super) async fn roll_back(
        &self,
        to: RollbackTo,
        reason: String,
        automatic: bool,
    ) -> Result<VersionId, DeployError> {
        let (from, before, candidates, replicas) = {
            let mut st = self.st();
            let from = match &st.rollout {
                Some(r) => match r.phase {
                    Phase::Waiting { .. } => {
                        return Err(DeployError::NotApplicable {
                            version: r.new.clone(),
                            op: Operation::Rollback,
                            reason: "it is scheduled and has taken no traffic; abort() cancels it"
                                .into(),
                        })
                    }
                    _ => r.new.clone(),
                },
                None => match &st.active {
                    Some(a) => a.clone(),
                    None => {
                        return Err(DeployError::NoDeployment {
                            op: Operation::Rollback,
                        })
                    }
                },
            };
            let candidates: Vec<VersionId> = match &to {
                RollbackTo::Version(name) => {
                    let Some(rec) = st.get(name) else {
                        return Err(DeployError::UnknownVersion {
                            version: name.clone(),
                            op: Operation::Rollback,
                        });
                    };
                    let refuse = |reason: String| DeployError::RollbackRefused {
                        version: rec.id.clone(),
                        reason,
                    };
                    if rec.id == from {
                        return Err(refuse("it is the version being rolled back".into()));
                    }
                    if matches!(
                        rec.state,
                        VersionState::Preparing
                            | VersionState::RollingOut { .. }
                            | VersionState::RollingBack
                            | VersionState::Failed { .. }
                    ) {
                        return Err(refuse(format!("it is {}", rec.state)));
                    }
                    if rec.activated_at_ms.is_none() {
                        return Err(refuse("it has never been active; deploy it instead".into()));
                    }
                    if let HealthMark::Unhealthy { reason, .. } = &rec.mark {
                        return Err(refuse(format!("it was judged unhealthy: {reason}")));
                    }
                    vec![rec.id.clone()]
                }
                RollbackTo::Previous => {
                    let mut c: Vec<&Record<T>> = st
                        .records
                        .iter()
                        .filter(|r| {
                            r.id != from
                                && r.mark.is_healthy()
                                && matches!(
                                    r.state,
                                    VersionState::Active
                                        | VersionState::Superseded
                                        | VersionState::Staged
                                )
                        })
                        .collect();
                    c.sort_by_key(|r| {
                        Reverse(if r.state == VersionState::Active {
                            u64::MAX
                        } else {
                            r.served
                        })
                    });
                    c.into_iter().map(|r| r.id.clone()).collect()
                }
            };
            // A version deployed by a rolling update may have had its instances scaled
            // away; a target is scaled back to the same count before its warm check.
            let replicas = st.get(from.as_str()).and_then(|r| match &r.strategy {
                Some(Strategy::Rolling(c)) => Some(c.replicas),
                Some(Strategy::Scheduled(s)) => match &*s.then {
                    Strategy::Rolling(c) => Some(c.replicas),
                    _ => None,
                },
                _ => None,
            });
            let Some(rec) = st.get_mut(from.as_str()) else {
                return Err(DeployError::NoDeployment {
                    op: Operation::Rollback,
                });
            };
            let before = std::mem::replace(&mut rec.state, VersionState::RollingBack);
            (from, before, candidates, replicas)
        };

        let mut refused = Vec::new();
        let mut chosen = None;
        for id in candidates {
            let held = self.st().get(id.as_str()).and_then(|r| r.value.clone());
            let value = match held {
                Some(v) => v,
                None => {
                    let limit = self.cfg.deadlines.checks;
                    match self.within(limit, self.lifecycle.revive(id.clone())).await {
                        Some(Ok(v)) => v,
                        Some(Err(e)) => {
                            refused.push(self.refuse(
                                &id,
                                format!("it was released and was not revived: {}", chain(&*e)),
                                false,
                            ));
                            continue;
                        }
                        None => {
                            refused.push(self.refuse(
                                &id,
                                format!("it was released and its revival took over {limit:?}"),
                                false,
                            ));
                            continue;
                        }
                    }
                }
            };
            if let Some(n) = replicas.filter(|_| self.instances.is_some()) {
                if let Err(e) = self.scale(&id, &value, n).await {
                    refused.push(self.refuse(&id, chain(&e), false));
                    self.st().pending_release.push((id.clone(), value));
                    continue;
                }
            }
            match self.warm(&id, Arc::clone(&value)).await {
                Ok(()) => {
                    chosen = Some((id, value));
                    break;
                }
                Err(e) => {
                    refused.push(self.refuse(&id, chain(&e), true));
                    let mut st = self.st();
                    if st.get(id.as_str()).is_some_and(|r| r.value.is_none()) {
                        // Revived for nothing: let it go again.
                        st.pending_release.push((id.clone(), value));
                    }
                }
            }
        }

        let Some((to_id, value)) = chosen else {
            let hint = {
                let mut st = self.st();
                if let Some(rec) = st.get_mut(from.as_str()) {
                    if rec.state == VersionState::RollingBack {
                        rec.state = before;
                    }
                }
                st.rollout.as_ref().map(|r| match &r.stable {
                    Some(s) => format!(
                        "abort() returns the traffic to {s}, the version active before this deployment"
                    ),
                    None => "abort() ends this deployment".into(),
                })
            };
            if automatic && hint.is_some() {
                self.abort_rollout(format!(
                    "{reason}; no version known healthy could take the traffic{}",
                    list_refusals(&refused)
                ))
                .await;
                return Err(DeployError::NoRollbackTarget {
                    from,
                    refused,
                    hint: None,
                });
            }
            return Err(DeployError::NoRollbackTarget {
                from,
                refused,
                hint,
            });
        };

        let (now, wall) = (self.now(), self.wall_ms());
        {
            let mut st = self.st();
            let rollout = st.rollout.take();
            let old_active = st.active.clone();
            let seq = st.next_seq();
            if let Some(rec) = st.get_mut(from.as_str()) {
                rec.state = VersionState::RolledBack;
                rec.ended_at_ms = Some(wall);
                rec.summary = Some(rec.health.summary(now, Duration::ZERO));
                rec.retain_until = None;
                if old_active.as_ref() == Some(&from) {
                    rec.served = seq;
                }
            }
            let retain_until = Some(now + self.cfg.retain_previous);
            // The active version, when it is neither side: it stands by, superseded.
            if let Some(a) = old_active.filter(|a| *a != from && *a != to_id) {
                let seq = st.next_seq();
                if let Some(rec) = st.get_mut(a.as_str()) {
                    rec.state = VersionState::Superseded;
                    rec.ended_at_ms = Some(wall);
                    rec.served = seq;
                    rec.retain_until = retain_until;
                }
            }
            // The version a blue-green switched from, when it was not the target.
            if let Some(s) = rollout.and_then(|r| r.stable).filter(|s| *s != to_id) {
                if let Some(rec) = st.get_mut(s.as_str()) {
                    if rec.state == VersionState::Superseded {
                        rec.retain_until = retain_until;
                    }
                }
            }
            if let Some(rec) = st.get_mut(to_id.as_str()) {
                if rec.value.is_none() {
                    rec.value = Some(value);
                }
                if rec.state != VersionState::Active {
                    rec.state = VersionState::Active;
                    rec.activated_at_ms = Some(wall);
                }
                rec.retain_until = None;
            }
            st.active = Some(to_id.clone());
            self.publish(&st);
        }
        tracing::warn!(
            deployment = %self.events.deployment(),
            version = %from,
            to = %to_id,
            reason = %reason,
            "rolled back"
        );
        self.emit(
            &from,
            EventKind::RolledBack {
                to: to_id.clone(),
                reason,
            },
        );
        if replicas.is_some() {
            self.scale_away(&from).await;
        }
        Ok(to_id)
    }

    /// Reports a refused rollback target; marks it unhealthy when its health is why.
    fn refuse(&self, id: &VersionId, reason: String, unhealthy: bool) -> Refusal {
        if unhealthy {
            let at_ms = self.wall_ms();
            if let Some(rec) = self.st().get_mut(id.as_str()) {
                rec.mark = HealthMark::Unhealthy {
                    at_ms,
                    reason: reason.clone(),
                };
            }
        }
        self.emit(
            id,
            EventKind::RollbackRefused {
                reason: reason.clone(),
            },
        );
        Refusal {
            version: id.clone(),
            reason,
        }
    }

    /// Asks for no instances of a version left behind by a rolling update (best effort).
    async fn scale_away(&self, id: &VersionId) {
        let value = self.st().get(id.as_str()).and_then(|r| r.value.clone());
        if let Some(v) = value {
            if let Err(e) = self.scale(id, &v, 0).await {
                tracing::warn!(
                    deployment = %self.events.deployment(),
                    version = %id,
                    error = %chain(&e),
                    "could not scale a rolled-back version down"
                );
            }
        }
    }

    /// Ends the deployment in progress as failed, traffic back to the version active
    /// before it (if it switched; a first deployment that switched keeps its version).
    pub(super) async fn abort_rollout(&self, reason: String) {
        let (now, wall) = (self.now(), self.wall_ms());
        let (new, rolling, kept) = {
            let mut st = self.st();
            let Some(r) = st.rollout.take() else {
                return;
            };
            let new_active = st.active.as_ref() == Some(&r.new);
            let stable = r
                .stable
                .clone()
                .filter(|s| st.get(s.as_str()).is_some_and(|x| x.value.is_some()));
            let kept = new_active && stable.is_none();
            let seq = st.next_seq();
            if let Some(rec) = st.get_mut(r.new.as_str()) {
                if kept {
                    rec.mark = HealthMark::Unhealthy {
                        at_ms: wall,
                        reason: reason.clone(),
                    };
                } else {
                    rec.state = VersionState::Failed {
                        reason: reason.clone(),
                    };
                    rec.ended_at_ms = Some(wall);
                    rec.summary = Some(rec.health.summary(now, Duration::ZERO));
                    if new_active {
                        rec.served = seq;
                    }
                }
            }
            if let (true, Some(s)) = (new_active, &stable) {
                if let Some(rec) = st.get_mut(s.as_str()) {
                    rec.state = VersionState::Active;
                    rec.retain_until = None;
                }
                st.active = Some(s.clone());
            }
            self.publish(&st);
            let rolling = match (&r.phase, stable) {
                (Phase::Rolling(p), Some(s)) => Some((s, p.cfg.replicas)),
                _ => None,
            };
            (r.new, rolling, kept)
        };
        let reason = if kept {
            format!("{reason}; there is no version to return to, so it stays active")
        } else {
            reason
        };
        tracing::warn!(
            deployment = %self.events.deployment(),
            version = %new,
            reason = %reason,
            "deployment failed"
        );
        self.emit(&new, EventKind::Failed { reason });
        if let Some((stable, replicas)) = rolling {
            let value = self.st().get(stable.as_str()).and_then(|r| r.value.clone());
            if let Some(v) = value {
                if let Err(e) = self.scale(&stable, &v, replicas).await {
                    tracing::warn!(
                        deployment = %self.events.deployment(),
                        version = %stable,
                        error = %chain(&e),
                        "could not scale the old version back up"
                    );
                }
            }
            self.scale_away(&new).await;
        }
    }

    /// One step of a rolling update: read ready counts, scale the old version down and the
    /// new one up as [`rolling::plan`] says, let traffic follow the ready instances, and
    /// promote once every new instance is ready and the version is judged healthy.
    pub(super) async fn rolling_step(&self) -> Result<(), DeployError> {
        let now = self.now();
        let Some(inst) = self.instances.clone() else {
            return Ok(());
        };
        let Some((new, new_v, stable, p, since)) = ({
            let st = self.st();
            st.rollout.as_ref().and_then(|r| {
                let Phase::Rolling(p) = &r.phase else {
                    return None;
                };
                let value = |id: &VersionId| st.get(id.as_str()).and_then(|x| x.value.clone());
                let new_v = value(&r.new)?;
                let stable = r
                    .stable
                    .as_ref()
                    .and_then(|s| value(s).map(|v| (s.clone(), v)));
                Some((r.new.clone(), new_v, stable, p.clone(), r.since))
            })
        }) else {
            return Ok(());
        };
        let ready_old = || stable.as_ref().map(|(s, v)| inst.ready(s, v)).unwrap_or(0);
        let plan = rolling::plan(Counts {
            replicas: p.cfg.replicas,
            surge: p.surge,
            unavailable: p.unavailable,
            desired_new: p.desired_new,
            desired_old: p.desired_old,
            ready_new: inst.ready(&new, &new_v),
            ready_old: ready_old(),
        });
        if plan.old < p.desired_old {
            // Traffic leaves the instances about to go before they go.
            let mut st = self.st();
            if let Some(Phase::Rolling(q)) = st.rollout.as_mut().map(|r| &mut r.phase) {
                q.ready_new = inst.ready(&new, &new_v).min(plan.new);
                q.ready_old = ready_old().min(plan.old);
            }
            st.show_share();
            self.publish(&st);
        }
        if plan.old != p.desired_old {
            if let Some((s, v)) = &stable {
                if let Err(e) = self.scale(s, v, plan.old).await {
                    let _ = self.roll_back(RollbackTo::Previous, chain(&e), true).await;
                    return Err(e);
                }
            }
        }
        if plan.new != p.desired_new {
            if let Err(e) = self.scale(&new, &new_v, plan.new).await {
                let _ = self.roll_back(RollbackTo::Previous, chain(&e), true).await;
                return Err(e);
            }
        }
        let (ready_new, ready_old) = (inst.ready(&new, &new_v), ready_old());
        let (batch, percent, progress_at) = {
            let mut st = self.st();
            let Some(r) = st.rollout.as_mut() else {
                return Ok(());
            };
            let Phase::Rolling(q) = &mut r.phase else {
                return Ok(());
            };
            let started = plan.new > q.desired_new;
            if started || plan.old != q.desired_old || ready_new > q.ready_new {
                q.progress_at = now;
                r.held = None;
            }
            if started {
                q.batch += 1;
            }
            q.desired_new = plan.new;
            q.desired_old = plan.old;
            q.ready_new = ready_new;
            q.ready_old = ready_old;
            let batch = started.then_some(q.batch - 1);
            let progress_at = q.progress_at;
            st.show_share();
            self.publish(&st);
            let percent = match st.get(new.as_str()).map(|r| &r.state) {
                Some(VersionState::RollingOut { percent }) => *percent,
                _ => 0,
            };
            (batch, percent, progress_at)
        };
        if let Some(stage) = batch {
            self.emit(&new, EventKind::StageAdvanced { stage, percent });
        }
        let replicas = p.cfg.replicas;
        if plan.old == 0 && plan.new == replicas && ready_new >= replicas {
            let verdict = {
                let st = self.st();
                st.get(new.as_str()).map(|r| self.judge(r, since, now).1)
            };
            match verdict {
                Some(v) if v.is_healthy() => return self.promote(None).await,
                Some(v) => self.hold(
                    Hold::Analysis,
                    format!("all {replicas} new instances are ready; {v}"),
                ),
                None => {}
            }
        }
        if now.saturating_sub(progress_at) >= p.cfg.progress_deadline {
            let reason = format!(
                "the rolling update made no progress for {:?}: {ready_new} of {replicas} new instances ready",
                p.cfg.progress_deadline
            );
            return self
                .roll_back(RollbackTo::Previous, reason, true)
                .await
                .map(drop);
        }
        Ok(())
    }

    /// Lets go of the values no longer needed: rolled-back and failed versions at once,
    /// superseded ones after their standby time. Drops old history past the limit.
    fn collect_releases(&self) -> Vec<(VersionId, Arc<T>)> {
        let now = self.now();
        let mut st = self.st();
        let mut out = std::mem::take(&mut st.pending_release);
        for i in 0..st.records.len() {
            let id = st.records[i].id.clone();
            if st.in_use(id.as_str()) {
                continue;
            }
            let r = &mut st.records[i];
            let due = match r.state {
                VersionState::RolledBack | VersionState::Failed { .. } => true,
                VersionState::Superseded => r.retain_until.is_none_or(|t| now >= t),
                _ => false,
            };
            if due {
                if let Some(v) = r.value.take() {
                    out.push((id, v));
                }
            }
        }
        if st.evict(self.cfg.history_limit) {
            self.publish(&st);
        }
        out
    }
}

/// The phase in words, for reasons.
fn describe(phase: &Phase) -> String {
    match phase {
        Phase::Canary { cfg, stage } => {
            format!("canary stage {stage} ({}%)", cfg.stages[*stage].percent)
        }
        Phase::AbTest { percent, .. } => format!("A/B test ({percent}% to B)"),
        Phase::Shadow { .. } => "shadow".into(),
        Phase::Rolling(p) => format!(
            "rolling update ({} of {} new instances ready)",
            p.ready_new, p.cfg.replicas
        ),
        Phase::Grace { .. } => "blue-green grace period".into(),
        Phase::Waiting { .. } => "waiting for its schedule".into(),
        Phase::Checking => "checks before traffic".into(),
        Phase::Promoting { .. } => "checks after promotion".into(),
    }
}
