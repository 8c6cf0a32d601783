//! [`Status`] and [`Snapshot`]: what a deployer shows, and what it persists and restores.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health::Verdict;
use crate::routing::TrafficShare;
use crate::strategy::{ms, StrategyKind};
use crate::version::{VersionId, VersionInfo};

/// The format of [`Snapshot`]s this crate writes; [`restore`](crate::Deployer::restore)
/// refuses others.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A deployer now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The deployer's name.
    pub deployment: String,
    /// The active version.
    pub active: Option<VersionId>,
    /// The deployment in progress.
    pub rollout: Option<RolloutStatus>,
    /// Where requests go.
    pub traffic: Vec<TrafficShare>,
}

/// A deployment in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The version being deployed.
    pub version: VersionId,
    /// The version active when it started.
    pub from: Option<VersionId>,
    /// Its strategy.
    pub strategy: StrategyKind,
    /// Where it is.
    pub phase: RolloutPhase,
    /// The new version's share of traffic.
    pub percent: u8,
    /// True while paused.
    pub paused: bool,
    /// How long the current phase has run (pauses excluded).
    #[serde(rename = "phaseElapsedMs", with = "ms")]
    pub phase_elapsed: Duration,
    /// The new version's verdict over the current phase.
    pub verdict: Verdict,
}

/// Where a deployment in progress is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "phase")]
pub enum RolloutPhase {
    /// Waiting for its scheduled time.
    Scheduled {
        /// When, ms since the Unix epoch.
        at_ms: u64,
    },
    /// Its checks run before it takes traffic.
    Checking,
    /// A canary stage.
    Canary {
        /// The stage, from 0.
        stage: usize,
        /// How many stages there are.
        stages: usize,
    },
    /// An A/B split.
    AbTest,
    /// Shadowing.
    Shadow,
    /// A rolling update.
    Rolling {
        /// New instances ready.
        ready: usize,
        /// New instances wanted.
        replicas: usize,
        /// Batches started.
        batch: usize,
    },
    /// Promoted; its after-promotion checks run.
    Promoting,
    /// Blue-green after the switch: the old version stands by.
    Grace,
}

/// What a deployer persists: the active version and the history. Write it after each
/// event (or periodically) and give it to [`restore`](crate::Deployer::restore) at the
/// next start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT`].
    pub format: u32,
    /// The deployer's name.
    pub deployment: String,
    /// When it was taken, ms since the Unix epoch.
    pub taken_at_ms: u64,
    /// The active version.
    pub active: Option<VersionId>,
    /// The version being deployed when it was taken (a restore does not resume it).
    pub deploying: Option<VersionId>,
    /// The history, in staging order.
    pub versions: Vec<VersionInfo>,
}

impl Snapshot {
    /// The most recently active version last judged healthy, other than the active one:
    /// where a restarted host would go if the active version cannot be started.
    pub fn last_known_healthy(&self) -> Option<&VersionInfo> {
        self.versions
            .iter()
            .filter(|v| Some(&v.version) != self.active.as_ref() && v.health.is_healthy())
            .filter(|v| !matches!(v.state, crate::VersionState::Failed { .. }))
            .max_by_key(|v| v.ended_at_ms)
    }
}
