//! `module.json`: the raw serde form, and [`Manifest`], the validated one that cannot
//! hold an invalid value. Every error names the file and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use polyglot_protocol::{Codec, DEFAULT_MAX_FRAME};
use serde::Deserialize;

pub use crate::policy::{BreakerPolicy, Idempotent, RetryPolicy};

/// The manifest's file name inside a module folder.
pub const MANIFEST_FILE: &str = "module.json";

/// Calls wait this long by default: long enough for real work (a model inference, a
/// large file), short enough that a hung worker is noticed within a minute.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker must send its handshake within this: interpreters and JITs start in well
/// under a second; 10 s leaves room for a cold disk or a model load before serving.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After `$shutdown`, a worker has this long to finish and exit before it is killed.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Health is checked this often: frequent enough to take a hung worker out of rotation
/// within seconds, rare enough to cost nothing measurable.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// A `$health` call that takes longer than this counts as failed.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// This many failed health checks in a row restart the worker.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// At most this many restarts of one module's workers within [`DEFAULT_RESTART_WINDOW`];
/// one more and the module is failed (its calls fall back) instead of crash-looping.
pub const DEFAULT_MAX_RESTARTS: u32 = 5;
/// The window of [`DEFAULT_MAX_RESTARTS`].
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The first restart waits this long; each further one in a row waits twice as long.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Restarts never wait longer than this.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Calls that may wait for a busy worker, per worker, beyond the calls it runs at once;
/// one more is refused at once with `Overloaded` instead of queueing without bound.
pub const DEFAULT_MAX_QUEUE: u32 = 1024;
/// More instances than this per module is a typo, not a plan, on a machine of a few cores.
pub const MAX_INSTANCES: u32 = 256;
/// The smallest `limits.memoryMb`: below it no interpreter or runtime a worker is written
/// in maps its own code and heap, so the worker could never start.
pub const MIN_MEMORY_LIMIT_MB: u64 = 16;
/// The largest `limits.memoryMb` (4 TiB): more than any one machine this runs on has; a
/// larger number is a size in bytes written where megabytes were meant.
pub const MAX_MEMORY_LIMIT_MB: u64 = 4 << 20;
/// The fewest `limits.openFiles`: stdio, the event loop's own descriptors (epoll, a wake-up
/// pipe) and the files an interpreter opens at start need about a dozen; fewer and the
/// worker cannot start.
pub const MIN_OPEN_FILES: u64 = 32;
/// The most `limits.openFiles`: Linux's default ceiling for any process (`fs.nr_open`).
pub const MAX_OPEN_FILES: u64 = 1 << 20;

/// A validated `module.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The module's name, unique in a runtime.
    pub name: String,
    /// The language it is written in (`rust`, `python`, `go`, ...), for display and for
    /// choosing an interpreter for `path`.
    pub language: String,
    /// The module's version.
    pub version: String,
    /// What it does.
    pub description: Option<String>,
    /// The module folder (absolute); relative paths resolve against it.
    pub dir: PathBuf,
    /// The manifest file.
    pub file: PathBuf,
    /// How to start a worker.
    pub program: Program,
    /// The methods callers may use; the worker must serve each. Empty: whatever the
    /// worker's handshake lists.
    pub capabilities: Vec<String>,
    /// What serves calls when this module is unavailable, in order.
    pub fallback: Vec<Fallback>,
    /// How the host talks to the worker.
    pub transport: TransportKind,
    /// A remote gRPC worker the host does not start: `http://host:port` or
    /// `unix:/path`. Its transport is `Grpc`; `program` is empty.
    pub endpoint: Option<String>,
    /// The codec after the handshake.
    pub codec: Codec,
    /// How many worker processes serve the module.
    pub instances: u32,
    /// The default deadline of a call.
    pub timeout: Duration,
    /// Extra environment for the worker.
    pub env: BTreeMap<String, String>,
    /// How to build the worker, if it needs building.
    pub build: Option<BuildSpec>,
    /// Health checking.
    pub health_check: HealthCheck,
    /// The frame size limit in bytes.
    pub max_frame: usize,
    /// Calls that may wait per worker beyond its announced concurrency.
    pub max_queue: u32,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// How long a worker has to send its handshake.
    pub handshake_timeout: Duration,
    /// How long a worker has to exit after `$shutdown`.
    pub shutdown_grace: Duration,
    /// Calls a new version must answer as expected before it takes traffic in a
    /// deployment, and again right after its promotion.
    pub smoke: Vec<SmokeCall>,
    /// The name of a handler the host has compiled in (`crypto`, `compress`, ...): when
    /// the runtime has it ([`Runtime::register_builtin`](crate::Runtime::register_builtin)),
    /// the module is served in the host's own process by it, with no worker; otherwise
    /// `command`/`path` starts its standalone worker as usual.
    pub builtin: Option<String>,
    /// Whether the host is ready only while this module can serve (by its own workers or
    /// a fallback): a readiness probe fails while a required module cannot.
    pub required: bool,
    /// The methods that may be retried (`idempotent`: a list of names, or `["*"]`).
    pub idempotent: Idempotent,
    /// How they are retried (`retry`).
    pub retry: RetryPolicy,
    /// The circuit breaker of each version (`breaker`).
    pub breaker: BreakerPolicy,
    /// Variables of the host's environment passed through to the worker by name
    /// (`inheritEnv`), beyond the few every worker gets
    /// ([`WORKER_ENV`](crate::WORKER_ENV)); the rest of the host's environment never
    /// reaches it.
    pub inherit_env: Vec<String>,
    /// Resource limits of each worker process.
    pub limits: ResourceLimits,
}

/// Resource limits of a module's worker processes (`limits` in `module.json`), set with
/// `setrlimit` in each worker process before it runs its program, so they hold for
/// everything it starts too. `None` leaves the limit the host has. A worker that runs into
/// one fails like any other: an allocation or `open` fails inside it, or it is killed by
/// a signal, reported and restarted like a crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// The memory a worker may allocate, in bytes (`memoryMb`), as `RLIMIT_DATA`: its
    /// heap and private writable mappings (Linux 4.7 and later), where an allocation over
    /// the limit fails (Python raises `MemoryError`, C++ throws `std::bad_alloc`, Go and
    /// Rust abort). Not `RLIMIT_AS`: that one counts address space merely reserved, which
    /// Go's and V8's runtimes and glibc's per-thread arenas reserve by the gigabyte without
    /// using it, so a limit near the memory actually used would stop them at start.
    pub memory_bytes: Option<u64>,
    /// The CPU time a worker may use over its whole life, in seconds (`cpuSeconds`), as
    /// `RLIMIT_CPU`: the kernel sends `SIGXCPU` when it is used up, which ends the worker
    /// (reported as `signal 24 (SIGXCPU ...)`), and the supervisor restarts it with a
    /// fresh budget. A worker that ignores `SIGXCPU` (Go's runtime does unless the
    /// program listens for it) is killed with `SIGKILL` a few CPU seconds later. It
    /// bounds a runaway loop, not one call: a long-lived worker's budget is spent by all
    /// the calls it serves.
    pub cpu_seconds: Option<u64>,
    /// How many files a worker may have open at once (`openFiles`), as `RLIMIT_NOFILE`,
    /// soft and hard alike, so that a runtime that raises its soft limit at start (Go's
    /// does) stays within it.
    pub open_files: Option<u64>,
}

