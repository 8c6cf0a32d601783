//! The polyglot runtime: call modules written in any language as if they were local
//! async functions, out of process and supervised.
//!
//! A [`Runtime`] loads module folders (each with a `module.json`), builds what needs
//! building, starts each module's workers and talks to them over stdio, a local socket or
//! gRPC with the protocol of `docs/protocol.md`, or connects to remote gRPC workers. It restarts crashed workers with back-off,
//! checks their health, falls back to another implementation when a module is
//! unavailable, and reloads a module without dropping a call.
//!
//! A module can have several versions live at once, each with its own worker pool:
//! [`Runtime::deploy`] moves traffic from one to the next by a [`Strategy`] (blue-green,
//! canary, rolling, ...), judges the new one on the calls it serves, and rolls it back when
//! it is unhealthy; an old version drains its calls in flight before it stops. Which
//! version is active survives a restart through a state file.
//!
//! ```no_run
//! # async fn run() {
//! use polyglot_core::{Runtime, Value};
//!
//! let runtime = Runtime::default();
//! let report = runtime.load_dir("polyglot-modules".as_ref()).await;
//! for e in &report.errors { eprintln!("{e}"); }
//! let reply = runtime.call("text-rust", "slugify", Value::from(vec![Value::from("Hello World")])).await;
//! println!("{:?}", reply.map(|r| r.value));
//! runtime.shutdown().await;
//! # }
//! ```
//!
//! # Layout
//! - `manifest`: [`Manifest`], `module.json` parsed and validated.
//! - `discovery`: [`discover`], finding module folders.
//! - `build`: running a module's build step when its output is stale.
//! - `process`: spawning a worker: its clean environment, resource limits, process group,
//!   death with the host.
//! - `connection`: one worker's stream, many calls multiplexed by id.
//! - `grpc`: the gRPC transport: connecting, opening a session, the `Health` RPC.
//! - `supervisor`: start, handshake, restart with back-off, health checks.
//! - `typescript`: `.ts` and `.js` workers run through Node and the TypeScript SDK, a
//!   `.ts` file compiled once per content into the module folder's `.polyglot/ts-cache/`.
//! - `module`: a loaded module version: its pool, routing, draining, status.
//! - `runtime`: [`Runtime`], the registry, the call path (version routing, fallback),
//!   reload, shutdown.
//! - `deployment`: each module's versions under a `polyglot_hotswap` deployer: the
//!   runtime's deployment operations, their hooks (warm, release, revive, smoke calls),
//!   [`DeploymentConfig`], the state file, [`DeploymentError`].
//! - `shutdown`: [`Runtime::on_shutdown`], hooks run at shutdown before workers stop.
//! - `status`: [`ModuleStatus`] and friends, snapshots for display.
//! - `events`: [`RuntimeEvent`], what happens, broadcast to subscribers.
//! - `error`: [`CallError`], [`LoadError`] and the rest.
//! - `telemetry`: the metrics the runtime records through the `metrics` facade (names,
//!   labels, latency buckets), and [`Runtime::record_state_metrics`].
//! - `api`: the host API's messages (`proto/polyglot/v1/runtime.proto`) from the core's
//!   types and back, written the same by every side that speaks the API.
//! - `docs`: how supervision and deployments work and what they do not do.
//!
//! # Features
//! - `builtins`: `register_builtins`, the handlers bundled with polyglot (`crypto`,
//!   `compress` and `text` of `polyglot-native`, `dsp` of `polyglot-dsp`) served in-process.
#![warn(missing_docs)]

pub mod api;
mod build;
mod connection;
mod deployment;
mod discovery;
pub mod docs;
mod error;
mod events;
mod grpc;
mod manifest;
mod module;
mod policy;
#[allow(unsafe_code)] // pre_exec and kill, each with a SAFETY comment
mod process;
mod resilience;
mod runtime;
mod shutdown;
mod status;
mod supervisor;
pub mod telemetry;
mod typescript;

pub use build::{ensure_built, needs_build, BUILD_TIMEOUT};
pub use deployment::{DeploySource, DeploymentConfig, DeploymentError, DEFAULT_RETAIN_PREVIOUS};
pub use discovery::discover;
pub use error::{
    chain as error_chain, BuildError, CallError, Cause, LoadError, StartError, StartFailure,
};
pub use events::{EventKind, RuntimeEvent, EVENT_BUFFER};
pub use manifest::MAX_ATTEMPTS;
pub use manifest::{
    BuildSpec, Fallback, HealthCheck, Manifest, ManifestError, Program, ResourceLimits,
    RestartPolicy, SmokeCall, SmokeExpect, TransportKind, MANIFEST_FILE,
};
pub use policy::{BreakerPolicy, Idempotent, RetryPolicy};
/// The deployment manager the runtime's deployments are built on: every strategy, status,
/// history and event type. The ones a caller of the runtime needs most are re-exported
/// below.
pub use polyglot_hotswap as hotswap;
pub use polyglot_hotswap::{
    Deadlines, DeployError, DeployEvent, Snapshot, Status as DeploymentStatus, Strategy,
    Thresholds, VersionId, VersionInfo, VersionMeta, VersionState,
};
pub use polyglot_protocol::{code, Codec, Value};
pub use process::{CPU_LIMIT_GRACE_SECS, STDERR_TAIL_LINES, WORKER_ENV};
pub use resilience::BreakerState;
pub use runtime::{
    default_modules_dir, CallOptions, LoadReport, ReloadReport, Reply, Runtime, RuntimeConfig,
    UnloadReport, DEFAULT_DRAIN_TIMEOUT,
};
pub use shutdown::HookError;
pub use status::{
    BreakerStatus, HealthState, InstanceState, InstanceStatus, ModuleState, ModuleStatus,
};
pub use typescript::{
    COMPILE_TIMEOUT as TYPESCRIPT_COMPILE_TIMEOUT, SDK_ENV as TYPESCRIPT_SDK_ENV,
};

/// Registers every handler bundled with polyglot as a builtin of `runtime`: `crypto`,
/// `compress` and `text` (`polyglot-native`) and `dsp` (`polyglot-dsp`). A module whose
/// manifest names one of them as its `builtin` is then served in this process, with no
/// worker.
#[cfg(feature = "builtins")]
pub fn register_builtins(runtime: &Runtime) {
    use polyglot_native::{compress, crypto, text};
    use std::sync::Arc;
    runtime.register_builtin(crypto::MODULE, Arc::new(crypto::handler()));
    runtime.register_builtin(compress::MODULE, Arc::new(compress::handler()));
    runtime.register_builtin(text::MODULE, Arc::new(text::handler()));
    runtime.register_builtin(polyglot_dsp::MODULE, Arc::new(polyglot_dsp::handler()));
}
