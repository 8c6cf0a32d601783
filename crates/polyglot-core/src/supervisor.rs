//! Supervision of one worker slot of a module: start, handshake, serve, notice the end,
//! restart with back-off inside the module's restart intensity; and its health checks.
//! (The design and its limits: the `docs` module.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use polyglot_protocol::{Codec, Expected, FrameReader, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connection::{read_handshake, ConnError, Connection, Established, Sink};
use crate::error::{StartError, StartFailure};
use crate::events::{EventKind, Events};
use crate::grpc;
use crate::manifest::{Manifest, RestartPolicy, TransportKind};
use crate::process;

/// How long the host waits, after a worker exits, for its last answers still in the pipe
/// to be read before failing the calls left pending.
const DRAIN_OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(1);

/// A worker that stayed up this long has "recovered": its next crash starts the back-off
/// from the beginning again.
const STABLE_UPTIME: Duration = Duration::from_secs(30);

/// The health of one worker slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Starting or restarting: not taking calls yet.
    Starting,
    /// Serving, last health check passed.
    Healthy,
    /// Serving, but its last health check said it is degraded.
    Degraded,
    /// Running but failing health checks: not taking calls.
    Unhealthy,
    /// Waiting to be restarted after a crash.
    Restarting,
    /// Not running and not coming back (restart intensity exhausted, or stopped).
    Stopped,
}

impl InstanceState {
    fn from_u8(v: u8) -> InstanceState {
        match v {
            0 => InstanceState::Starting,
            1 => InstanceState::Healthy,
            2 => InstanceState::Degraded,
            3 => InstanceState::Unhealthy,
            4 => InstanceState::Restarting,
            _ => InstanceState::Stopped,
        }
    }
}

/// One worker slot of a module.
pub(crate) struct Instance {
    pub index: usize,
    conn: ArcSwapOption<Connection>,
    state: AtomicU8,
    pub restarts: AtomicU64,
    pub pid: AtomicU32,
    pub last_error: Mutex<Option<String>>,
    /// Set when its pool is scaled below it: it takes no new calls, finishes those it
    /// has, then stops.
    retired: AtomicBool,
}

impl Instance {
    pub(crate) fn new(index: usize) -> Instance {
        Instance {
            index,
            conn: ArcSwapOption::empty(),
            state: AtomicU8::new(InstanceState::Stopped as u8),
            restarts: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            last_error: Mutex::new(None),
            retired: AtomicBool::new(false),
        }
    }

    /// Marks it retired (no new calls) or back in service.
    pub(crate) fn set_retired(&self, retired: bool) {
        self.retired.store(retired, Ordering::SeqCst);
    }

    /// Marks a slot about to be started.
    pub(crate) fn mark_starting(&self) {
        self.set_state(InstanceState::Starting);
    }

