//! The deployer's mutable state: its version records, which one is active, and the
//! rollout in progress. Changed only by a control operation holding the control lock.

use std::sync::Arc;
use std::time::Duration;

use crate::health::{HealthSummary, HealthWindow};
use crate::routing::PPM;
use crate::strategy::{AbTest, BlueGreen, Canary, Rolling, Shadow, Strategy};
use crate::version::{HealthMark, VersionId, VersionInfo, VersionMeta, VersionState};

/// One version.
pub(crate) struct Record<T> {
    pub id: VersionId,
    pub meta: VersionMeta,
    /// `None` once released (or while preparing).
    pub value: Option<Arc<T>>,
    pub health: Arc<HealthWindow>,
    pub state: VersionState,
    pub mark: HealthMark,
    pub strategy: Option<Strategy>,
    pub staged_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub activated_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// Its metrics when it last stopped taking traffic.
    pub summary: Option<HealthSummary>,
    /// Orders versions by how recently they served as active: larger is more recent.
    pub served: u64,
    /// A superseded version's value is kept until then, for an instant rollback.
    pub retain_until: Option<Duration>,
    /// A `HealthFailed` event was sent for its current unhealthy streak.
    pub unhealthy_reported: bool,
}

impl<T> Record<T> {
    pub(crate) fn info(&self, live: Option<HealthSummary>) -> VersionInfo {
        VersionInfo {
            version: self.id.clone(),
            state: self.state.clone(),
            meta: self.meta.clone(),
            strategy: self.strategy.clone(),
            staged_at_ms: self.staged_at_ms,
            started_at_ms: self.started_at_ms,
            activated_at_ms: self.activated_at_ms,
            ended_at_ms: self.ended_at_ms,
            health: self.mark.clone(),
            summary: live.or_else(|| self.summary.clone()),
            retained: self.value.is_some(),
        }
    }
}

/// The deployment in progress.
pub(crate) struct Rollout {
    pub new: VersionId,
    /// The version active when it started.
    pub stable: Option<VersionId>,
    /// The strategy as it was asked for (a schedule included).
    pub strategy: Strategy,
    pub phase: Phase,
    /// When the current phase (stage, batch run, grace) began; moved on by the time spent
    /// paused.
    pub since: Duration,
    pub paused_at: Option<Duration>,
    /// The kind of `Held` event last sent in this phase.
    pub held: Option<Hold>,
    /// This rollout's hash seed: each draws its own slice of keys.
    pub seed: u64,
}

/// Why a rollout waits: a `Held` event is sent once per phase for each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Its verdict is not healthy (inconclusive, or unhealthy without automatic rollback).
    Analysis,
    /// It passed and waits for `advance()`.
    Manual,
}

/// Where a rollout is.
#[derive(Clone)]
pub(crate) enum Phase {
    /// Waiting for a scheduled time.
    Waiting { at_ms: u64, then: Strategy },
    /// Its warm and smoke checks run; no traffic yet.
    Checking,
    /// A canary stage.
    Canary { cfg: Canary, stage: usize },
    /// An A/B split.
    AbTest { cfg: AbTest, percent: u8 },
    /// Shadowing.
    Shadow { cfg: Shadow },
    /// A rolling update.
    Rolling(RollingProgress),
    /// Promoted; its after-promotion smoke checks run, then blue-green's grace period.
    Promoting { grace: Option<BlueGreen> },
    /// Blue-green after the switch: the old version stands by.
    Grace { cfg: BlueGreen },
}

impl Phase {
    /// The new version's share of requests, in parts per million.
    pub(crate) fn candidate_ppm(&self) -> u64 {
        match self {
            Phase::Canary { cfg, stage } => cfg.stages[*stage].percent as u64 * 10_000,
            Phase::AbTest { percent, .. } => *percent as u64 * 10_000,
            Phase::Rolling(p) => {
                let total = (p.ready_new + p.ready_old) as u64;
                (p.ready_new as u64 * PPM).checked_div(total).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// A rolling update's counts.
#[derive(Clone)]
pub(crate) struct RollingProgress {
    pub cfg: Rolling,
    pub surge: usize,
    pub unavailable: usize,
    pub desired_new: usize,
    pub desired_old: usize,
    pub ready_new: usize,
    pub ready_old: usize,
    /// Batches started (scale-ups of the new version).
    pub batch: usize,
    /// When it last made progress.
    pub progress_at: Duration,
}

/// Everything the control operations change.
pub(crate) struct State<T> {
    /// In staging order (a version staged again moves to the end).
    pub records: Vec<Record<T>>,
    pub active: Option<VersionId>,
    pub rollout: Option<Rollout>,
    /// Values replaced while still held, to release on the next tick.
    pub pending_release: Vec<(VersionId, Arc<T>)>,
    /// The last `served` number handed out.
    pub seq: u64,
}

impl<T> State<T> {
    pub(crate) fn new() -> State<T> {
        State {
            records: Vec::new(),
            active: None,
            rollout: None,
            pending_release: Vec::new(),
            seq: 0,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Record<T>> {
        self.records.iter().find(|r| r.id.as_str() == id)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Record<T>> {
        self.records.iter_mut().find(|r| r.id.as_str() == id)
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// True for a version the deployer is using: active, or part of the rollout.
    pub(crate) fn in_use(&self, id: &str) -> bool {
        self.active.as_ref().is_some_and(|a| a.as_str() == id)
            || self.rollout.as_ref().is_some_and(|r| {
                r.new.as_str() == id || r.stable.as_ref().is_some_and(|s| s.as_str() == id)
            })
    }

    /// Sets the rollout's new version's share of traffic in its state.
    pub(crate) fn show_share(&mut self) {
        let Some(r) = &self.rollout else { return };
        let ppm = r.phase.candidate_ppm();
        let new = r.new.clone();
        if let Some(rec) = self.get_mut(new.as_str()) {
            if let VersionState::RollingOut { .. } = rec.state {
                let percent = if ppm >= PPM {
                    100
                } else {
                    (ppm / 10_000) as u8
                };
                rec.state = VersionState::RollingOut { percent };
            }
        }
    }

    /// Drops the oldest finished versions whose values are released, down to `limit`.
    /// Returns true when one was dropped.
    pub(crate) fn evict(&mut self, limit: usize) -> bool {
        let mut dropped = false;
        while self.records.len() > limit {
            let Some(i) = self.records.iter().position(|r| {
                r.value.is_none() && r.state.is_terminal() && !self.in_use(r.id.as_str())
            }) else {
                break;
            };
            self.records.remove(i);
            dropped = true;
        }
        dropped
    }
}