impl ResourceLimits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == ResourceLimits::default()
    }
}

/// One smoke check call of `module.json`'s `smoke` list: a method, its params, and the
/// answer expected.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeCall {
    /// The method.
    pub method: String,
    /// Its params (`[]` when the manifest gives none).
    pub params: serde_json::Value,
    /// What must come back.
    pub expect: SmokeExpect,
}

/// What a [`SmokeCall`] must answer.
#[derive(Debug, Clone, PartialEq)]
pub enum SmokeExpect {
    /// Any result (no `result` and no `error` given): the call must just succeed.
    Success,
    /// This result (`result`), compared as values (`1` equals `1`, not `1.0`).
    Result(serde_json::Value),
    /// An error with this code (`error`).
    Error(String),
}

impl fmt::Display for SmokeCall {
    /// `method(params)`, as failures name the call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.method, self.params)
    }
}

/// How to start a worker process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The program: a name looked up on `PATH`, or a path (absolute, or inside the module
    /// folder).
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.command.display())?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// One step of a fallback chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Another module, by name.
    Module(String),
    /// A worker file inside this module's folder, run as another implementation of this
    /// same module.
    File(PathBuf),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::Module(m) => write!(f, "module {m:?}"),
            Fallback::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// How the host talks to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// The worker's stdin and stdout.
    Stdio,
    /// A local socket the host listens on; the worker connects.
    Socket,
    /// gRPC: the worker listens and announces its address; the host connects and opens a
    /// `Session` (`docs/protocol.md`, section 10). Also the transport of an `endpoint`.
    Grpc,
}

impl TransportKind {
    /// Its name in manifests and in `POLYGLOT_TRANSPORT`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::Socket => "socket",
            TransportKind::Grpc => "grpc",
        }
    }
}

/// How to build a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The build command, run in the module folder.
    pub program: Program,
    /// Files or folders whose change means a rebuild (inside the module folder).
    pub inputs: Vec<PathBuf>,
    /// What the build produces (inside the module folder): built when missing or older
    /// than an input. Without it, the build runs at every start.
    pub output: Option<PathBuf>,
}

/// Health checking of a module's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// How often `$health` is called.
    pub interval: Duration,
    /// How long one may take.
    pub timeout: Duration,
    /// Failures in a row that restart the worker.
    pub unhealthy_threshold: u32,
}

/// How a module's crashed workers are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// At most this many restarts within `window`; one more fails the module.
    pub max_restarts: u32,
    /// The window.
    pub window: Duration,
    /// The first back-off.
    pub backoff_initial: Duration,
    /// The longest back-off.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy {
            max_restarts: DEFAULT_MAX_RESTARTS,
            window: DEFAULT_RESTART_WINDOW,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

/// A manifest that cannot be used: which file, which field, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", file.display(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The manifest file (or module folder).
    pub file: PathBuf,
    /// The field at fault, as a path (`healthCheck.intervalMs`), when one is.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

