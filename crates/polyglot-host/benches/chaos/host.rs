//! The fixture: the release builds, the module folders a user would write for a module
//! they expect to crash (a primary served by four Rust workers, a Python fallback, and a
//! second version of the primary to deploy), and a `polyglot-host serve` process on free
//! loopback ports.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use serde_json::json;
use tonic::transport::Channel;

use crate::probe;

/// The module under load and under attack.
pub const PRIMARY: &str = "chaos";
/// Its fallback, another implementation of the same methods in another language.
pub const FALLBACK: &str = "chaos-py";
/// Worker processes of the primary. Four workers of 16 calls each (the test worker's
/// default concurrency) hold the 64 calls the load keeps in flight.
pub const PRIMARY_INSTANCES: usize = 4;
/// Worker processes of the fallback: two, so that it is not one process either.
pub const FALLBACK_INSTANCES: usize = 2;
/// How long the modules may take to come up (four Rust workers and a CPython start on a
/// shared two-core machine take about a second).
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long the host may take to stop once told (SIGTERM): its `--drain-timeout` (5 s)
/// and the workers' `shutdownGraceMs` (2 s), with room to spare.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The shared target directory.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// Builds the release host and the release Rust test worker (a no-op when up to date).
pub fn build() -> anyhow::Result<()> {
    for (what, a) in [
        (
            "the Rust test worker",
            &["--example", "test_worker", "-p", "polyglot-worker"][..],
        ),
        (
            "polyglot-host",
            &["--bin", "polyglot-host", "-p", "polyglot-host"][..],
        ),
    ] {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet"])
            .args(a)
            .current_dir(repo())
            .status()
            .with_context(|| format!("running cargo to build {what}"))?;
        if !ok.success() {
            bail!("building {what} failed");
        }
    }
    Ok(())
}

/// The Python for the fallback worker: `POLYGLOT_TEST_PYTHON`, else the project's venv,
/// else `python3` (as the tests choose it).
fn python() -> String {
    if let Ok(p) = std::env::var("POLYGLOT_TEST_PYTHON") {
        return p;
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        return venv.display().to_string();
    }
    "python3".into()
}

/// The primary's manifest: what a user who knows their worker may crash or hang writes.
fn primary(version: &str, with_fallback: bool, codec: &str) -> serde_json::Value {
    let mut m = json!({
        "name": PRIMARY,
        "language": "rust",
        "version": version,
        "description": "the Rust test worker, under fault injection",
        "command": target().join("release/examples/test_worker").display().to_string(),
        "codec": codec,
        "instances": PRIMARY_INSTANCES,
        "timeoutMs": 2000,
        // Reading and adding numbers can run twice without harm.
        "idempotent": ["echo", "add"],
        // An attempt stuck on a hung worker is given up after 500 ms and retried on
        // another; three attempts fit in the 2 s deadline.
        "retry": {"maxAttempts": 3, "backoffInitialMs": 20, "backoffMaxMs": 200,
                  "attemptTimeoutMs": 500},
        // A hung worker stops taking calls at its first missed check (within 1 s) and is
        // killed and restarted at the second.
        "healthCheck": {"intervalMs": 1000, "timeoutMs": 500, "unhealthyThreshold": 2},
        // Crashes are expected: 200 restarts a minute before the module gives up (the
        // schedule kills about 2 a second), back-off from 50 ms to 1 s.
        "restart": {"maxRestarts": 200, "windowMs": 60000, "backoffInitialMs": 50,
                    "backoffMaxMs": 1000},
        "shutdownGraceMs": 2000,
    });
    if with_fallback {
        m["fallback"] = json!([FALLBACK]);
    }
    m
}

/// The fallback's manifest: the Python test worker, offering only the methods the
/// primary's callers use (so that no fault call ever reaches it).
fn fallback() -> serde_json::Value {
    json!({
        "name": FALLBACK,
        "language": "python",
        "version": "1.0.0",
        "command": python(),
        "args": [repo().join("tests/workers/python_worker.py").display().to_string()],
        "env": {"PYTHONPATH": repo().join("python").display().to_string(),
                "PYTHONUNBUFFERED": "1"},
        "capabilities": ["echo", "add"],
        "instances": FALLBACK_INSTANCES,
        "timeoutMs": 2000,
        "shutdownGraceMs": 2000,
    })
}

/// A modules folder (the primary 1.0.0, and its fallback when wanted) and a release
/// folder holding the primary 2.0.0 to deploy, in one temporary directory.
pub struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    /// Writes the folders; `codec` is the primary's (`json` or `msgpack`).
    ///
    /// # Errors
    /// The temporary directory cannot be written.
    pub fn new(with_fallback: bool, codec: &str) -> anyhow::Result<Fixture> {
        let root = tempfile::Builder::new()
            .prefix("polyglot-chaos-")
            .tempdir()?;
        let write = |dir: PathBuf, m: serde_json::Value| -> anyhow::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("module.json"), serde_json::to_string_pretty(&m)?)?;
            Ok(())
        };
        write(
            root.path().join("modules").join(PRIMARY),
            primary("1.0.0", with_fallback, codec),
        )?;
        if with_fallback {
            write(root.path().join("modules").join(FALLBACK), fallback())?;
        }
        write(
            root.path().join("releases").join(PRIMARY),
            primary("2.0.0", with_fallback, codec),
        )?;
        Ok(Fixture { root })
    }

    /// The modules folder the host serves.
    pub fn modules(&self) -> PathBuf {
        self.root.path().join("modules")
    }

    /// The folder of the version to deploy.
    pub fn release(&self) -> PathBuf {
        self.root.path().join("releases").join(PRIMARY)
    }

    /// Where the host runs (so that no `polyglot.toml` of the caller's is read).
    fn dir(&self) -> &Path {
        self.root.path()
    }
}

