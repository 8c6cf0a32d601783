//! How the deployer works, what it does not do, and what it costs. (Documentation only.)
//!
//! # The model
//! A [`Deployer`] holds versions of one thing (for the runtime: one module), each a
//! [`VersionId`] and an `Arc<T>`. At most one version is *active*, and at most one
//! *deployment* runs at a time: it moves traffic from the active version (its *stable*
//! side) to a staged one (its *new* side) by a [`Strategy`]. Every version has a
//! [`VersionState`]:
//!
//! ```text
//! stage / prepare ─> preparing ─> staged ─deploy─> rolling-out(pct) ─promote─> active
//!                        │           │                   │                       │
//!                        └─> failed <┴──── abort, checks ┘     rollback / newer  │
//!                                                        └─> rolling-back ─> rolled-back
//!                                                                  superseded <──┘
//! ```
//! Every operation checks the state it needs and returns a typed [`DeployError`] naming
//! the version, its state and the operation otherwise; nothing panics on a bad sequence
//! (the property tests run hundreds of random sequences of up to 80 operations each).
//!
//! # The read path
//! Requests never wait for a deployment. [`Deployer::active`], [`Deployer::route`] and
//! [`Deployer::record`] read one immutable routing table through an `ArcSwap`: the active
//! version, the new version with the point of the hash space from which it takes keys,
//! the shadow, and every version's health window. Control operations build a new table
//! and swap it in whole; a reader sees the old table or the new one, never half of each.
//!
//! **Stickiness.** A key is hashed (MurmurHash3's finaliser over 8-byte words: stable
//! across processes and releases, so a key keeps its version across a restart) to a point
//! in `[0, 2^64)`. The new version owns the *top* of the space, `[2^64 − share, 2^64)`.
//! Growing its share lowers that boundary, so it only takes keys from the active version;
//! shrinking it only gives keys back. A change of split therefore moves exactly the keys in
//! the band between the old and the new boundary, the fewest possible, and canary keys
//! stay canary keys as the canary grows. Each rollout mixes a seed drawn from the new
//! version's id into the hash, so that successive rollouts do not always send the same
//! users first.
//!
//! **The naive designs, and why not.** A `RwLock<Table>` makes every request contend on
//! one cache line and stall behind a writer in the middle of a deployment. Choosing a
//! version with a random number per request loses stickiness (a user flips between A and
//! B). Rendezvous hashing over versions is sticky too, but with only two versions in play
//! the cumulative boundary gives the same minimal movement with one comparison.
//!
//! # Health
//! Callers [`record`](crate::Deployer::record) each call's [`Outcome`] and latency. A version's
//! window is a ring of time buckets (by default 12 of 5 s), each a set of atomic counters
//! and a log-linear latency histogram (8 buckets per power of two: a percentile is reported
//! as its bucket's ceiling, at most 12.5% high, never low). Recording finds its bucket
//! from the clock, recycles it if it holds an older period (one compare-and-swap; a sample
//! recorded by another thread in the instant of the recycling can be lost), and adds to
//! three counters. Judging sums the buckets of the window, or of the current stage only.
//!
//! [`Thresholds::judge`] gives [`Verdict::Healthy`] only with at least `min_calls` calls
//! and every limit kept. Fewer calls is [`Verdict::Inconclusive`], which never passes: the
//! deployment *holds* (one `Held` event per stage) until its deadline, then rolls back.
//! Failures that would break the error rate even if every call still missing from the
//! minimum succeeded make it unhealthy at once. A version judged unhealthy during its
//! rollout is rolled back at once (unless automatic rollback is off: then it holds and its
//! deadline rolls it back); an unhealthy active version with no deployment is only
//! reported (`HealthFailed`, once per streak). Each verdict also updates the version's
//! [`HealthMark`], which the rollback target selection reads.
//!
//! # Driving
//! [`Deployer::tick`] does everything that happens with time: it judges the versions in
//! use, moves automatic stages on, enforces deadlines, starts scheduled deployments,
//! repairs a deployment whose operation was cancelled mid-way (its future dropped), and
//! releases versions no longer needed. [`Deployer::drive`] ticks every second; under a
//! [`ManualClock`] a test ticks by hand and every step is deterministic.
//!
//! | phase                         | deadline                                | at the deadline     |
//! |-------------------------------|-----------------------------------------|---------------------|
//! | starting a prepared version   | [`Deadlines::start`]                    | version failed      |
//! | each warm or smoke check      | [`Deadlines::checks`]                   | deployment failed (before traffic) or rolled back (after promotion) |
//! | each `Instances::scale`       | [`Deadlines::scale`]                    | rolled back         |
//! | a canary stage                | [`Canary::stage_deadline`]              | rolled back         |
//! | shadowing                     | [`Shadow::deadline`]                    | rolled back         |
//! | a rolling update's progress   | [`Rolling::progress_deadline`]          | rolled back         |
//! | blue-green's verdict          | [`BlueGreen::deadline`]                 | rolled back         |
//! | an A/B test                   | [`AbTest::deadline`]                    | aborted: A kept     |
//! | draining a released version   | [`Deadlines::drain`]                    | let go anyway       |
//!
//! A paused deployment stops its clocks (stage time and deadlines resume where they were)
//! but not its health watch: an unhealthy version is still rolled back while paused. A
//! scheduled deployment waits for its time and has no other deadline.
//!
//! # Strategies
//! - **Immediate**: checks, switch, done.
//! - **Blue-green**: checks, one atomic switch, then a grace period during which the old
//!   version is retained for an instant rollback; after it the new version must be judged
//!   healthy, by the verdict deadline.
//! - **Rolling**: Kubernetes' arithmetic (`rolling` module): scale the old version down as
//!   far as `maxUnavailable` allows, the new one up as far as `maxSurge` allows, read ready
//!   counts from [`Instances`], and give the new version the share of traffic its ready
//!   instances are of all ready instances. Promoted once every new instance is ready and
//!   the version is judged healthy.
//! - **Canary**: stages of percent, each run for its duration and then analysed (a healthy
//!   verdict on the stage's own calls); automatic or manual advance; after the last stage,
//!   promotion.
//! - **A/B**: a sticky split held until someone decides: [`Deployer::advance`] promotes B
//!   (if healthy), a rollback or abort keeps A, [`Deployer::set_split`] changes the split.
//! - **Scheduled**: another strategy started at a wall-clock time; advancing early is
//!   [`DeployError::TooEarly`].
//! - **Shadow**: [`Deployer::route`] names the new version as a shadow; the caller sends it
//!   a copy of the call, answers its own caller from the primary only, and reports the
//!   comparison with [`Deployer::record_shadow`]. Promoted (switched to) once it has
//!   shadowed for its duration with a healthy verdict, mismatch rate included.
//!
//! With nothing active, every strategy activates the version as Immediate does (a rolling
//! one scales it to its replicas first): there is nothing to shift from or compare with.
//!
//! # Smoke checks and warm checks
//! Before a new version takes any traffic, its [`Lifecycle::warm`] check and then every
//! [`SmokeCheck`] run against it; a failure fails the deployment with the mismatch in its
//! reason (`expected "hi", got "HI"`). Right after its promotion the smoke checks run
//! again; a failure rolls back.
//!
//! # Rollback
//! A rollback moves traffic off the new version (or off the active one when no deployment
//! runs) onto a *target*. [`RollbackTo::Previous`] takes the versions whose last verdict
//! was healthy, most recently active first (the stable side of a running deployment
//! counts as most recent), skips rolled-back and failed ones, and for each: revives it
//! through [`Lifecycle::revive`] if its value was released, scales it back up if the
//! deployment was a rolling one, and runs its warm check. The first that passes takes the
//! traffic; each that does not is reported (`RollbackRefused`) and, if its warm check
//! failed, marked unhealthy. A named target must have been active before and must not be
//! known unhealthy. When no candidate passes, a rollback by hand changes nothing and says
//! what to do instead (`abort()`); an automatic one (health, deadline, failed check)
//! *aborts*: the traffic returns to the stable side as it was before the deployment.
//!
//! A fix can always be deployed: nothing refuses a deployment because the active version
//! is unhealthy, and only the new version's calls decide its analysis.
//!
//! # Retention and release
//! A superseded version keeps its value for [`DeployerBuilder::retain_previous`] (blue-green:
//! for its grace period) so that a rollback onto it is instant; rolled-back and failed
//! versions are let go at the next tick. Letting go calls [`Lifecycle::release`] (drain,
//! then stop) outside the control lock, bounded by [`Deadlines::drain`], and drops the
//! deployer's reference. The history keeps [`DeployerBuilder::history_limit`] versions;
//! the oldest finished, released ones go first.
//!
//! # Persistence
//! [`Deployer::snapshot`] is serde data: the active version and the history (states,
//! who, why, when, strategy, health marks and summaries). Written to a state file after
//! each event, it lets a restarted host [`restore`](crate::Deployer::restore) a new deployer on
//! the same active version, with its rollback targets known; a deployment in progress is
//! not resumed (its version is failed, "interrupted by a restart"), and health windows
//! start empty.
//!
//! # What it does not do
//! - Run two deployments of one deployer at once, or route by anything but one key.
//! - Drain calls itself: in-flight calls hold their own `Arc<T>` from [`Route::target`],
//!   and [`Lifecycle::release`] is where the caller waits for them.
//! - Send shadow calls or compare answers: the caller does, and reports.
//! - Write files or export metrics: [`Snapshot`] and [`Status`] are data for the caller.
//! - Catch a panicking hook: a hook that panics panics its operation.
//!
//! # Costs
//! Measured by `cargo bench -p polyglot-hotswap` on a 2-core machine shared with other
//! work (two runs; the spread is the machine's): `active()` 9 ns, 17–18 ns while another
//! thread activates 80,000–190,000 versions a second; `route(key)` 13–17 ns with no
//! deployment, 24–34 ns with a split to hash, 63–77 ns while another thread changes the
//! split over a million times a second; `record` 42–50 ns, half of it reading the clock;
//! a blue-green activation (checks with no-op hooks, the switch, its events) 1.7–1.8 µs.
//! Memory: about 13 KiB of counters per known version.
//!
//! [`Deployer`]: crate::Deployer
//! [`Deployer::active`]: crate::Deployer::active
//! [`Deployer::route`]: crate::Deployer::route
//! [`Deployer::record`]: crate::Deployer::record
//! [`Deployer::tick`]: crate::Deployer::tick
//! [`Deployer::drive`]: crate::Deployer::drive
//! [`Deployer::advance`]: crate::Deployer::advance
//! [`Deployer::set_split`]: crate::Deployer::set_split
//! [`Deployer::record_shadow`]: crate::Deployer::record_shadow
//! [`Deployer::snapshot`]: crate::Deployer::snapshot
//! [`DeployerBuilder::retain_previous`]: crate::DeployerBuilder::retain_previous
//! [`DeployerBuilder::history_limit`]: crate::DeployerBuilder::history_limit
//! [`VersionId`]: crate::VersionId
//! [`VersionState`]: crate::VersionState
//! [`Strategy`]: crate::Strategy
//! [`DeployError`]: crate::DeployError
//! [`DeployError::TooEarly`]: crate::DeployError::TooEarly
//! [`Outcome`]: crate::Outcome
//! [`Thresholds::judge`]: crate::Thresholds::judge
//! [`Verdict::Healthy`]: crate::Verdict::Healthy
//! [`Verdict::Inconclusive`]: crate::Verdict::Inconclusive
//! [`HealthMark`]: crate::HealthMark
//! [`ManualClock`]: crate::ManualClock
//! [`Deadlines::start`]: crate::Deadlines::start
//! [`Deadlines::checks`]: crate::Deadlines::checks
//! [`Deadlines::scale`]: crate::Deadlines::scale
//! [`Deadlines::drain`]: crate::Deadlines::drain
//! [`Canary::stage_deadline`]: crate::Canary::stage_deadline
//! [`Shadow::deadline`]: crate::Shadow::deadline
//! [`Rolling::progress_deadline`]: crate::Rolling::progress_deadline
//! [`BlueGreen::deadline`]: crate::BlueGreen::deadline
//! [`AbTest::deadline`]: crate::AbTest::deadline
//! [`Instances`]: crate::Instances
//! [`Lifecycle::warm`]: crate::Lifecycle::warm
//! [`Lifecycle::revive`]: crate::Lifecycle::revive
//! [`Lifecycle::release`]: crate::Lifecycle::release
//! [`SmokeCheck`]: crate::SmokeCheck
//! [`RollbackTo::Previous`]: crate::RollbackTo::Previous
//! [`Route::target`]: crate::Route::target
//! [`Snapshot`]: crate::Snapshot
//! [`Status`]: crate::Status
