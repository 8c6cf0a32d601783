//! How supervision and deployments work, what they do not do, and what they cost.
//! (Documentation only.)
//!
//! # One worker slot
//! Each module has `instances` slots. A slot's supervisor task loops: spawn the worker
//! (its own process group, a parent-death signal so it dies with the host even on
//! SIGKILL), read its handshake line within `handshakeTimeoutMs` (skipping and reporting
//! any other line printed before it), check it against the manifest, then serve. While it
//! serves, the slot waits for the first of: the process exits; the connection reports
//! trouble (garbage on stdout, a response to an id never issued, the output closed, too
//! many failed health checks); or the host stops it. Then every call still pending on
//! that worker fails at once with `WorkerExited` carrying the exit status and the last
//! stderr line — after the answers already in the pipe have been read, so a worker that
//! answered and then exited loses nothing.
//!
//! # What a worker gets of the host
//! A worker starts with a clean environment: `PATH`, `HOME`, the locale's `LANG`,
//! `LC_ALL` and `LC_CTYPE`, `TMPDIR` and `TZ` of the host ([`WORKER_ENV`](crate::WORKER_ENV)),
//! what its manifest's `inheritEnv` names, its `env`, and the protocol's `POLYGLOT_*`. The
//! naive design, inheriting everything, hands the host's API key and cloud credentials to
//! every module's code. Its `limits` are `setrlimit` calls in the child before `exec`, next
//! to the parent-death signal: memory as `RLIMIT_DATA` (allocations fail), CPU time as
//! `RLIMIT_CPU` (`SIGXCPU`, then `SIGKILL` after [`CPU_LIMIT_GRACE_SECS`](crate::CPU_LIMIT_GRACE_SECS)),
//! open files as `RLIMIT_NOFILE`. A worker ended by a limit is a crash like any other:
//! its calls fail with the signal's name, and it is restarted within the restart
//! intensity. What limits do not do: bound one call (the CPU budget is the process's whole
//! life), count the page cache or shared memory, or limit a builtin served in the host's
//! process; cgroups would, at the price of privileges the host does not need today.
//!
//! # Restarts
//! A crashed worker is restarted after a back-off that starts at `backoffInitialMs`,
//! doubles per crash in a row up to `backoffMaxMs`, with ±20% jitter so instances that
//! crashed together do not restart in lock-step. A worker that stayed up for 30 s resets
//! its back-off. Every restart takes one token from the module's restart intensity
//! (`maxRestarts` within `windowMs`, shared by the module's slots); when none is left the
//! module is *failed*: its calls go to the fallback, and only a reload revives it. Other
//! modules are never touched: each module has its own budget and its own tasks.
//!
//! # Why not restart forever?
//! A worker that crashes at start-up (a missing dependency, a bad config) would otherwise
//! be restarted every few seconds for ever, flooding the log and burning CPU, while its
//! callers wait on a module that will never come back. Failing the module makes the state
//! visible (`polyglot-host modules`, health) and sends calls to the fallback at once.
//!
//! # Health
//! Every `healthCheck.intervalMs` the host calls `$health` on each worker. It does not
//! count against the worker's `maxConcurrency`: a worker busy with long calls is busy,
//! not unhealthy. A failure or a timeout marks the slot
//! unhealthy (it takes no calls, so they go to other instances or the fallback);
//! `unhealthyThreshold` failures in a row restart it. An answer `{"status":"degraded"}`
//! keeps it serving but reports the module degraded.
//!
//! # What a call sees
//! A call is sent to one worker at most once. If no worker of the module takes calls
//! (not built, not started, restarting, unhealthy, failed), the call was never sent and
//! goes down the fallback chain. If it was sent and the worker then died or the deadline
//! passed, the caller gets `WorkerExited` or `Timeout`: re-running it elsewhere could run
//! a side effect twice. A worker that answers `NOT_SUPPORTED` (it announces the method but
//! does not serve it, as a partial fallback may) did not run it: the call goes on down the
//! chain too.
//!
//! # gRPC workers and remote workers
//! With `transport: "grpc"` the slot spawns the worker as above, but reads the handshake
//! line from its stdout only to learn the address it listens on (a private Unix socket by
//! default); the rest of stdout goes to the log. The host then connects and opens one
//! `Session`, a bidirectional stream whose bytes are the stdio protocol unchanged, so the
//! same connection code multiplexes calls over it (the worker repeats its handshake there,
//! which is checked again). Health checks use the worker's `Health` RPC.
//!
//! A remote worker (`endpoint`) has no process: a slot connects, opens its session, and
//! serves until the session ends (the worker or the network went away) or its health
//! checks fail; then it reconnects with the same back-off. It never spends the restart
//! intensity: a remote worker is restarted by whoever runs it, so the host keeps trying
//! for as long as it takes, and the module's calls fall back meanwhile. The host never
//! stops a remote worker, it only ends its session.
//!
//! # Versions and deployments
//! A module loaded from a folder is a *deployment*: a `polyglot_hotswap` deployer whose
//! versions are each a whole loaded module (its manifest, its own pool of supervised
//! workers, its file fallbacks). A call finds the module's deployer in the registry (an
//! `ArcSwap` of a map), asks it for a route by its routing key ([`Runtime::call_keyed`];
//! without a key a random point, so shares hold on average), registers itself on that
//! version's pool, and keeps that version for the whole attempt; then it records the
//! attempt's outcome and latency in that version's health (an answer is `Ok`; a method's
//! error, a worker that exited, an overload and a version with no worker taking calls are
//! errors; a deadline is a timeout). Every step of this is lock-free: a load of the
//! registry, a load of the routing table, an atomic increment, a few atomic additions.
//! When the routed version cannot take the call, the fallback chain takes it as before;
//! the version is not swapped for another one behind the caller's back. While a version
//! shadows, the call is also copied to it in a task of its own; only the primary's answer
//! is returned, and the copy's answer is compared with it (same result, or same error
//! code, is a match).
//!
//! [`Runtime::deploy`] reads the new version's `module.json`, builds it, starts its pool
//! and waits until every worker answered `$health` (the deployer's start deadline), then
//! deploys it: its *warm* check (every worker started and answers `$health`) and the smoke
//! calls of its own manifest (`smoke`: a method, params, and the result or error code
//! expected) run before it takes traffic, and again after its promotion. A version that
//! stops taking traffic is *released*: it takes no new call, finishes its calls in flight
//! (up to the drain timeout), and its workers are stopped. A rollback onto a released
//! version *revives* it: it is built and started again from its folder, and checked warm,
//! before it takes the traffic. Each deployer is ticked every
//! [`DeploymentConfig::tick`](crate::DeploymentConfig::tick) by a task of its own (stages,
//! verdicts, deadlines, releases), stopped by [`Runtime::shutdown`].
//!
//! The first version of a module at load is activated without checks: nothing else could
//! serve its calls, and a module that is not ready has always been loaded anyway, its
//! calls falling back until it recovers (the load report says what is wrong).
//! [`Runtime::reload`] is an immediate deployment of the folder's current manifest, and
//! waits for the old version to be drained and stopped before it returns.
//!
//! Version ids are the manifests' versions; the same version deployed again while it still
//! runs (a reload of a changed binary) becomes `1.2.0#2`, `1.2.0#3`.
//!
//! # Persistence
//! With a state file, every deployment event writes every deployer's snapshot (the
//! active version, the history with its health marks) and the folder of each version,
//! whole, to a temporary file renamed over the state file. The first load reads it: a
//! module comes back on the version that was active, started from *that version's*
//! folder, even when the modules folder now holds another one (deploy that one to switch);
//! if the remembered folder no longer holds that version, the module starts on the folder
//! found and keeps its history (reported, unless it is the same folder upgraded in place).
//! A deployment in progress at the time is not resumed (the deployer fails it, "interrupted
//! by a restart"). A file that cannot be read is reported in the load report and moved
//! aside to `<file>.corrupt-<ms since the epoch>`; it is never silently dropped or
//! overwritten. Entries of modules not loaded this time are kept.
//!
//! # What deployments do not do
//! - Scale a version's pool one instance at a time: a version starts with its manifest's
//!   `instances`. A rolling update therefore starts the new pool whole and moves traffic
//!   to it as its workers become ready (in proportion to ready workers of both versions),
//!   then promotes it once it is judged healthy; the old pool keeps every worker until
//!   then. Its replicas must equal the manifest's `instances`.
//! - Judge in-process modules, or move them between versions: a mounted handler is one
//!   version, replaced by mounting another.
//! - Retry a call on the other version when its version fails it: a call sent is never
//!   sent again (see *What a call sees*).
//! - Keep a superseded version running by default
//!   ([`DEFAULT_RETAIN_PREVIOUS`](crate::DEFAULT_RETAIN_PREVIOUS) is zero: a rollback
//!   after a finished deployment revives the old version from its folder, which takes one
//!   start; blue-green keeps it for its grace period).
//! - Tick a deployer while it drains a released version: the tick waits for the drain
//!   (bounded by the drain deadline), so verdicts of that module come that much later.
//!
//! # Costs
//! One supervisor task and one health task per worker, one reader and one writer task per
//! connection. A call costs a semaphore permit, a oneshot channel and a map insert; the
//! writer task writes everything queued since its last write in one syscall. Deployments
//! add a route (13–34 ns, measured by `polyglot-hotswap`'s bench) and a record (42–50 ns)
//! per call, two tasks per module (its drive loop and its event forwarder), and, during a
//! deployment, the second pool. A state file write is a few kilobytes per module, once
//! per deployment event.
//!
//! [`Runtime::call_keyed`]: crate::Runtime::call_keyed
//! [`Runtime::deploy`]: crate::Runtime::deploy
//! [`Runtime::reload`]: crate::Runtime::reload
//! [`Runtime::shutdown`]: crate::Runtime::shutdown