/// A running `polyglot-host serve`; killed if dropped before [`Host::stop`].
pub struct Host {
    child: Option<Child>,
    /// Its process id.
    pub pid: u32,
    /// The gRPC API, `http://ADDR`.
    pub url: String,
    /// The HTTP endpoints, `ADDR`.
    pub http: String,
    /// Its log (stderr), kept after the run.
    pub log: PathBuf,
}

/// How a host ended.
pub struct Exit {
    /// Its exit status, as the shell says it.
    pub status: String,
    /// From SIGTERM to its exit.
    pub took: Duration,
    /// Worker processes still running after it exited (must be none).
    pub orphans: Vec<u32>,
}

impl Host {
    /// Starts the host on `fixture`'s modules, its log going to `log`, and waits until it
    /// serves (its modules loaded).
    ///
    /// # Errors
    /// It cannot be started, or exits before it prints its address.
    pub fn start(fixture: &Fixture, log: &Path) -> anyhow::Result<Host> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let stderr = std::fs::File::create(log)
            .with_context(|| format!("creating the host's log {}", log.display()))?;
        let mut child = Command::new(target().join("release/polyglot-host"))
            .arg("--modules")
            .arg(fixture.modules())
            .args(["--drain-timeout", "5s", "serve"])
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            // Deployments judged as by default (20 calls, 5% errors), stepped every 200 ms
            // rather than every second so a canary stage ends on time.
            .args(["--deploy-tick", "200ms"])
            .current_dir(fixture.dir())
            .env_remove("POLYGLOT_CONFIG")
            // A log file, not a terminal.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting polyglot-host")?;
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let (mut url, mut http) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line?;
            if let Some(addr) = line.strip_prefix("gRPC API on ") {
                url = format!("http://{addr}");
            }
            if let Some(rest) = line.strip_prefix("HTTP on ") {
                http = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            if line.contains("Ctrl-C") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let host = Host {
            child: Some(child),
            pid,
            url,
            http,
            log: log.to_owned(),
        };
        if host.url.is_empty() {
            bail!(
                "the host exited before serving; its log: {}",
                host.log.display()
            );
        }
        Ok(host)
    }

    /// Waits until every worker of the primary (and of the fallback) is healthy.
    ///
    /// # Errors
    /// They are not within [`READY_WITHIN`].
    pub async fn wait_ready(
        &self,
        c: &mut RuntimeClient<Channel>,
        with_fallback: bool,
    ) -> anyhow::Result<()> {
        let t = Instant::now();
        loop {
            let modules = c
                .list_modules(pb::ListModulesRequest {})
                .await?
                .into_inner();
            let healthy = |name: &str, n: usize| {
                modules.modules.iter().any(|m| {
                    m.name == name
                        && m.instances.len() == n
                        && m.instances.iter().all(|i| i.state == "healthy")
                })
            };
            if healthy(PRIMARY, PRIMARY_INSTANCES)
                && (!with_fallback || healthy(FALLBACK, FALLBACK_INSTANCES))
            {
                return Ok(());
            }
            if t.elapsed() > READY_WITHIN {
                bail!(
                    "the modules were not healthy within {READY_WITHIN:?}: {:?}; log: {}",
                    modules.modules,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The gRPC API's channel.
    ///
    /// # Errors
    /// It cannot be reached.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.url.clone())?.connect().await?)
    }

    /// `GET /metrics`, as text.
    ///
    /// # Errors
    /// The HTTP endpoint cannot be reached.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let mut s = std::net::TcpStream::connect(&self.http)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.http
        )?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    }

    /// Stops the host as an orchestrator would (SIGTERM), waits for it, and looks for
    /// worker processes it left behind (`workers`: every worker pid it announced).
    ///
    /// # Errors
    /// It cannot be waited for.
    pub fn stop(mut self, workers: &[u32]) -> anyhow::Result<Exit> {
        let mut child = self.child.take().expect("stopped once");
        let t = Instant::now();
        if let Err(e) = probe::signal(self.pid, libc::SIGTERM) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.into());
        }
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s.to_string();
            }
            if t.elapsed() > STOP_WITHIN {
                let _ = child.kill();
                break format!("{} (killed: no exit within {STOP_WITHIN:?})", child.wait()?);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = t.elapsed();
        // Workers die with their stdin (and their parent-death signal): give them a moment.
        std::thread::sleep(Duration::from_millis(500));
        let orphans = workers
            .iter()
            .copied()
            .filter(|&pid| probe::is_worker(pid))
            .collect();
        Ok(Exit {
            status,
            took,
            orphans,
        })
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
