//! Starting a worker process: its command line and its clean environment, its resource
//! limits, its own process group, death with the host, and its stderr forwarded to the
//! host's log with a tail kept for error reports.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use polyglot_protocol::{env, PROTOCOL_VERSION};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::manifest::{Manifest, ResourceLimits};

/// How many of a worker's last stderr lines are kept for error reports: enough for a
/// stack trace's last frames and the error line, short enough to read in a log.
pub const STDERR_TAIL_LINES: usize = 20;

/// The variables of the host's environment every worker gets (those the host has). A
/// worker gets nothing else of it: the host's environment holds its own settings and
/// secrets (`POLYGLOT_API_KEY`, cloud credentials, tokens), and a module is code the host
/// runs, not code it trusts with those. Beyond these, a worker has its manifest's `env`,
/// the host variables its `inheritEnv` names, and the protocol's `POLYGLOT_*` variables.
/// Each one is here because common toolchains misbehave without it:
///
/// - `PATH`: finds the worker's interpreter (`python3`, `node`) and the programs a
///   worker runs itself.
/// - `HOME`: where toolchains keep per-user configuration and caches (Python's user
///   site-packages, Go's `os.UserCacheDir`, `~/.cache` of model and package caches);
///   without it some fail at start and others write into `/`.
/// - `LANG`, `LC_ALL`, `LC_CTYPE`: the character encoding of text I/O (Python's default
///   file encoding, C++ iostreams, `wcs*` functions), so a worker reads and writes text
///   as the host does. The other `LC_*` categories only format dates and numbers for
///   people; `inheritEnv` passes them when wanted.
/// - `TMPDIR`: where temporary files go; an operator who moved it off a small `/tmp` (or
///   a sandbox that gives each user their own) means it for workers too, and the C++
///   SDK's gRPC transport puts its socket there.
/// - `TZ`: the time zone, so that a worker's local times and logs agree with the host's.
pub const WORKER_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ"];

/// A worker that catches or ignores `SIGXCPU` at its CPU time limit (`limits.cpuSeconds`)
/// is killed with `SIGKILL` this many CPU seconds later: time to log and exit on its own,
/// short enough that a runaway loop that ignores the signal does not run on.
pub const CPU_LIMIT_GRACE_SECS: u64 = 5;

/// A worker's environment from the host's variables (`host` looks one up): the
/// [`WORKER_ENV`] ones and those the manifest's `inheritEnv` names, when the host has
/// them, then the manifest's `env`, which wins over both. (The protocol's `POLYGLOT_*`
/// variables are added by [`spawn`].)
pub(crate) fn worker_env(
    m: &Manifest,
    host: impl Fn(&str) -> Option<OsString>,
) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = WORKER_ENV
        .iter()
        .copied()
        .chain(m.inherit_env.iter().map(String::as_str))
        .filter(|k| !m.env.contains_key(*k))
        .filter_map(|k| host(k).map(|v| (OsString::from(k), v)))
        .collect();
    vars.extend(
        m.env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    vars
}

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
        // Nothing of the host's environment but what `worker_env` lets through.
        .env_clear()
        .envs(worker_env(m, |k| std::env::var_os(k)))
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
    no_inherited_fds(&mut cmd);
    if !m.limits.is_empty() {
        set_limits(&mut cmd, &m.limits, label);
    }
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
    // In the caller's span: the worker's module, version and instance.
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "polyglot::worker", module = %module, instance, pid, stream = name, "{line}");
            if let Some(t) = &tail {
                t.push(line);
            }
        }
    }))
}

/// Keeps the host's other descriptors out of the worker: a descriptor the host inherited
/// without close-on-exec (from the shell or the service manager that started it, or
/// opened by a library it links) would otherwise pass to every worker, keeping a pipe or
/// a socket open for as long as any worker lives. Only stdin, stdout and stderr go
/// through. Best effort: `close_range` with `CLOSE_RANGE_CLOEXEC` needs Linux 5.11.
#[allow(unsafe_code)]
fn no_inherited_fds(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the closure runs in the forked child before exec and makes one system
        // call, which is async-signal-safe; it touches no locks or allocations. Marking
        // descriptors close-on-exec, rather than closing them, leaves the one the
        // standard library uses to report a failed exec working until the exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
    }
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

