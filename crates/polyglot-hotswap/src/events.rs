//! [`DeployEvent`]: every transition, broadcast to whoever subscribed.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::strategy::StrategyKind;
use crate::version::VersionId;

/// How many events a slow subscriber may fall behind before it misses some (it is told
/// how many it missed). A whole canary, with its holds and a rollback, is a few dozen.
pub const EVENT_BUFFER: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployEvent {
    /// When, in milliseconds since the Unix epoch (by the deployer's clock).
    pub timestamp_ms: u64,
    /// The deployer's name (the module it deploys, for the runtime).
    pub deployment: String,
    /// The version it is about.
    pub version: VersionId,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum EventKind {
    /// The version was staged: it can be deployed.
    Staged,
    /// A deployment was scheduled to start at a time.
    Scheduled {
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// A deployment started: its checks run.
    Started {
        /// How it moves traffic.
        strategy: StrategyKind,
        /// The version active when it started.
        from: Option<VersionId>,
    },
    /// The deployment moved on: a canary stage, an A/B split, shadowing, a rolling batch.
    StageAdvanced {
        /// The stage (canary stage, rolling batch), from 0.
        stage: usize,
        /// The version's share of traffic now.
        percent: u8,
    },
    /// The deployment waits: inconclusive health, or an advance by hand. Sent once per
    /// stage.
    Held {
        /// Why.
        reason: String,
    },
    /// Paused by hand.
    Paused,
    /// Resumed by hand.
    Resumed,
    /// The version was promoted: it takes all traffic and is active.
    Promoted {
        /// The version it replaced.
        from: Option<VersionId>,
    },
    /// The deployment finished; the version is active.
    Succeeded,
    /// The deployment or the version failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Traffic went back from this version to `to`.
    RolledBack {
        /// The version that took the traffic.
        to: VersionId,
        /// Why.
        reason: String,
    },
    /// The version was judged unhealthy (sent when its verdict turns unhealthy).
    HealthFailed {
        /// The verdict, in words.
        reason: String,
    },
    /// The version was not taken as a rollback target.
    RollbackRefused {
        /// Why.
        reason: String,
    },
    /// The deployer let go of the version.
    Released {
        /// False when the release hook hit its drain deadline and was dropped.
        drained: bool,
    },
    /// The deployer was restored from a snapshot with this version active.
    Restored,
}

/// The sending side.
#[derive(Clone)]
pub(crate) struct Events {
    tx: broadcast::Sender<DeployEvent>,
    deployment: String,
}

impl Events {
    pub(crate) fn new(deployment: String) -> Events {
        Events {
            tx: broadcast::channel(EVENT_BUFFER).0,
            deployment,
        }
    }

    pub(crate) fn emit(&self, timestamp_ms: u64, version: &VersionId, kind: EventKind) {
        // A library says it quietly; its caller logs what matters to it.
        tracing::debug!(
            deployment = %self.deployment,
            version = %version,
            event = ?kind,
            "deployment event"
        );
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(DeployEvent {
            timestamp_ms,
            deployment: self.deployment.clone(),
            version: version.clone(),
            kind,
        });
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<DeployEvent> {
        self.tx.subscribe()
    }

    pub(crate) fn deployment(&self) -> &str {
        &self.deployment
    }
}
