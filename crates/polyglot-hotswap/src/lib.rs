//! A deployment manager over versions of any `Arc<T>`: stage versions, move traffic to a
//! new one by a [`Strategy`] (immediate, blue-green, rolling, canary, A/B, scheduled,
//! shadow) while its health is judged against [`Thresholds`], roll back onto the last
//! version known healthy, and keep a bounded history. It knows nothing of what `T` is;
//! the polyglot runtime uses it with `T` = a module version's worker pool.
//!
//! The read path is lock-free: [`Deployer::active`] and [`Deployer::route`] read a routing
//! table that deployment operations replace whole (arc-swap), and [`Deployer::record`]
//! adds to atomic counters. Control operations run one at a time; the clock is injected
//! ([`Clock`]), and [`Deployer::tick`] moves deployments on, so that under a
//! [`ManualClock`] every stage, deadline and verdict of a test is deterministic.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use polyglot_hotswap::{Deployer, ManualClock, Outcome, Strategy, Thresholds, VersionMeta};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let clock = ManualClock::new();
//! let deployer: Deployer<String> = Deployer::builder()
//!     .name("greeter")
//!     .clock(clock.clone())
//!     .thresholds(Thresholds::default().with_min_calls(10))
//!     .build();
//!
//! // The first version has nothing to replace: it is activated once its checks pass.
//! let meta = VersionMeta::new("ci", "first release");
//! deployer.stage("1.0.0", Arc::new("hello".to_string()), meta).await?;
//! deployer.deploy("1.0.0", Strategy::immediate()).await?;
//! assert_eq!(deployer.active().as_deref().map(String::as_str), Some("hello"));
//!
//! // The next goes out as a canary: 10%, 50%, then all of the traffic, 30 s each.
//! let meta = VersionMeta::new("ana", "a shorter greeting");
//! deployer.stage("1.1.0", Arc::new("hi".to_string()), meta).await?;
//! deployer.deploy("1.1.0", Strategy::canary(&[10, 50, 100], Duration::from_secs(30))).await?;
//!
//! for _stage in 0..3 {
//!     // Callers route each request (sticky by key) and record how it went...
//!     for user in 0..200 {
//!         let route = deployer.route(format!("user-{user}")).expect("a version is active");
//!         deployer.record(route.version.as_str(), Outcome::Ok, Duration::from_millis(3));
//!     }
//!     // ...and a tick judges the stage once it has run, and moves on.
//!     clock.advance(Duration::from_secs(30));
//!     deployer.tick().await;
//! }
//! assert_eq!(deployer.active_version().unwrap(), "1.1.0");
//! # Ok::<(), polyglot_hotswap::DeployError>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//! - `deployer`: [`Deployer`], its read path and queries; `ops` its control operations,
//!   `drive` the rollout machinery (`tick`, promotion, rollback), `state` what they change,
//!   `builder` the [`DeployerBuilder`].
//! - `strategy`: [`Strategy`] and each strategy's settings, validated.
//! - `rolling`: the rolling update's arithmetic (max surge, max unavailable).
//! - `routing`: the routing table, [`Route`], and the stable key hash behind stickiness.
//! - `health`: [`Outcome`], the sliding window of atomics, [`Thresholds`], [`Verdict`].
//! - `hooks`: what the caller plugs in: [`SmokeCheck`], [`Lifecycle`], [`Instances`].
//! - `version`: [`VersionId`], [`VersionState`], [`VersionInfo`] (a history entry).
//! - `status`: [`Status`] for display, [`Snapshot`] to persist and restore.
//! - `events`: [`DeployEvent`], every transition, broadcast.
//! - `clock`: [`Clock`], [`SystemClock`], [`ManualClock`].
//! - `error`: [`DeployError`].
//! - `docs`: how it works, what it does not do, what it costs.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod deployer;
pub mod docs;
mod error;
mod events;
mod health;
mod hooks;
mod rolling;
mod routing;
mod status;
mod strategy;
mod version;

pub use clock::{Clock, ManualClock, SystemClock, MANUAL_CLOCK_WALL_ORIGIN_MS};
pub use deployer::{
    Deadlines, Deployer, DeployerBuilder, RollbackTo, DEFAULT_CHECK_DEADLINE,
    DEFAULT_DRAIN_DEADLINE, DEFAULT_HISTORY_LIMIT, DEFAULT_RETAIN_PREVIOUS, DEFAULT_SCALE_DEADLINE,
    DEFAULT_START_DEADLINE, DEFAULT_TICK,
};
pub use error::{DeployError, Operation, Refusal};
pub use events::{DeployEvent, EventKind, EVENT_BUFFER};
pub use health::{
    HealthSummary, Outcome, ShadowOutcome, Thresholds, Verdict, Violation, DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_MISMATCH_RATE, DEFAULT_MIN_CALLS, DEFAULT_WINDOW, DEFAULT_WINDOW_BUCKETS,
};
pub use hooks::{
    BoxError, BoxFuture, HookFailure, Instances, Lifecycle, NoLifecycle, SmokeCheck, SmokeFailure,
    SmokeFn, SmokePhase,
};
pub use routing::{key_point, Route, ShadowRoute, TrafficShare};
pub use status::{RolloutPhase, RolloutStatus, Snapshot, Status, SNAPSHOT_FORMAT};
pub use strategy::{
    AbTest, Advance, Amount, BlueGreen, Canary, CanaryStage, Rolling, Scheduled, Shadow, Strategy,
    StrategyError, StrategyKind, DEFAULT_HOLD, DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE,
    DEFAULT_PROGRESS_DEADLINE,
};
pub use version::{
    HealthMark, VersionId, VersionInfo, VersionMeta, VersionState, MAX_VERSION_ID_LEN,
};