// ------------------------------------------------------------------------- raw form

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManifest {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    name: String,
    language: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    fallback: Option<OneOrMany>,
    #[serde(default)]
    transport: Option<TransportKind>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    codec: Option<Codec>,
    #[serde(default)]
    instances: Option<u32>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    build: Option<RawBuild>,
    #[serde(default)]
    health_check: Option<RawHealthCheck>,
    #[serde(default)]
    max_frame_bytes: Option<u64>,
    #[serde(default)]
    max_queue: Option<u32>,
    #[serde(default)]
    restart: Option<RawRestart>,
    #[serde(default)]
    handshake_timeout_ms: Option<u64>,
    #[serde(default)]
    shutdown_grace_ms: Option<u64>,
    #[serde(default)]
    smoke: Vec<RawSmoke>,
    #[serde(default)]
    builtin: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    idempotent: Vec<String>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    breaker: Option<RawBreaker>,
    #[serde(default)]
    inherit_env: Vec<String>,
    #[serde(default)]
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLimits {
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    cpu_seconds: Option<u64>,
    #[serde(default)]
    open_files: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRetry {
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    backoff_initial_ms: Option<u64>,
    #[serde(default)]
    backoff_max_ms: Option<u64>,
    #[serde(default)]
    attempt_timeout_ms: Option<u64>,
    #[serde(default)]
    budget_ratio: Option<f64>,
    #[serde(default)]
    min_retries_per_second: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBreaker {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    consecutive_failures: Option<u32>,
    #[serde(default)]
    error_rate: Option<f64>,
    #[serde(default)]
    min_calls: Option<u32>,
    #[serde(default)]
    window_ms: Option<u64>,
    #[serde(default)]
    cooldown_ms: Option<u64>,
    #[serde(default)]
    half_open_calls: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmoke {
    method: String,
    #[serde(default)]
    params: Option<serde_json::Value>,
    /// `Some(null)` when the manifest says `"result": null`, `None` when it says nothing.
    #[serde(default, deserialize_with = "present")]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

/// Reads a field that is present as `Some`, even when its value is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, untagged)]
enum RawBuild {
    Command(String),
    Full(RawBuildFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBuildFull {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    output: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHealthCheck {
    #[serde(default)]
    interval_ms: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    unhealthy_threshold: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRestart {
    #[serde(default)]
    max_restarts: Option<u32>,
    #[serde(default)]
    window_ms: Option<u64>,
    #[serde(default)]
    backoff_initial_ms: Option<u64>,
    #[serde(default)]
    backoff_max_ms: Option<u64>,
}

// ------------------------------------------------------------------------- policies

/// The most attempts `retry.maxAttempts` may ask for.
pub const MAX_ATTEMPTS: u32 = 10;

/// A field at fault and what is wrong with it.
type FieldError = (String, String);

/// `idempotent`: method names (each offered, when `capabilities` lists them) or `"*"`.
fn idempotent(list: &[String], capabilities: &[String]) -> Result<Idempotent, FieldError> {
    if list.iter().any(|m| m == "*") {
        if list.len() > 1 {
            return Err((
                "idempotent".into(),
                "`\"*\"` (every method) stands alone".into(),
            ));
        }
        return Ok(Idempotent::All);
    }
    for (i, m) in list.iter().enumerate() {
        let field = format!("idempotent[{i}]");
        if m.is_empty() || m.starts_with('$') {
            return Err((
                field,
                format!("{m:?} is not a method name (empty, or reserved `$` method)"),
            ));
        }
        if !capabilities.is_empty() && !capabilities.contains(m) {
            return Err((
                field,
                format!("{m:?} is not in `capabilities` ({capabilities:?})"),
            ));
        }
    }
    Ok(if list.is_empty() {
        Idempotent::None
    } else {
        Idempotent::Methods(list.to_vec())
    })
}

/// Milliseconds of `field`, at least 1, or `default`.
fn millis(field: &str, v: Option<u64>, default: Duration) -> Result<Duration, FieldError> {
    match v {
        Some(0) => Err((field.into(), "must be at least 1 millisecond".into())),
        Some(v) => Ok(Duration::from_millis(v)),
        None => Ok(default),
    }
}

/// A count of `field`, at least 1, or `default`.
fn at_least_one(field: &str, v: Option<u32>, default: u32) -> Result<u32, FieldError> {
    match v {
        Some(0) => Err((field.into(), "must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// A ratio of `field` between 0 and 1, or `default`.
fn ratio(field: &str, v: Option<f64>, default: f64) -> Result<f64, FieldError> {
    match v {
        None => Ok(default),
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Some(r) => Err((field.into(), format!("must be between 0 and 1, not {r}"))),
    }
}

fn retry_policy(r: RawRetry, timeout: Duration) -> Result<RetryPolicy, FieldError> {
    let d = RetryPolicy::default();
    let max_attempts = at_least_one("retry.maxAttempts", r.max_attempts, d.max_attempts)?;
    if max_attempts > MAX_ATTEMPTS {
        return Err((
            "retry.maxAttempts".into(),
            format!("must be at most {MAX_ATTEMPTS}, not {max_attempts}"),
        ));
    }
    let p = RetryPolicy {
        max_attempts,
        backoff_initial: millis(
            "retry.backoffInitialMs",
            r.backoff_initial_ms,
            d.backoff_initial,
        )?,
        backoff_max: millis("retry.backoffMaxMs", r.backoff_max_ms, d.backoff_max)?,
        attempt_timeout: r
            .attempt_timeout_ms
            .map(|v| millis("retry.attemptTimeoutMs", Some(v), timeout))
            .transpose()?,
        budget_ratio: ratio("retry.budgetRatio", r.budget_ratio, d.budget_ratio)?,
        min_retries_per_second: r.min_retries_per_second.unwrap_or(d.min_retries_per_second),
    };
    if p.backoff_max < p.backoff_initial {
        return Err((
            "retry.backoffMaxMs".into(),
            "must not be less than retry.backoffInitialMs".into(),
        ));
    }
    if p.attempt_timeout.is_some_and(|t| t >= timeout) {
        return Err((
            "retry.attemptTimeoutMs".into(),
            format!(
                "must be less than the call's timeoutMs ({} ms), or no retry would have time to run",
                timeout.as_millis()
            ),
        ));
    }
    Ok(p)
}

fn breaker_policy(b: RawBreaker) -> Result<BreakerPolicy, FieldError> {
    let d = BreakerPolicy::default();
    let error_rate = ratio("breaker.errorRate", b.error_rate, d.error_rate)?;
    if error_rate == 0.0 {
        return Err((
            "breaker.errorRate".into(),
            "must be above 0 (0 would open at any failure; for that, set consecutiveFailures to 1)"
                .into(),
        ));
    }
    Ok(BreakerPolicy {
        enabled: b.enabled.unwrap_or(d.enabled),
        consecutive_failures: at_least_one(
            "breaker.consecutiveFailures",
            b.consecutive_failures,
            d.consecutive_failures,
        )?,
        error_rate,
        min_calls: at_least_one("breaker.minCalls", b.min_calls, d.min_calls)?,
        window: millis("breaker.windowMs", b.window_ms, d.window)?,
        cooldown: millis("breaker.cooldownMs", b.cooldown_ms, d.cooldown)?,
        half_open_calls: at_least_one(
            "breaker.halfOpenCalls",
            b.half_open_calls,
            d.half_open_calls,
        )?,
    })
}

impl Manifest {
    /// Whether `other` differs from this manifest only in its call policies (`timeoutMs`,
    /// `maxQueue`, `idempotent`, `retry`, `breaker`): a reload applies those to the
    /// running version, with no new workers.
    pub fn differs_only_in_policies(&self, other: &Manifest) -> bool {
        let mut same = other.clone();
        same.timeout = self.timeout;
        same.max_queue = self.max_queue;
        same.idempotent = self.idempotent.clone();
        same.retry = self.retry;
        same.breaker = self.breaker;
        *self == same
    }
}

// ------------------------------------------------------------------------- validation

impl Manifest {
    /// Reads and validates the `module.json` in `dir`.
    ///
    /// # Errors
    /// A [`ManifestError`] naming the file, the field and what was expected.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let file = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            file: file.clone(),
            field: None,
            message: format!("cannot read it: {e}"),
        })?;
        Manifest::parse(&text, &dir, &file)
    }

    /// Validates manifest text as if it were `file` in `dir`.
    ///
    /// # Errors
    /// A [`ManifestError`] naming the file, the field and what was expected.
    pub fn parse(text: &str, dir: &Path, file: &Path) -> Result<Manifest, ManifestError> {
        let err = |field: &str, message: String| ManifestError {
            file: file.to_path_buf(),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawManifest = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." { String::new() } else { path };
            err(&field, inner.to_string())
        })?;
        // One JSON object and nothing after it (whitespace aside), as `serde_json::from_str`.
        de.end().map_err(|e| err("", e.to_string()))?;

        if !valid_name(&raw.name) {
            return Err(err(
                "name",
                format!(
                    "{:?} is not a module name: use letters, digits, '-', '_' and '.', \
                     starting with a letter or digit",
                    raw.name
                ),
            ));
        }
        if raw.version.trim().is_empty() {
            return Err(err("version", "must not be empty".into()));
        }
        // Deployments name versions by it: it must be a valid version id.
        if let Err(polyglot_hotswap::DeployError::InvalidVersionId { problem, .. }) =
            polyglot_hotswap::VersionId::new(raw.version.as_str())
        {
            return Err(err(
                "version",
                format!("{:?} cannot be a version label: {problem}", raw.version),
            ));
        }
        if raw.language.trim().is_empty() {
            return Err(err("language", "must not be empty".into()));
        }
        let endpoint = match &raw.endpoint {
            None => None,
            Some(e) => {
                if raw.command.is_some() || raw.path.is_some() {
                    return Err(err(
                        "endpoint",
                        "a remote worker is not started by the host: give `endpoint` or \
                         `command`/`path`, not both"
                            .into(),
                    ));
                }
                if raw.build.is_some() {
                    return Err(err(
                        "endpoint",
                        "a remote worker has no build step here: remove `build`".into(),
                    ));
                }
                if matches!(raw.transport, Some(t) if t != TransportKind::Grpc) {
                    return Err(err(
                        "transport",
                        "a remote `endpoint` is reached over gRPC: use \"grpc\" or leave it out"
                            .into(),
                    ));
                }
                Some(valid_endpoint(e).map_err(|m| err("endpoint", m))?)
            }
        };
        if let Some(b) = &raw.builtin {
            if !valid_name(b) {
                return Err(err(
                    "builtin",
                    format!("{b:?} is not a builtin name: use letters, digits, '-', '_' and '.'"),
                ));
            }
            if endpoint.is_some() {
                return Err(err(
                    "builtin",
                    "a builtin runs in the host's process, a remote `endpoint` on another \
                     machine: give one of them"
                        .into(),
                ));
            }
        }
        let program = match (&raw.command, &raw.path) {
            _ if endpoint.is_some() => Program {
                command: PathBuf::new(),
                args: Vec::new(),
            },
            (Some(cmd), path) => {
                let command = resolve_command(cmd, dir).map_err(|m| err("command", m))?;
                let mut args = raw.args.clone();
                if let Some(p) = path {
                    inside(dir, p).map_err(|m| err("path", m))?;
                    args.push(p.clone());
                }
                Program { command, args }
            }
            (None, Some(p)) => {
                let file = inside(dir, p).map_err(|m| err("path", m))?;
                interpreter_for(&raw.language, &file, raw.args.clone())
            }
            // Served in process, or not at all when the host lacks the builtin.
            (None, None) if raw.builtin.is_some() => Program {
                command: PathBuf::new(),
                args: Vec::new(),
            },
            (None, None) => {
                return Err(err(
                    "",
                    "needs `command` (a program to run), `path` (the worker's entry file), \
                     `endpoint` (a remote gRPC worker) or `builtin` (a handler compiled into \
                     the host)"
                        .into(),
                ))
            }
        };
        let mut seen = std::collections::HashSet::new();
        for (i, c) in raw.capabilities.iter().enumerate() {
            if c.is_empty() || c.starts_with('$') {
                return Err(err(
                    &format!("capabilities[{i}]"),
                    format!("{c:?} is not a method name (empty, or reserved `$` method)"),
                ));
            }
            if !seen.insert(c) {
                return Err(err(
                    &format!("capabilities[{i}]"),
                    format!("{c:?} is listed twice"),
                ));
            }
        }
        let fallback = match raw.fallback {
            None => Vec::new(),
            Some(OneOrMany::One(f)) => {
                vec![parse_fallback(&f, dir, &raw.name).map_err(|m| err("fallback", m))?]
            }
            Some(OneOrMany::Many(list)) => list
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    parse_fallback(f, dir, &raw.name).map_err(|m| err(&format!("fallback[{i}]"), m))
                })
                .collect::<Result<_, _>>()?,
        };
        let instances = raw.instances.unwrap_or(1);
        if instances == 0 || instances > MAX_INSTANCES {
            return Err(err(
                "instances",
                format!("must be between 1 and {MAX_INSTANCES}, not {instances}"),
            ));
        }
        let ms = |field: &str, v: Option<u64>, default: Duration| match v {
            Some(0) => Err(err(field, "must be at least 1 millisecond".into())),
            Some(v) => Ok(Duration::from_millis(v)),
            None => Ok(default),
        };
        let timeout = ms("timeoutMs", raw.timeout_ms, DEFAULT_TIMEOUT)?;
        let handshake_timeout = ms(
            "handshakeTimeoutMs",
            raw.handshake_timeout_ms,
            DEFAULT_HANDSHAKE_TIMEOUT,
        )?;
        let shutdown_grace = ms(
            "shutdownGraceMs",
            raw.shutdown_grace_ms,
            DEFAULT_SHUTDOWN_GRACE,
        )?;
        let health_check = match raw.health_check {
            None => HealthCheck {
                interval: DEFAULT_HEALTH_INTERVAL,
                timeout: DEFAULT_HEALTH_TIMEOUT,
                unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            },
            Some(h) => HealthCheck {
                interval: ms(
                    "healthCheck.intervalMs",
                    h.interval_ms,
                    DEFAULT_HEALTH_INTERVAL,
                )?,
                timeout: ms(
                    "healthCheck.timeoutMs",
                    h.timeout_ms,
                    DEFAULT_HEALTH_TIMEOUT,
                )?,
                unhealthy_threshold: match h.unhealthy_threshold {
                    Some(0) => {
                        return Err(err(
                            "healthCheck.unhealthyThreshold",
                            "must be at least 1".into(),
                        ))
                    }
                    Some(n) => n,
                    None => DEFAULT_UNHEALTHY_THRESHOLD,
                },
            },
        };
        let restart = match raw.restart {
            None => RestartPolicy::default(),
            Some(r) => {
                let d = RestartPolicy::default();
                let p = RestartPolicy {
                    max_restarts: r.max_restarts.unwrap_or(d.max_restarts),
                    window: ms("restart.windowMs", r.window_ms, d.window)?,
                    backoff_initial: ms(
                        "restart.backoffInitialMs",
                        r.backoff_initial_ms,
                        d.backoff_initial,
                    )?,
                    backoff_max: ms("restart.backoffMaxMs", r.backoff_max_ms, d.backoff_max)?,
                };
                if p.backoff_max < p.backoff_initial {
                    return Err(err(
                        "restart.backoffMaxMs",
                        "must not be less than restart.backoffInitialMs".into(),
                    ));
                }
                p
            }
        };
        let max_frame = match raw.max_frame_bytes {
            None => DEFAULT_MAX_FRAME,
            Some(n) if n < 1024 || n > u64::from(u32::MAX) => {
                return Err(err(
                    "maxFrameBytes",
                    format!("must be between 1024 and {} bytes, not {n}", u32::MAX),
                ))
            }
            Some(n) => n as usize,
        };
        for key in raw.env.keys() {
            if key.is_empty() || key.contains('=') || key.starts_with("POLYGLOT_") {
                return Err(err(
                    &format!("env.{key}"),
                    "not a variable a manifest may set (empty, has '=', or POLYGLOT_*)".into(),
                ));
            }
        }
        let mut passed = std::collections::HashSet::new();
        for (i, key) in raw.inherit_env.iter().enumerate() {
            let field = format!("inheritEnv[{i}]");
            if key.is_empty() || key.contains(['=', '\0']) || key.starts_with("POLYGLOT_") {
                return Err(err(
                    &field,
                    format!(
                        "{key:?} is not a variable a worker may inherit (empty, has '=', or \
                         POLYGLOT_*: the host's own settings and secrets stay with the host)"
                    ),
                ));
            }
            if raw.env.contains_key(key) {
                return Err(err(
                    &field,
                    format!("{key:?} is set by `env` too: give it one way"),
                ));
            }
            if !passed.insert(key) {
                return Err(err(&field, format!("{key:?} is listed twice")));
            }
        }
        let limits = match raw.limits {
            None => ResourceLimits::default(),
            Some(_) if endpoint.is_some() => {
                return Err(err(
                    "limits",
                    "a remote worker is not started by the host, which cannot limit it: \
                     remove `limits`"
                        .into(),
                ))
            }
            Some(l) => resource_limits(l).map_err(|(f, m)| err(&format!("limits.{f}"), m))?,
        };
        let build = match raw.build {
            None => None,
            Some(RawBuild::Command(cmd)) => Some(BuildSpec {
                program: Program {
                    command: resolve_command(&cmd, dir).map_err(|m| err("build", m))?,
                    args: Vec::new(),
                },
                inputs: Vec::new(),
                output: None,
            }),
            Some(RawBuild::Full(b)) => Some(BuildSpec {
                program: Program {
                    command: resolve_command(&b.command, dir)
                        .map_err(|m| err("build.command", m))?,
                    args: b.args,
                },
                inputs: b
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(i, p)| inside(dir, p).map_err(|m| err(&format!("build.inputs[{i}]"), m)))
                    .collect::<Result<_, _>>()?,
                output: b
                    .output
                    .map(|o| inside(dir, &o).map_err(|m| err("build.output", m)))
                    .transpose()?,
            }),
        };
        let idempotent =
            idempotent(&raw.idempotent, &raw.capabilities).map_err(|(f, m)| err(&f, m))?;
        let retry = match raw.retry {
            None => RetryPolicy::default(),
            Some(r) => retry_policy(r, timeout).map_err(|(f, m)| err(&f, m))?,
        };
        let breaker = match raw.breaker {
            None => BreakerPolicy::default(),
            Some(b) => breaker_policy(b).map_err(|(f, m)| err(&f, m))?,
        };
        let smoke = raw
            .smoke
            .into_iter()
            .enumerate()
            .map(|(i, c)| smoke_call(i, c, &raw.capabilities).map_err(|(f, m)| err(&f, m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest {
            name: raw.name,
            language: raw.language,
            version: raw.version,
            description: raw.description,
            dir: dir.to_path_buf(),
            file: file.to_path_buf(),
            program,
            capabilities: raw.capabilities,
            fallback,
            transport: if endpoint.is_some() {
                TransportKind::Grpc
            } else {
                raw.transport.unwrap_or(TransportKind::Stdio)
            },
            endpoint,
            codec: raw.codec.unwrap_or_default(),
            instances,
            timeout,
            env: raw.env,
            build,
            health_check,
            max_frame,
            max_queue: raw.max_queue.unwrap_or(DEFAULT_MAX_QUEUE),
            restart,
            handshake_timeout,
            shutdown_grace,
            smoke,
            builtin: raw.builtin,
            required: raw.required,
            idempotent,
            retry,
            breaker,
            inherit_env: raw.inherit_env,
            limits,
        })
    }

    /// The manifest of a module served in the host's own process (no folder, no worker).
    pub fn in_process(name: &str, version: &str) -> Manifest {
        Manifest {
            name: name.to_owned(),
            language: "rust".into(),
            version: version.to_owned(),
            description: None,
            dir: PathBuf::new(),
            file: PathBuf::new(),
            program: Program {
                command: PathBuf::new(),
                args: Vec::new(),
            },
            capabilities: Vec::new(),
            fallback: Vec::new(),
            transport: TransportKind::Stdio,
            endpoint: None,
            codec: Codec::Json,
            instances: 1,
            timeout: DEFAULT_TIMEOUT,
            env: BTreeMap::new(),
            build: None,
            health_check: HealthCheck {
                interval: DEFAULT_HEALTH_INTERVAL,
                timeout: DEFAULT_HEALTH_TIMEOUT,
                unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            },
            max_frame: DEFAULT_MAX_FRAME,
            max_queue: DEFAULT_MAX_QUEUE,
            restart: RestartPolicy::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            smoke: Vec::new(),
            builtin: None,
            required: false,
            idempotent: Idempotent::None,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            inherit_env: Vec::new(),
            limits: ResourceLimits::default(),
        }
    }

    /// The same module served by a fallback file of its folder instead of its own program.
    pub(crate) fn for_fallback_file(&self, file: &Path) -> Manifest {
        let mut m = self.clone();
        m.program = interpreter_for("", file, Vec::new());
        m.build = None;
        m.fallback = Vec::new();
        m.instances = 1;
        m.smoke = Vec::new();
        m
    }
}

/// Validates entry `i` of `smoke`; an error is the field and the message.
fn smoke_call(
    i: usize,
    raw: RawSmoke,
    capabilities: &[String],
) -> Result<SmokeCall, (String, String)> {
    let field = |f: &str| format!("smoke[{i}]{f}");
    let m = &raw.method;
    if m.is_empty() || m.starts_with('$') {
        return Err((
            field(".method"),
            format!(
                "{m:?} is not a method a smoke check may call (empty, or a reserved `$` method)"
            ),
        ));
    }
    if !capabilities.is_empty() && !capabilities.contains(m) {
        return Err((
            field(".method"),
            format!(
                "{m:?} is not among the module's capabilities ({})",
                capabilities.join(", ")
            ),
        ));
    }
    let expect = match (raw.result, raw.error) {
        (Some(_), Some(_)) => {
            return Err((
                field(""),
                "give the `result` expected or the `error` code expected, not both".into(),
            ))
        }
        (Some(r), None) => SmokeExpect::Result(r),
        (None, Some(code)) if code.trim().is_empty() => {
            return Err((field(".error"), "an error code must not be empty".into()))
        }
        (None, Some(code)) => SmokeExpect::Error(code),
        (None, None) => SmokeExpect::Success,
    };
    Ok(SmokeCall {
        method: raw.method,
        params: raw
            .params
            .unwrap_or_else(|| serde_json::Value::Array(Vec::new())),
        expect,
    })
}

/// Validates `limits`; an error is the field inside it and the message.
fn resource_limits(raw: RawLimits) -> Result<ResourceLimits, (&'static str, String)> {
    let memory_bytes = match raw.memory_mb {
        None => None,
        Some(mb) if !(MIN_MEMORY_LIMIT_MB..=MAX_MEMORY_LIMIT_MB).contains(&mb) => {
            return Err((
                "memoryMb",
                format!(
                    "must be between {MIN_MEMORY_LIMIT_MB} and {MAX_MEMORY_LIMIT_MB} \
                     megabytes, not {mb}"
                ),
            ))
        }
        Some(mb) => Some(mb << 20),
    };
    let cpu_seconds = match raw.cpu_seconds {
        Some(0) => return Err(("cpuSeconds", "must be at least 1 second".into())),
        s => s,
    };
    let open_files = match raw.open_files {
        Some(n) if !(MIN_OPEN_FILES..=MAX_OPEN_FILES).contains(&n) => {
            return Err((
                "openFiles",
                format!("must be between {MIN_OPEN_FILES} and {MAX_OPEN_FILES}, not {n}"),
            ))
        }
        n => n,
    };
    Ok(ResourceLimits {
        memory_bytes,
        cpu_seconds,
        open_files,
    })
}

/// Checks a remote worker's address: `http://host:port` or `unix:/absolute/path`.
fn valid_endpoint(e: &str) -> Result<String, String> {
    if let Some(path) = e.strip_prefix("unix:") {
        if !path.starts_with('/') {
            return Err(format!(
                "{e:?}: a Unix socket endpoint needs an absolute path"
            ));
        }
        return Ok(e.to_owned());
    }
    if e.starts_with("https://") {
        return Err(format!(
            "{e:?}: TLS to remote workers is not supported yet; use http:// inside a trusted \
             network, or a Unix socket"
        ));
    }
    let Some(rest) = e.strip_prefix("http://") else {
        return Err(format!(
            "{e:?} is not an endpoint: expected http://host:port or unix:/path"
        ));
    };
    let authority = rest.trim_end_matches('/');
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            if authority.contains('/') {
                return Err(format!(
                    "{e:?}: an endpoint has no path, just http://host:port"
                ));
            }
            Ok(format!("http://{authority}"))
        }
        _ => Err(format!(
            "{e:?}: expected http://host:port with a port number"
        )),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 128
}

/// Resolves a relative path inside `dir`, refusing one that is absolute or climbs out.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    if rel.is_empty() {
        return Err("must not be empty".into());
    }
    if p.is_absolute() {
        return Err(format!(
            "{rel:?} must be relative to the module folder, not absolute"
        ));
    }
    let mut depth = 0i32;
    for c in p.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!(
                "{rel:?} leaves the module folder; paths must stay inside it"
            ));
        }
    }
    Ok(dir.join(p))
}

/// A command: a bare name is looked up on `PATH`; a path is inside the module folder
/// (relative) or anywhere (absolute, an operator's explicit choice).
fn resolve_command(cmd: &str, dir: &Path) -> Result<PathBuf, String> {
    if cmd.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if Path::new(cmd).is_absolute() {
        return Ok(PathBuf::from(cmd));
    }
    if cmd.contains('/') {
        return inside(dir, cmd);
    }
    Ok(PathBuf::from(cmd))
}

/// How to run an entry file: by its extension, else by the module's language, else as an
/// executable itself.
fn interpreter_for(language: &str, file: &Path, extra: Vec<String>) -> Program {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let interpreter = match (ext, language) {
        ("py", _) | ("", "python") => Some("python3"),
        // TypeScript runs compiled, through the TypeScript SDK (`typescript.rs`).
        ("js" | "mjs" | "cjs" | "ts" | "mts" | "cts", _) | ("", "javascript" | "typescript") => {
            Some("node")
        }
        _ => None,
    };
    match interpreter {
        Some(i) => {
            let mut args = vec![file.display().to_string()];
            args.extend(extra);
            Program {
                command: PathBuf::from(i),
                args,
            }
        }
        None => Program {
            command: file.to_path_buf(),
            args: extra,
        },
    }
}

fn parse_fallback(f: &str, dir: &Path, own_name: &str) -> Result<Fallback, String> {
    if f.contains('/') || f.contains('\\') {
        let path = inside(dir, f)?;
        return Ok(Fallback::File(path));
    }
    if f == own_name {
        return Err(format!("{f:?} is this module itself"));
    }
    if !valid_name(f) {
        return Err(format!(
            "{f:?} is neither a module name nor a path inside the module folder (\"./...\")"
        ));
    }
    Ok(Fallback::Module(f.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(json, Path::new("/m/text"), Path::new("/m/text/module.json"))
    }

    const MIN: &str = r#""name":"text","language":"python","version":"1.0.0""#;

    #[test]
    fn resilience_policies_parse_and_only_they_count_as_policy_changes() {
        let dir = Path::new("/m");
        let file = dir.join("module.json");
        let m = Manifest::parse(&format!(r#"{{{MIN},"path":"w"}}"#), dir, &file).unwrap();
        assert_eq!(m.idempotent, Idempotent::None);
        assert_eq!(m.retry, RetryPolicy::default());
        assert_eq!(m.breaker, BreakerPolicy::default());
        let text = format!(
            r#"{{{MIN},"path":"w","capabilities":["a","b"],"idempotent":["a"],
            "retry":{{"maxAttempts":4,"backoffInitialMs":5,"backoffMaxMs":50,"attemptTimeoutMs":200,
                      "budgetRatio":0.5,"minRetriesPerSecond":2}},
            "breaker":{{"enabled":false,"consecutiveFailures":2,"errorRate":0.25,"minCalls":8,
                        "windowMs":1000,"cooldownMs":300,"halfOpenCalls":2}}}}"#
        );
        let p = Manifest::parse(&text, dir, &file).unwrap();
        assert_eq!(p.idempotent, Idempotent::Methods(vec!["a".into()]));
        assert_eq!(
            p.retry,
            RetryPolicy {
                max_attempts: 4,
                backoff_initial: Duration::from_millis(5),
                backoff_max: Duration::from_millis(50),
                attempt_timeout: Some(Duration::from_millis(200)),
                budget_ratio: 0.5,
                min_retries_per_second: 2,
            }
        );
        assert_eq!(
            p.breaker,
            BreakerPolicy {
                enabled: false,
                consecutive_failures: 2,
                error_rate: 0.25,
                min_calls: 8,
                window: Duration::from_millis(1000),
                cooldown: Duration::from_millis(300),
                half_open_calls: 2,
            }
        );
        let star = format!(r#"{{{MIN},"path":"w","idempotent":["*"]}}"#);
        assert_eq!(
            Manifest::parse(&star, dir, &file).unwrap().idempotent,
            Idempotent::All
        );

        let mut q = m.clone();
        q.timeout = Duration::from_secs(1);
        q.max_queue = 3;
        q.idempotent = Idempotent::All;
        q.retry.max_attempts = 5;
        q.breaker.enabled = false;
        assert!(m.differs_only_in_policies(&q));
        q.instances = 2;
        assert!(!m.differs_only_in_policies(&q));
    }

    #[test]
    fn minimal_manifest_gets_defaults() {
        let m = parse(&format!(r#"{{{MIN},"path":"worker.py"}}"#)).unwrap();
        assert_eq!(m.program.command, PathBuf::from("python3"));
        assert_eq!(m.program.args, vec!["/m/text/worker.py"]);
        assert_eq!(
            (m.instances, m.codec, m.timeout),
            (1, Codec::Json, DEFAULT_TIMEOUT)
        );
    }

    #[test]
    fn an_endpoint_is_a_remote_grpc_worker() {
        let m = parse(&format!(r#"{{{MIN},"endpoint":"http://10.0.0.7:7070/"}}"#)).unwrap();
        assert_eq!(m.endpoint.as_deref(), Some("http://10.0.0.7:7070"));
        assert_eq!(m.transport, TransportKind::Grpc);
        let m = parse(&format!(r#"{{{MIN},"endpoint":"unix:/run/w.sock"}}"#)).unwrap();
        assert_eq!(m.endpoint.as_deref(), Some("unix:/run/w.sock"));
        let m = parse(&format!(r#"{{{MIN},"path":"w","transport":"grpc"}}"#)).unwrap();
        assert_eq!((m.transport, m.endpoint), (TransportKind::Grpc, None));
    }

    #[test]
    fn a_builtin_needs_no_command() {
        let m = parse(&format!(r#"{{{MIN},"builtin":"crypto"}}"#)).unwrap();
        assert_eq!(m.builtin.as_deref(), Some("crypto"));
        assert!(m.program.command.as_os_str().is_empty());
    }

    #[test]
    fn smoke_calls_are_read_with_what_they_expect() {
        let m = parse(&format!(
            r#"{{{MIN},"path":"w","smoke":[
                {{"method":"echo","params":["hi"],"result":"hi"}},
                {{"method":"version","result":null}},
                {{"method":"fail","params":["E","m"],"error":"E"}},
                {{"method":"pid"}}]}}"#
        ))
        .unwrap();
        let expects: Vec<&SmokeExpect> = m.smoke.iter().map(|c| &c.expect).collect();
        assert_eq!(
            expects,
            [
                &SmokeExpect::Result(serde_json::json!("hi")),
                &SmokeExpect::Result(serde_json::Value::Null),
                &SmokeExpect::Error("E".into()),
                &SmokeExpect::Success,
            ]
        );
        assert_eq!(m.smoke[0].to_string(), r#"echo(["hi"])"#);
        assert_eq!(m.smoke[3].params, serde_json::json!([]));
    }

    #[test]
    fn required_is_false_unless_set() {
        assert!(!parse(&format!(r#"{{{MIN},"path":"w"}}"#)).unwrap().required);
        let m = parse(&format!(r#"{{{MIN},"path":"w","required":true}}"#)).unwrap();
        assert!(m.required);
        let e = parse(&format!(r#"{{{MIN},"path":"w","required":"yes"}}"#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("required"), "{e}");
        assert!(e.to_string().contains("boolean"), "{e}");
    }

    #[test]
    fn inherit_env_and_limits_are_read() {
        let m = parse(&format!(r#"{{{MIN},"path":"w"}}"#)).unwrap();
        assert!(m.inherit_env.is_empty());
        assert!(m.limits.is_empty());
        let m = parse(&format!(
            r#"{{{MIN},"path":"w","inheritEnv":["AWS_REGION","SSL_CERT_FILE"],
                "limits":{{"memoryMb":512,"cpuSeconds":60,"openFiles":1024}}}}"#
        ))
        .unwrap();
        assert_eq!(m.inherit_env, ["AWS_REGION", "SSL_CERT_FILE"]);
        assert_eq!(
            m.limits,
            ResourceLimits {
                memory_bytes: Some(512 << 20),
                cpu_seconds: Some(60),
                open_files: Some(1024),
            }
        );
        let m = parse(&format!(
            r#"{{{MIN},"path":"w","limits":{{"cpuSeconds":5}}}}"#
        ))
        .unwrap();
        assert_eq!(
            (
                m.limits.memory_bytes,
                m.limits.cpu_seconds,
                m.limits.open_files
            ),
            (None, Some(5), None)
        );
    }

    /// Found by the `manifest` fuzz target: text after the manifest's object was ignored,
    /// so a file that is not JSON (a bad merge, two objects) was accepted.
    #[test]
    fn text_after_the_object_is_refused() {
        for tail in [" },\n \"maxQueue\": 8\n}", "}", "{}", "x", "\"a\""] {
            let body = format!(r#"{{{MIN},"path":"w"}}{tail}"#);
            let e = parse(&body).expect_err(&body);
            assert_eq!(e.field, None, "{body}");
            assert!(e.message.contains("trailing characters"), "{body}: {e}");
        }
        parse(&format!("\n {{{MIN},\"path\":\"w\"}} \r\n\t")).expect("whitespace around it");
    }

    /// Each case: a manifest body, the field the error must name, and a word it must use.
    #[test]
    fn every_bad_field_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"{"language":"x","version":"1","path":"w"}"#, "", "name"),
            (
                r#"{"name":"a b","language":"x","version":"1","path":"w"}"#,
                "name",
                "module name",
            ),
            (&format!(r#"{{{MIN}}}"#), "", "command"),
            (&format!(r#"{{{MIN},"path":"../w.py"}}"#), "path", "leaves"),
            (
                &format!(r#"{{{MIN},"path":"/etc/w.py"}}"#),
                "path",
                "absolute",
            ),
            (
                &format!(r#"{{{MIN},"command":"../bin/w"}}"#),
                "command",
                "leaves",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","instances":0}}"#),
                "instances",
                "between",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","instances":"2"}}"#),
                "instances",
                "u32",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","transport":"tcp"}}"#),
                "transport",
                "stdio",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","codec":"xml"}}"#),
                "codec",
                "msgpack",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","endpoint":"http://h:1"}}"#),
                "endpoint",
                "not both",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"http://h"}}"#),
                "endpoint",
                "port",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"h:7070"}}"#),
                "endpoint",
                "http://host:port",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"https://h:443"}}"#),
                "endpoint",
                "TLS",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"unix:sock"}}"#),
                "endpoint",
                "absolute",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"http://h:1","transport":"stdio"}}"#),
                "transport",
                "grpc",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"http://h:1","build":"make"}}"#),
                "endpoint",
                "build",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","timeoutMs":0}}"#),
                "timeoutMs",
                "at least",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","fallback":"text"}}"#),
                "fallback",
                "itself",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","fallback":["x","../f.py"]}}"#),
                "fallback[1]",
                "leaves",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","capabilities":["a","a"]}}"#),
                "capabilities[1]",
                "twice",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","capabilities":["$health"]}}"#),
                "capabilities[0]",
                "reserved",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","healthCheck":{{"intervalMs":0}}}}"#),
                "healthCheck.intervalMs",
                "at least",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","healthCheck":{{"every":1}}}}"#),
                "healthCheck.every",
                "unknown field",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","env":{{"POLYGLOT_CODEC":"x"}}}}"#),
                "env.POLYGLOT_CODEC",
                "POLYGLOT",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","build":{{"command":"make","output":"../x"}}}}"#),
                "build.output",
                "leaves",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","maxFrameBytes":10}}"#),
                "maxFrameBytes",
                "between",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","colour":"blue"}}"#),
                "colour",
                "unknown field",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","capabilities":["a"],"idempotent":["b"]}}"#),
                "idempotent[0]",
                "not in `capabilities`",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","idempotent":["*","a"]}}"#),
                "idempotent",
                "stands alone",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","idempotent":["$health"]}}"#),
                "idempotent[0]",
                "reserved",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","retry":{{"maxAttempts":0}}}}"#),
                "retry.maxAttempts",
                "at least 1",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","retry":{{"maxAttempts":11}}}}"#),
                "retry.maxAttempts",
                "at most 10",
            ),
            (
                &format!(
                    r#"{{{MIN},"path":"w","timeoutMs":1000,"retry":{{"attemptTimeoutMs":1000}}}}"#
                ),
                "retry.attemptTimeoutMs",
                "less than the call's timeoutMs (1000 ms)",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","retry":{{"budgetRatio":2}}}}"#),
                "retry.budgetRatio",
                "between 0 and 1",
            ),
            (
                &format!(
                    r#"{{{MIN},"path":"w","retry":{{"backoffInitialMs":50,"backoffMaxMs":10}}}}"#
                ),
                "retry.backoffMaxMs",
                "less",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","retry":{{"attempts":3}}}}"#),
                "retry.attempts",
                "unknown field",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","breaker":{{"errorRate":0}}}}"#),
                "breaker.errorRate",
                "above 0",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","breaker":{{"cooldownMs":0}}}}"#),
                "breaker.cooldownMs",
                "at least 1 millisecond",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","breaker":{{"halfOpenCalls":0}}}}"#),
                "breaker.halfOpenCalls",
                "at least 1",
            ),
            (
                &format!(
                    r#"{{{MIN},"path":"w","restart":{{"backoffInitialMs":500,"backoffMaxMs":100}}}}"#
                ),
                "restart.backoffMaxMs",
                "less",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","smoke":[{{"method":"$health"}}]}}"#),
                "smoke[0].method",
                "reserved",
            ),
            (
                &format!(
                    r#"{{{MIN},"path":"w","capabilities":["echo"],"smoke":[{{"method":"echo"}},{{"method":"add"}}]}}"#
                ),
                "smoke[1].method",
                "capabilities",
            ),
            (
                &format!(
                    r#"{{{MIN},"path":"w","smoke":[{{"method":"echo","result":1,"error":"E"}}]}}"#
                ),
                "smoke[0]",
                "not both",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","smoke":[{{"method":"echo","expect":1}}]}}"#),
                "smoke[0].expect",
                "unknown field",
            ),
            (
                r#"{"name":"text","language":"python","version":"1 0","path":"w"}"#,
                "version",
                "whitespace",
            ),
            ("{not json", "", "key must be a string"),
            (
                &format!(r#"{{{MIN},"builtin":"no good"}}"#),
                "builtin",
                "not a builtin name",
            ),
            (
                &format!(r#"{{{MIN},"builtin":"crypto","endpoint":"http://h:1"}}"#),
                "builtin",
                "give one of them",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","inheritEnv":["POLYGLOT_API_KEY"]}}"#),
                "inheritEnv[0]",
                "secrets",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","inheritEnv":["HOME","A=B"]}}"#),
                "inheritEnv[1]",
                "'='",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","inheritEnv":["A","A"]}}"#),
                "inheritEnv[1]",
                "twice",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","env":{{"A":"1"}},"inheritEnv":["A"]}}"#),
                "inheritEnv[0]",
                "one way",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","inheritEnv":"HOME"}}"#),
                "inheritEnv",
                "sequence",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"memoryMb":4}}}}"#),
                "limits.memoryMb",
                "between 16",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"memoryMb":536870912}}}}"#),
                "limits.memoryMb",
                "megabytes",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"memoryMb":-1}}}}"#),
                "limits.memoryMb",
                "u64",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"cpuSeconds":0}}}}"#),
                "limits.cpuSeconds",
                "at least 1",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"openFiles":3}}}}"#),
                "limits.openFiles",
                "between 32",
            ),
            (
                &format!(r#"{{{MIN},"path":"w","limits":{{"memoryMB":64}}}}"#),
                "limits.memoryMB",
                "unknown field",
            ),
            (
                &format!(r#"{{{MIN},"endpoint":"http://h:1","limits":{{"cpuSeconds":1}}}}"#),
                "limits",
                "remote",
            ),
        ];
        for (body, field, word) in cases {
            let e = parse(body).expect_err(body);
            let text = e.to_string();
            assert!(text.starts_with("/m/text/module.json"), "{text}");
            if !field.is_empty() {
                assert_eq!(e.field.as_deref(), Some(*field), "{body}: {text}");
            }
            assert!(
                text.contains(word),
                "{body}: {text:?} should mention {word:?}"
            );
        }
    }
}
