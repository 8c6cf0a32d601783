//! [`DeployerBuilder`]: one documented `with`-style method per option, then
//! [`build`](DeployerBuilder::build).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::state::State;
use super::Deployer;
use crate::clock::{Clock, SystemClock};
use crate::events::Events;
use crate::health::{Thresholds, DEFAULT_WINDOW, DEFAULT_WINDOW_BUCKETS};
use crate::hooks::{Instances, Lifecycle, NoLifecycle, SmokeCheck};
use crate::routing::Table;
use crate::strategy::ms;

/// How long a prepared version may take to start by default: a minute covers building a
/// pool of interpreters and their handshakes on a loaded machine.
pub const DEFAULT_START_DEADLINE: Duration = Duration::from_secs(60);

/// How long one warm check, smoke check or revival may take by default: checks are a few
/// real calls, so 30 s means something hangs.
pub const DEFAULT_CHECK_DEADLINE: Duration = Duration::from_secs(30);

/// How long one `Instances::scale` may take by default (it only starts the change).
pub const DEFAULT_SCALE_DEADLINE: Duration = Duration::from_secs(30);

/// How long a released version may take to drain its calls in flight by default: the
/// default call timeout of most RPC stacks, so a call that was going to finish does.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// How long a superseded version stays retained for an instant rollback by default: five
/// minutes is the time a bad release takes to show on dashboards and alerts, at the cost
/// of a second pool running for that long.
pub const DEFAULT_RETAIN_PREVIOUS: Duration = Duration::from_secs(300);

/// How many versions the history keeps by default (versions in use are never dropped).
pub const DEFAULT_HISTORY_LIMIT: usize = 20;

/// How often [`Deployer::drive`] ticks by default: stages last minutes and the window
/// slides in seconds, so once a second judges promptly at no measurable cost.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// The deadline of every hook call. A hook still running at its deadline is dropped and
/// counts as failed (for a release: as drained or not, the value is let go either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deadlines {
    /// For [`Deployer::prepare`]'s start future.
    #[serde(rename = "startMs", with = "ms")]
    pub start: Duration,
    /// For each warm check, smoke check and revival.
    #[serde(rename = "checksMs", with = "ms")]
    pub checks: Duration,
    /// For each [`Instances::scale`].
    #[serde(rename = "scaleMs", with = "ms")]
    pub scale: Duration,
    /// For each [`Lifecycle::release`].
    #[serde(rename = "drainMs", with = "ms")]
    pub drain: Duration,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            start: DEFAULT_START_DEADLINE,
            checks: DEFAULT_CHECK_DEADLINE,
            scale: DEFAULT_SCALE_DEADLINE,
            drain: DEFAULT_DRAIN_DEADLINE,
        }
    }
}

/// The settings a deployer runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub thresholds: Thresholds,
    pub auto_rollback: bool,
    pub history_limit: usize,
    pub retain_previous: Duration,
    pub deadlines: Deadlines,
    pub window: Duration,
    pub buckets: usize,
}

/// Builds a [`Deployer`].
pub struct DeployerBuilder<T> {
    name: String,
    clock: Arc<dyn Clock>,
    cfg: Config,
    smoke: Vec<Arc<dyn SmokeCheck<T>>>,
    lifecycle: Arc<dyn Lifecycle<T>>,
    instances: Option<Arc<dyn Instances<T>>>,
}

impl<T: Send + Sync + 'static> DeployerBuilder<T> {
    pub(crate) fn new() -> DeployerBuilder<T> {
        DeployerBuilder {
            name: "default".into(),
            clock: Arc::new(SystemClock::new()),
            cfg: Config {
                thresholds: Thresholds::default(),
                auto_rollback: true,
                history_limit: DEFAULT_HISTORY_LIMIT,
                retain_previous: DEFAULT_RETAIN_PREVIOUS,
                deadlines: Deadlines::default(),
                window: DEFAULT_WINDOW,
                buckets: DEFAULT_WINDOW_BUCKETS,
            },
            smoke: Vec::new(),
            lifecycle: Arc::new(NoLifecycle),
            instances: None,
        }
    }

    /// The name events and logs give the deployment (the runtime: the module's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// What a healthy version looks like (default: [`Thresholds::default`]).
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.cfg.thresholds = thresholds;
        self
    }

    /// How far back health looks, cut into how many buckets (defaults:
    /// [`DEFAULT_WINDOW`], [`DEFAULT_WINDOW_BUCKETS`]). Applies to versions staged after.
    pub fn health_window(mut self, window: Duration, buckets: usize) -> Self {
        self.cfg.window = window;
        self.cfg.buckets = buckets.max(1);
        self
    }

    /// Whether a version judged unhealthy during its rollout is rolled back at once
    /// (default: yes). When not, the rollout holds and reports it, and its deadline rolls
    /// it back.
    pub fn auto_rollback(mut self, on: bool) -> Self {
        self.cfg.auto_rollback = on;
        self
    }

    /// How many versions the history keeps (default: [`DEFAULT_HISTORY_LIMIT`]).
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.cfg.history_limit = limit.max(1);
        self
    }

    /// How long a superseded version stays retained for an instant rollback (default:
    /// [`DEFAULT_RETAIN_PREVIOUS`]; blue-green uses its grace period instead).
    pub fn retain_previous(mut self, retain: Duration) -> Self {
        self.cfg.retain_previous = retain;
        self
    }

    /// The deadlines of hook calls (default: [`Deadlines::default`]).
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.cfg.deadlines = deadlines;
        self
    }

    /// Adds a smoke check, run in the order added before a new version takes traffic and
    /// again after its promotion.
    pub fn smoke_check(mut self, check: impl SmokeCheck<T>) -> Self {
        self.smoke.push(Arc::new(check));
        self
    }

    /// The warm check, release and revival of versions (default: [`NoLifecycle`]).
    pub fn lifecycle(mut self, lifecycle: impl Lifecycle<T>) -> Self {
        self.lifecycle = Arc::new(lifecycle);
        self
    }

    /// The instances of each version, needed by [rolling updates](crate::Strategy::Rolling).
    pub fn instances(mut self, instances: impl Instances<T>) -> Self {
        self.instances = Some(Arc::new(instances));
        self
    }

    /// The deployer, with nothing staged and nothing active.
    pub fn build(self) -> Deployer<T> {
        Deployer {
            cfg: self.cfg,
            clock: self.clock,
            table: ArcSwap::from_pointee(Table::empty()),
            control: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::new()),
            events: Events::new(self.name),
            smoke: self.smoke,
            lifecycle: self.lifecycle,
            instances: self.instances,
        }
    }
}