    pub(crate) fn state(&self) -> InstanceState {
        InstanceState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: InstanceState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// The connection, if the worker is up and may take calls.
    pub(crate) fn routable(&self) -> Option<Arc<Connection>> {
        if self.retired.load(Ordering::SeqCst) {
            return None;
        }
        match self.state() {
            InstanceState::Healthy | InstanceState::Degraded => {
                self.conn.load_full().filter(|c| !c.is_closed())
            }
            _ => None,
        }
    }

    /// The connection of a retired worker still finishing its calls: a call routed to
    /// its version just before the version stopped counting it may still go there.
    pub(crate) fn retiring(&self) -> Option<Arc<Connection>> {
        if !self.retired.load(Ordering::SeqCst) {
            return None;
        }
        match self.state() {
            InstanceState::Healthy | InstanceState::Degraded => {
                self.conn.load_full().filter(|c| !c.is_closed())
            }
            _ => None,
        }
    }

    /// The connection, whatever the health (for `$health` itself and for shutdown).
    pub(crate) fn connection(&self) -> Option<Arc<Connection>> {
        self.conn.load_full()
    }

    fn set_error(&self, e: impl Into<String>) {
        *self.last_error.lock().expect("last error lock") = Some(e.into());
    }
}

/// The restart intensity of a module: at most `max_restarts` within `window`.
pub(crate) struct RestartBudget {
    policy: RestartPolicy,
    recent: Mutex<VecDeque<std::time::Instant>>,
}

impl RestartBudget {
    pub(crate) fn new(policy: RestartPolicy) -> RestartBudget {
        RestartBudget {
            policy,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes one restart from the budget; false when the window is exhausted.
    fn take(&self) -> bool {
        let now = std::time::Instant::now();
        let mut r = self.recent.lock().expect("budget lock");
        while r
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            r.pop_front();
        }
        if r.len() as u32 >= self.policy.max_restarts {
            return false;
        }
        r.push_back(now);
        true
    }
}

/// What a supervisor needs from its module.
pub(crate) struct SlotContext {
    pub manifest: Arc<Manifest>,
    /// The module name the worker must announce.
    pub module: String,
    /// How logs and errors name this implementation.
    pub label: String,
    pub instance: Arc<Instance>,
    pub budget: Arc<RestartBudget>,
    /// Set when the module gives up: restart intensity exhausted.
    pub on_failed: Arc<dyn Fn(String) + Send + Sync>,
    /// Notified each time the worker finished starting (handshake) or failed to.
    pub on_started: Arc<dyn Fn(Result<(), StartError>) + Send + Sync>,
    /// Where events go.
    pub events: Events,
}

/// Runs one slot until `stop` turns true: start, serve, restart with back-off.
pub(crate) async fn supervise(cx: SlotContext, mut stop: watch::Receiver<bool>) {
    let policy = cx.manifest.restart;
    let mut backoff = policy.backoff_initial;
    loop {
        if *stop.borrow() {
            break;
        }
        cx.instance.set_state(InstanceState::Starting);
        let started = Instant::now();
        match start(&cx).await {
            Ok(running) => {
                // Routable before anyone hears it started: a waiter that checks the
                // connection right away must find it.
                cx.instance
                    .conn
                    .store(Some(running.established.conn.clone()));
                cx.instance.set_state(InstanceState::Healthy);
                (cx.on_started)(Ok(()));
                let stopped = serve(&cx, running, &mut stop).await;
                if stopped {
                    break;
                }
                if started.elapsed() >= STABLE_UPTIME {
                    backoff = policy.backoff_initial;
                }
            }
            Err(e) => {
                tracing::error!(module = %cx.label, instance = cx.instance.index, "{e}");
                cx.instance.set_error(e.to_string());
                (cx.on_started)(Err(e));
            }
        }
        if *stop.borrow() {
            break;
        }
        // A remote worker is someone else's to restart: reconnect for as long as it takes.
        if cx.manifest.endpoint.is_none() && !cx.budget.take() {
            let last = cx
                .instance
                .last_error
                .lock()
                .expect("last error lock")
                .clone();
            let why = format!(
                "restart intensity exhausted: more than {} restarts within {}s; last error: {}",
                policy.max_restarts,
                policy.window.as_secs(),
                last.as_deref().unwrap_or("none")
            );
            tracing::error!(module = %cx.label, instance = cx.instance.index, "{why}; giving up");
            cx.instance.set_error(why.clone());
            cx.instance.set_state(InstanceState::Stopped);
            (cx.on_failed)(why);
            return;
        }
        cx.instance.set_state(InstanceState::Restarting);
        // Exponential back-off with ±20% jitter, so that instances that crashed together
        // do not restart in lock-step.
        let jitter = 0.8 + fastrand::f64() * 0.4;
        let wait = backoff.mul_f64(jitter);
        tracing::info!(module = %cx.label, instance = cx.instance.index,
            backoff_ms = wait.as_millis() as u64, "restarting worker");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        backoff = (backoff * 2).min(policy.backoff_max);
        cx.instance.restarts.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::worker_restarted(&cx.module);
    }
    cx.instance.set_state(InstanceState::Stopped);
}

struct Running {
    /// The worker process; `None` for a remote worker (`endpoint`).
    spawned: Option<process::Spawned>,
    established: Established,
    _stdin: Option<tokio::process::ChildStdin>,
    _socket_dir: Option<tempfile::TempDir>,
}

async fn start(cx: &SlotContext) -> Result<Running, StartError> {
    let m = &cx.manifest;
    if let Some(endpoint) = &m.endpoint {
        return start_remote(cx, endpoint).await;
    }
    let index = cx.instance.index;
    let fail = |reason: StartFailure, stderr: Vec<String>| StartError {
        module: cx.label.clone(),
        instance: index,
        command: m.program.to_string(),
        reason,
        stderr,
    };
    let (socket_dir, listener) = match m.transport {
        TransportKind::Stdio | TransportKind::Grpc => (None, None),
        TransportKind::Socket => {
            let dir = tempfile::Builder::new()
                .prefix("polyglot-")
                .tempdir()
                .map_err(|e| fail(StartFailure::Socket(e.to_string()), vec![]))?;
            let path = dir.path().join("worker.sock");
            let l = tokio::net::UnixListener::bind(&path).map_err(|e| {
                fail(
                    StartFailure::Socket(format!("cannot listen on {}: {e}", path.display())),
                    vec![],
                )
            })?;
            (Some(dir), Some((l, path)))
        }
    };
    let mut spawned = process::spawn(
        m,
        &cx.module,
        &cx.label,
        index,
        listener.as_ref().map(|(_, p)| p.as_path()),
    )
    .map_err(|e| fail(StartFailure::Spawn(e.to_string()), vec![]))?;
    let pid = spawned.child.id().unwrap_or(0);
    cx.instance.pid.store(pid, Ordering::Relaxed);
    let expected = Expected {
        module: &cx.module,
        codec: m.codec,
        capabilities: &m.capabilities,
    };
    let stdin = take_stdin(&mut spawned);
    let mut stdout = take_stdout(&mut spawned);
    let connect = async {
        match (m.transport, listener) {
            (TransportKind::Socket, Some((l, _))) => {
                // Stdout is free (forwarded to the log); stdin stays open but unused: the
                // worker exits when the host, and so its stdin, goes away.
                process::forward_lines(stdout, &cx.label, index, pid, "stdout", None);
                let (stream, _) = match tokio::time::timeout(m.handshake_timeout, l.accept()).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(StartFailure::Socket(e.to_string())),
                    Err(_) => return Err(StartFailure::NoHandshake(m.handshake_timeout)),
                };
                let (r, w) = stream.into_split();
                let est = Connection::establish(
                    r,
                    Sink::Socket(w),
                    expected,
                    &cx.label,
                    index,
                    m.max_frame,
                    m.handshake_timeout,
                    None,
                )
                .await?;
                Ok((est, Some(stdin)))
            }
            (TransportKind::Grpc, _) => {
                // The handshake on stdout says where the worker listens; the rest of stdout
                // is the worker's own output.
                let mut reader = FrameReader::new(Codec::Json, m.max_frame);
                let announced = read_handshake(
                    &mut stdout,
                    &mut reader,
                    expected,
                    &cx.label,
                    index,
                    m.handshake_timeout,
                )
                .await?;
                let rest = std::io::Cursor::new(reader.pending().to_vec());
                process::forward_lines(
                    tokio::io::AsyncReadExt::chain(rest, stdout),
                    &cx.label,
                    index,
                    pid,
                    "stdout",
                    None,
                );
                let address = match (announced.transport.as_deref(), announced.address) {
                    (Some("grpc"), Some(a)) => a,
                    _ => {
                        return Err(StartFailure::Grpc(
                            "the handshake has no `\"transport\":\"grpc\"` and `address`: \
                             the worker does not serve the gRPC transport (an SDK too old, or \
                             POLYGLOT_TRANSPORT ignored)"
                                .into(),
                        ))
                    }
                };
                let est = grpc_session(cx, &address, expected).await?;
                Ok((est, Some(stdin)))
            }
            _ => {
                let sink = Sink::stdin(stdin).map_err(|e| StartFailure::Io(e.to_string()))?;
                let est = Connection::establish(
                    stdout,
                    sink,
                    expected,
                    &cx.label,
                    index,
                    m.max_frame,
                    m.handshake_timeout,
                    None,
                )
                .await?;
                Ok((est, None))
            }
        }
    };
    let result = tokio::select! {
        r = connect => r,
        status = spawned.child.wait() => Err(StartFailure::Exited(match status {
            Ok(s) => process::describe_exit(&s),
            Err(e) => e.to_string(),
        })),
    };
    match result {
        Ok((established, keep_stdin)) => Ok(Running {
            spawned: Some(spawned),
            established,
            _stdin: keep_stdin,
            _socket_dir: socket_dir,
        }),
        Err(reason) => {
            // Tell an early exit from a hang: a worker whose output closed has most
            // likely exited; collect its status for the report.
            let reason = match reason {
                StartFailure::Io(_) => {
                    match tokio::time::timeout(Duration::from_secs(2), spawned.child.wait()).await {
                        Ok(Ok(s)) => StartFailure::Exited(process::describe_exit(&s)),
                        _ => reason,
                    }
                }
                other => other,
            };
            process::kill_group(&mut spawned.child);
            let _ = spawned.child.wait().await;
            // Let the stderr forwarder read the last lines.
            let _ =
                tokio::time::timeout(Duration::from_millis(500), &mut spawned.stderr_done).await;
            Err(fail(reason, spawned.stderr.lines()))
        }
    }
}

/// Connects to a gRPC worker at `address` and opens its session; the session's handshake
/// is checked like any other.
async fn grpc_session(
    cx: &SlotContext,
    address: &str,
    expected: Expected<'_>,
) -> Result<Established, StartFailure> {
    let m = &cx.manifest;
    let channel = grpc::connect(address, m.handshake_timeout)
        .await
        .map_err(StartFailure::Grpc)?;
    let session = tokio::time::timeout(
        m.handshake_timeout,
        grpc::open_session(channel, m.codec, m.max_frame),
    )
    .await
    .map_err(|_| StartFailure::NoHandshake(m.handshake_timeout))?
    .map_err(StartFailure::Grpc)?;
    Connection::establish(
        session.input,
        session.sink,
        expected,
        &cx.label,
        cx.instance.index,
        m.max_frame,
        m.handshake_timeout,
        Some(session.client),
    )
    .await
}

/// Connects to a remote worker (`endpoint`): no process to start.
async fn start_remote(cx: &SlotContext, endpoint: &str) -> Result<Running, StartError> {
    let m = &cx.manifest;
    let expected = Expected {
        module: &cx.module,
        codec: m.codec,
        capabilities: &m.capabilities,
    };
    cx.instance.pid.store(0, Ordering::Relaxed);
    match grpc_session(cx, endpoint, expected).await {
        Ok(established) => Ok(Running {
            spawned: None,
            established,
            _stdin: None,
            _socket_dir: None,
        }),
        Err(reason) => Err(StartError {
            module: cx.label.clone(),
            instance: cx.instance.index,
            command: format!("endpoint {endpoint}"),
            reason,
            stderr: Vec::new(),
        }),
    }
}

fn take_stdin(s: &mut process::Spawned) -> tokio::process::ChildStdin {
    s.stdin.take().expect("piped stdin, taken once")
}

fn take_stdout(s: &mut process::Spawned) -> tokio::process::ChildStdout {
    s.stdout.take().expect("piped stdout, taken once")
}

/// Serves until the worker ends or `stop`. Returns true when stopped on purpose.
async fn serve(cx: &SlotContext, mut running: Running, stop: &mut watch::Receiver<bool>) -> bool {
    let conn = running.established.conn.clone();
    let index = cx.instance.index;
    let pid = cx.instance.pid.load(Ordering::Relaxed);
    tracing::info!(module = %cx.label, instance = index, pid, version = %conn.handshake().version, "worker ready");
    cx.events.emit(
        &cx.label,
        EventKind::WorkerStarted {
            instance: index,
            pid,
            version: conn.handshake().version.clone(),
        },
    );
    let health = tokio::spawn(health_loop(
        cx.manifest.clone(),
        cx.instance.clone(),
        conn.clone(),
        cx.label.clone(),
        cx.events.clone(),
    ));
    let (stopped, reason) = match running.spawned.as_mut() {
        Some(spawned) => {
            let child = &mut spawned.child;
            tokio::select! {
                status = child.wait() => {
                    let how = match status {
                        Ok(s) => process::describe_exit(&s),
                        Err(e) => e.to_string(),
                    };
                    (false, how)
                }
                why = conn.trouble() => {
                    // Its output ended or it broke the protocol: it cannot be trusted.
                    tracing::warn!(module = %cx.label, instance = index, reason = %why, "stopping worker");
                    process::kill_group(child);
                    let how = match child.wait().await {
                        Ok(s) => process::describe_exit(&s),
                        Err(e) => e.to_string(),
                    };
                    (false, if why == "its output closed" { how } else { format!("{why}; killed ({how})") })
                }
                _ = stop.changed() => {
                    cx.instance.set_state(InstanceState::Stopped);
                    graceful_stop(cx, &conn, child).await;
                    (true, "stopped by the host".to_owned())
                }
            }
        }
        // A remote worker: its session ending, or failing health checks, is its end here;
        // the host never stops the worker itself, only its session.
        None => tokio::select! {
            why = conn.trouble() => (false, format!("connection lost: {why}")),
            _ = stop.changed() => {
                cx.instance.set_state(InstanceState::Stopped);
                (true, "stopped by the host".to_owned())
            }
        },
    };
    health.abort();
    let detail = match running.spawned.as_mut() {
        Some(spawned) => {
            // Answers the worker wrote before it ended are still in the pipe: read them
            // first.
            let _ = tokio::time::timeout(DRAIN_OUTPUT_AFTER_EXIT, &mut running.established.reader)
                .await;
            let _ =
                tokio::time::timeout(Duration::from_millis(200), &mut spawned.stderr_done).await;
            match spawned.stderr.last() {
                Some(line) if !stopped => format!("{reason}; last stderr line: {line}"),
                _ => reason,
            }
        }
        None => {
            // Ending the reader lets the session's stream close once the last caller lets
            // go of the connection.
            running.established.reader.abort();
            reason
        }
    };
    conn.close(&detail);
    cx.instance.conn.store(None);
    running.established.writer.abort();
    if running.spawned.is_some() {
        remove_private_socket(conn.handshake());
    }
    if !stopped {
        tracing::warn!(module = %cx.label, instance = index, reason = %detail, "worker exited");
        cx.instance.set_error(format!("worker exited: {detail}"));
        cx.events.emit(
            &cx.label,
            EventKind::WorkerExited {
                instance: index,
                reason: detail,
            },
        );
    }
    stopped
}

/// Removes the socket a gRPC worker announced, and its private folder, once the worker
/// is gone: one that crashed or was killed cannot clean up after itself. Only a folder
/// the SDKs create (`polyglot-grpc-*`, in the temporary directory) is removed.
fn remove_private_socket(h: &polyglot_protocol::Handshake) {
    let Some(path) = h.address.as_deref().and_then(|a| a.strip_prefix("unix:")) else {
        return;
    };
    let path = std::path::Path::new(path);
    let Some(dir) = path.parent() else { return };
    let private = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("polyglot-grpc-"))
        && dir.parent() == Some(std::env::temp_dir().as_path());
    if private {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_dir(dir);
    }
}

