//! How supervision works, what it does not do, and what it costs. (Documentation only.)
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
//! a side effect twice.
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
//! # Costs
//! One supervisor task and one health task per worker, one reader and one writer task per
//! connection. A call costs a semaphore permit, a oneshot channel and a map insert; the
//! writer task writes everything queued since its last write in one syscall.
