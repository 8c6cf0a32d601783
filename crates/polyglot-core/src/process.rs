//! Starting a worker process: its command line and environment, its own process group,
//! death with the host, and its stderr forwarded to the host's log with a tail kept for
//! error reports.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use polyglot_protocol::{env, PROTOCOL_VERSION};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::manifest::Manifest;

/// How many of a worker's last stderr lines are kept for error reports: enough for a
/// stack trace's last frames and the error line, short enough to read in a log.
pub const STDERR_TAIL_LINES: usize = 20;

/// The last lines a worker wrote to stderr.
#[derive(Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut t = self.0.lock().expect("stderr tail lock");
        if t.len() == STDERR_TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("stderr tail lock")
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn last(&self) -> Option<String> {
        self.0.lock().expect("stderr tail lock").back().cloned()
    }
}

pub(crate) struct Spawned {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: StderrTail,
    pub stderr_done: tokio::task::JoinHandle<()>,
}

/// Starts one worker of `m`. `module` is the name it must serve (the manifest's, also for
/// a fallback file), `label` is how logs name it.
pub(crate) fn spawn(
    m: &Manifest,
    module: &str,
    label: &str,
    instance: usize,
    socket: Option<&std::path::Path>,
) -> std::io::Result<Spawned> {
    let mut cmd = Command::new(&m.program.command);
    cmd.args(&m.program.args)
        .current_dir(&m.dir)
        .envs(&m.env)
        .env(env::PROTOCOL, PROTOCOL_VERSION.to_string())
        .env(env::MODULE, module)
        .env(env::VERSION, &m.version)
        .env(env::CODEC, m.codec.as_str())
        .env(env::TRANSPORT, m.transport.as_str())
        .env(env::MAX_FRAME, m.max_frame.to_string())
        .env(env::INSTANCE, instance.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a signal to the host's group (Ctrl-C in a terminal) does
        // not reach workers directly; the host stops them in order.
        .process_group(0);
    if let Some(path) = socket {
        cmd.env(env::SOCKET, path);
    }
    die_with_host(&mut cmd);
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take().expect("piped stderr");
    let tail = StderrTail::default();
    let pid = child.id().unwrap_or(0);
    let stderr_done = forward_lines(stderr, label, instance, pid, "stderr", Some(tail.clone()));
    Ok(Spawned {
        child,
        stdin,
        stdout,
        stderr: tail,
        stderr_done,
    })
}

/// Forwards every line a worker writes on one of its streams to the host's log, tagged with
/// the module, instance, pid and stream; keeps the last lines in `tail` if given.
pub(crate) fn forward_lines<R>(
    stream: R,
    label: &str,
    instance: usize,
    pid: u32,
    name: &'static str,
    tail: Option<StderrTail>,
) -> tokio::task::JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let module = label.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "polyglot::worker", module = %module, instance, pid, stream = name, "{line}");
            if let Some(t) = &tail {
                t.push(line);
            }
        }
    })
}

/// Arms a parent-death signal in the child, so that a worker dies with the host even when
/// the host is killed with SIGKILL and cannot clean up.
#[allow(unsafe_code)]
fn die_with_host(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let host = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid); it touches no locks or allocations.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The host may have died between fork and prctl.
                if libc::getppid() != host {
                    return Err(std::io::Error::other(
                        "the host exited while starting the worker",
                    ));
                }
                Ok(())
            });
        }
    }
}

/// Kills a worker's whole process group (the worker and anything it started). Only
/// called on a child not yet reaped, so its pid (the group id) cannot have been reused.
#[allow(unsafe_code)]
pub(crate) fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill takes plain integers; a negative pid names the process group, which
        // is this child's own (process_group(0)) and still exists while it is unreaped.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
}

/// Describes how a worker ended, for error messages: "exit status 3", "signal 9 (SIGKILL)".
pub(crate) fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGINT => " (SIGINT)",
                _ => "",
            };
            format!("signal {sig}{name}")
        }
        None => status.to_string(),
    }
}