/// `$shutdown`, a grace period to finish and exit, then kill.
async fn graceful_stop(cx: &SlotContext, conn: &Connection, child: &mut tokio::process::Child) {
    conn.notify("$shutdown", Value::Null);
    match tokio::time::timeout(cx.manifest.shutdown_grace, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(module = %cx.label, instance = cx.instance.index,
                grace_ms = cx.manifest.shutdown_grace.as_millis() as u64,
                "worker did not exit within its grace period; killing it");
            process::kill_group(child);
            let _ = child.wait().await;
        }
    }
}

async fn health_loop(
    m: Arc<Manifest>,
    instance: Arc<Instance>,
    conn: Arc<Connection>,
    label: String,
    events: Events,
) {
    let hc = m.health_check;
    let mut failures = 0u32;
    let mut tick = tokio::time::interval_at(Instant::now() + hc.interval, hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let deadline = Instant::now() + hc.timeout;
        let result = conn.call("$health", &Value::Null, deadline, None).await;
        let was = instance.state();
        let (state, error) = match result {
            Ok((v, _)) => match v.get("status").and_then(Value::as_str) {
                Some("degraded") => {
                    let why = v.get("reason").map(|r| r.to_string()).unwrap_or_default();
                    (InstanceState::Degraded, Some(format!("degraded: {why}")))
                }
                _ => (InstanceState::Healthy, None),
            },
            Err(ConnError::Timeout) => (
                InstanceState::Unhealthy,
                Some(format!(
                    "health check timed out after {}ms",
                    hc.timeout.as_millis()
                )),
            ),
            Err(ConnError::Remote(e)) => (
                InstanceState::Unhealthy,
                Some(format!("health check failed: {e}")),
            ),
            Err(ConnError::Closed(_)) => return,
            Err(ConnError::TooLarge(..)) => (
                InstanceState::Unhealthy,
                Some("health answer too large".into()),
            ),
            Err(ConnError::Overloaded) => (
                InstanceState::Unhealthy,
                Some("health check refused: overloaded".into()),
            ),
        };
        if state == InstanceState::Unhealthy {
            failures += 1;
        } else {
            failures = 0;
        }
        if was != state {
            tracing::info!(module = %label, instance = instance.index, from = ?was, to = ?state, "health changed");
            events.emit(
                &label,
                EventKind::HealthChanged {
                    instance: instance.index,
                    from: was,
                    to: state,
                },
            );
        }
        if let Some(e) = &error {
            instance.set_error(e.clone());
        }
        instance.set_state(state);
        if failures >= hc.unhealthy_threshold {
            // Restart it: the supervisor sees the trouble and kills the worker.
            conn.report_trouble(format!(
                "unhealthy: {failures} failed health checks in a row"
            ));
            return;
        }
    }
}