/// The type `setrlimit` takes its resource as (glibc declares an enum of its own).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Sets `limits` in the child before it runs its program. The values are worked out
/// here, in the host, so that the child only makes the `setrlimit` calls.
#[allow(unsafe_code)]
fn set_limits(cmd: &mut Command, limits: &ResourceLimits, label: &str) {
    let mut set: [Option<(Resource, libc::rlimit)>; 4] = [None; 4];
    if let Some(bytes) = limits.memory_bytes {
        set[0] = Some(rlimit(libc::RLIMIT_DATA, bytes, bytes, label, "memoryMb"));
    }
    if let Some(secs) = limits.cpu_seconds {
        let hard = secs.saturating_add(CPU_LIMIT_GRACE_SECS);
        set[1] = Some(rlimit(libc::RLIMIT_CPU, secs, hard, label, "cpuSeconds"));
        // `SIGXCPU`'s default action dumps core: a worker stopped at its budget is not a
        // crash to debug, and a core file the size of its memory would land in the module
        // folder (where `serve --watch` would take it for an edit). The hard limit stays.
        set[2] = Some(rlimit(libc::RLIMIT_CORE, 0, u64::MAX, label, "cpuSeconds"));
    }
    if let Some(n) = limits.open_files {
        set[3] = Some(rlimit(libc::RLIMIT_NOFILE, n, n, label, "openFiles"));
    }
    // SAFETY: the closure runs in the forked child before exec and calls only setrlimit,
    // a plain system call, on values copied into it; it takes no locks and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, limit) in set.iter().flatten() {
                if libc::setrlimit(*resource, limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `resource` limited to `soft` and `hard`, neither above the host's own hard limit
/// (which an unprivileged process cannot raise): when that one is lower, the worker gets
/// it, and the log says so.
#[allow(unsafe_code)]
fn rlimit(
    resource: Resource,
    soft: u64,
    hard: u64,
    label: &str,
    field: &str,
) -> (Resource, libc::rlimit) {
    let mut host = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit writes the limits of this process into the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut host) } != 0 {
        host.rlim_max = libc::RLIM_INFINITY;
    }
    let max = hard.min(host.rlim_max);
    if soft > max && soft != 0 {
        tracing::warn!(module = %label, field, wanted = soft, host_limit = max,
            "the host's own hard limit is lower than the manifest's; the worker gets the host's");
    }
    (
        resource,
        libc::rlimit {
            rlim_cur: soft.min(max),
            rlim_max: max,
        },
    )
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
                libc::SIGXCPU => " (SIGXCPU: its CPU time limit, limits.cpuSeconds, was used up)",
                libc::SIGXFSZ => " (SIGXFSZ: file size limit)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGILL => " (SIGILL)",
                libc::SIGFPE => " (SIGFPE)",
                libc::SIGPIPE => " (SIGPIPE)",
                libc::SIGQUIT => " (SIGQUIT)",
                libc::SIGHUP => " (SIGHUP)",
                _ => "",
            };
            format!("signal {sig}{name}")
        }
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;

    use super::*;

    fn manifest(extra: &str) -> Manifest {
        let text =
            format!(r#"{{"name":"m","language":"python","version":"1","path":"w.py"{extra}}}"#);
        Manifest::parse(&text, Path::new("/m"), Path::new("/m/module.json")).unwrap()
    }

    fn host(k: &str) -> Option<OsString> {
        let v = match k {
            "PATH" => "/usr/bin:/bin",
            "HOME" => "/home/op",
            "POLYGLOT_API_KEY" => "secret",
            "AWS_SECRET_ACCESS_KEY" => "secret",
            "AWS_REGION" => "eu-west-1",
            "LANG" => "C.UTF-8",
            _ => return None,
        };
        Some(v.into())
    }

    fn names(vars: &[(OsString, OsString)]) -> Vec<&str> {
        vars.iter().map(|(k, _)| k.to_str().unwrap()).collect()
    }

    #[test]
    fn a_worker_gets_the_allowlist_and_its_manifest_env_only() {
        let vars = worker_env(&manifest(r#","env":{"MODE":"fast"}"#), host);
        assert_eq!(names(&vars), ["PATH", "HOME", "LANG", "MODE"]);
        let vars = worker_env(&manifest(r#","inheritEnv":["AWS_REGION","ABSENT"]"#), host);
        assert_eq!(names(&vars), ["PATH", "HOME", "LANG", "AWS_REGION"]);
    }

    #[test]
    fn the_manifest_env_wins_over_the_host() {
        let vars = worker_env(&manifest(r#","env":{"HOME":"/srv/m"}"#), host);
        assert_eq!(
            vars.iter().filter(|(k, _)| k == "HOME").collect::<Vec<_>>(),
            [&(OsString::from("HOME"), OsString::from("/srv/m"))]
        );
    }

    #[test]
    fn exits_name_their_signal() {
        // A raw wait status of a process killed by signal n is n.
        let by = |sig: i32| describe_exit(&ExitStatus::from_raw(sig));
        assert_eq!(by(libc::SIGKILL), "signal 9 (SIGKILL)");
        assert!(
            by(libc::SIGXCPU).contains("SIGXCPU"),
            "{}",
            by(libc::SIGXCPU)
        );
        assert!(by(libc::SIGXCPU).contains("CPU time limit"));
        assert_eq!(
            describe_exit(&ExitStatus::from_raw(3 << 8)),
            "exit status 3"
        );
    }
}
