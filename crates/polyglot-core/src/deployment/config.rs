//! [`DeploymentConfig`]: how a runtime's deployers judge, keep and persist versions.

use std::path::PathBuf;
use std::time::Duration;

use polyglot_hotswap::{
    Deadlines, Thresholds, DEFAULT_HISTORY_LIMIT, DEFAULT_TICK, DEFAULT_WINDOW,
    DEFAULT_WINDOW_BUCKETS,
};

/// How long a superseded version keeps running for an instant rollback by default: not at
/// all. A runtime's pools are real processes on the host's own machine, and a second pool
/// of every module for minutes after each release is a cost nobody asked for; a
/// blue-green deployment keeps the old version for its grace period anyway, and a
/// rollback onto a released version starts it again from its folder (and checks it warm)
/// before it takes traffic. This also keeps [`Runtime::reload`](crate::Runtime::reload)'s
/// promise that the old workers are stopped when it returns.
pub const DEFAULT_RETAIN_PREVIOUS: Duration = Duration::ZERO;

/// The settings of a runtime's deployments: one deployer per module, each built with
/// these. Start from [`DeploymentConfig::default`] and change what you need with the
/// `with_*` methods; give it to [`Runtime::with_deployments`](crate::Runtime::with_deployments).
///
/// ```
/// use std::time::Duration;
/// use polyglot_core::{DeploymentConfig, Thresholds};
///
/// let cfg = DeploymentConfig::default()
///     .with_state_file("/var/lib/polyglot/deployments.json")
///     .with_thresholds(Thresholds::default().with_min_calls(50).with_max_error_rate(0.01))
///     .with_health_window(Duration::from_secs(30), 6);
/// assert_eq!(cfg.health_buckets, 6);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeploymentConfig {
    /// Where the active version of each module, its folder and its history are written
    /// after every deployment event, and read back by the next
    /// [`load_dir`](crate::Runtime::load_dir). `None`: nothing is persisted.
    pub state_file: Option<PathBuf>,
    /// What a healthy version looks like (calls needed for a verdict, error rate, p99,
    /// timeouts).
    pub thresholds: Thresholds,
    /// How far back a version's health looks.
    pub health_window: Duration,
    /// How many buckets the window is cut into: the window slides by
    /// `health_window / health_buckets`, and a stage's analysis starts within one bucket
    /// of the stage.
    pub health_buckets: usize,
    /// Whether a version judged unhealthy during its rollout is rolled back at once.
    pub auto_rollback: bool,
    /// How long a superseded version keeps running for an instant rollback (default
    /// [`DEFAULT_RETAIN_PREVIOUS`]).
    pub retain_previous: Duration,
    /// How many versions each module's history keeps.
    pub history_limit: usize,
    /// The deadlines of starting a version, of its warm and smoke checks, and of
    /// draining a released one.
    pub deadlines: Deadlines,
    /// How often each deployer is ticked: judged, moved on, its released versions
    /// drained.
    pub tick: Duration,
}

impl Default for DeploymentConfig {
    fn default() -> DeploymentConfig {
        DeploymentConfig {
            state_file: None,
            thresholds: Thresholds::default(),
            health_window: DEFAULT_WINDOW,
            health_buckets: DEFAULT_WINDOW_BUCKETS,
            auto_rollback: true,
            retain_previous: DEFAULT_RETAIN_PREVIOUS,
            history_limit: DEFAULT_HISTORY_LIMIT,
            deadlines: Deadlines::default(),
            tick: DEFAULT_TICK,
        }
    }
}

impl DeploymentConfig {
    /// Persists deployments to this file.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// With these thresholds.
    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// With this health window, cut into this many buckets (at least one).
    pub fn with_health_window(mut self, window: Duration, buckets: usize) -> Self {
        self.health_window = window;
        self.health_buckets = buckets.max(1);
        self
    }

    /// With automatic rollback on or off.
    pub fn with_auto_rollback(mut self, on: bool) -> Self {
        self.auto_rollback = on;
        self
    }

    /// Keeps superseded versions running this long.
    pub fn with_retain_previous(mut self, retain: Duration) -> Self {
        self.retain_previous = retain;
        self
    }

    /// Keeps this many versions of history per module (at least one).
    pub fn with_history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit.max(1);
        self
    }

    /// With these deadlines.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Ticks deployers this often (at least every millisecond).
    pub fn with_tick(mut self, every: Duration) -> Self {
        self.tick = every.max(Duration::from_millis(1));
        self
    }
}
