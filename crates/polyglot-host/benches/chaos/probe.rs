//! What the host's process looks like from outside: its resident memory, its open file
//! descriptors (told apart: the pipes it shares with live workers, and its own), its
//! worker processes; sampled on a clock. And signals to processes, after checking they
//! are the host's workers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One look at the host.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the phase started.
    pub t: Duration,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Those that are not a pipe to a live worker: sockets, epoll, eventfds, files, and any
    /// pipe to a worker that is gone (a leak).
    pub own_fds: usize,
    /// Live worker processes (children that are not zombies).
    pub workers: usize,
    /// Children exited and not reaped.
    pub zombies: usize,
    /// Calls answered so far by the load.
    pub calls: u64,
}

/// Sends `sig` to `pid`.
///
/// # Errors
/// `kill` fails (no such process, not ours).
#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill takes plain integers and touches no memory.
    let r = unsafe { libc::kill(pid as i32, sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A process's parent and state letter, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let mut rest = s.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` runs one of the bench's worker programs (the Rust or Python test worker)
/// and is not a zombie: a recycled pid runs something else.
pub fn is_worker(pid: u32) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmd = String::from_utf8_lossy(&cmd);
    (cmd.contains("test_worker") || cmd.contains("python_worker.py"))
        && stat(pid).is_some_and(|(_, s)| s != 'Z')
}

/// Whether `pid` is a live worker process of the host `host` (its child, running a worker
/// program), so that a signal to it hits what it is meant to (`PITFALLS.md` item 1: check
/// a pid you did not just spawn is still the one you mean).
pub fn is_worker_of(pid: u32, host: u32) -> bool {
    stat(pid).is_some_and(|(ppid, _)| ppid == host) && is_worker(pid)
}

/// Whether `pid` is stopped (SIGSTOP), and still a worker of `host`.
pub fn is_stopped_worker_of(pid: u32, host: u32) -> bool {
    stat(pid).is_some_and(|(ppid, s)| ppid == host && s == 'T') && is_worker(pid)
}

/// The children of `host`: live ones and zombies.
pub fn children(host: u32) -> (Vec<u32>, usize) {
    let (mut live, mut zombies) = (Vec::new(), 0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (live, zombies);
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, state)) = stat(pid) {
            if ppid == host {
                if state == 'Z' {
                    zombies += 1;
                } else {
                    live.push(pid);
                }
            }
        }
    }
    (live, zombies)
}

/// Where each open descriptor of `pid` points (`pipe:[123]`, `socket:[456]`, a path).
fn fd_targets(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// `VmRSS` of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Looks at the host now.
pub fn sample(host: u32, t: Duration, calls: u64) -> Sample {
    let (workers, zombies) = children(host);
    let shared: HashSet<String> = workers
        .iter()
        .flat_map(|&w| fd_targets(w))
        .filter(|t| t.starts_with("pipe:"))
        .collect();
    let fds = fd_targets(host);
    let own_fds = fds.iter().filter(|t| !shared.contains(*t)).count();
    Sample {
        t,
        rss_kib: rss_kib(host),
        fds: fds.len(),
        own_fds,
        workers: workers.len(),
        zombies,
        calls,
    }
}

/// Samples the host on a thread of its own every `period` until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `host` now; `calls` is the load's count of answered calls. With
    /// `live`, each sample is printed as it is taken.
    pub fn start(host: u32, period: Duration, calls: Arc<AtomicU64>, live: bool) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut next = t0;
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    let x = sample(host, now - t0, calls.load(Ordering::Relaxed));
                    if live {
                        let prev = out.lock().expect("samples").last().copied();
                        crate::report::print_sample(&x, prev.as_ref());
                    }
                    out.lock().expect("samples").push(x);
                    next += period;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops it; returns the samples.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().expect("samples"))
    }
}
