//! The faults: what is done to the primary's workers and when, chosen by a seeded
//! generator so that a run's schedule can be repeated (`--seed`). SIGKILL of a random
//! worker every ~500 ms; a worker stopped (SIGSTOP) for a while, then continued; a burst
//! of `garbage` calls, each making a worker write a non-protocol line on its stdout; and
//! a canary deployment of a new version through the gRPC `Deploy`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::host::PRIMARY;
use crate::load;
use crate::probe;

/// How long a hung worker stays stopped before it is sent SIGCONT (if the host has not
/// replaced it by then: its health checks should have, within about 2 s).
const HANG_FOR: Duration = Duration::from_secs(3);
/// `garbage` calls in a flood, and the time between them.
const GARBAGE_CALLS: u32 = 16;
const GARBAGE_EVERY: Duration = Duration::from_millis(250);
/// The deadline of one `garbage` call: the worker answers at once, or dies.
const GARBAGE_DEADLINE: Duration = Duration::from_secs(1);
/// The canary: the new version's share at each stage, and how long each stage lasts (at
/// thousands of calls a second, far more than the 20 calls a verdict needs).
const CANARY_PERCENTS: [u32; 3] = [25, 50, 100];
const CANARY_STAGE: Duration = Duration::from_millis(1500);
/// How long a canary stage may wait for a passing verdict before it is rolled back.
const CANARY_STAGE_DEADLINE: Duration = Duration::from_secs(10);
/// How long after the end of the load the bench still waits for a deployment to end.
const DEPLOY_GRACE: Duration = Duration::from_secs(15);

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state, one addition and two
/// multiply-xorshifts per number; plenty for choosing victims, and the same sequence for
/// the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; `stream` gives each fault its own sequence, so that one
    /// fault's choices do not depend on how often another one drew.
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A duration between `lo` and `hi` ms.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo + 1))
    }
}

/// When each fault happens, from the start of the load.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The first kill.
    pub kill_from: Duration,
    /// The time between kills, drawn between these bounds (ms).
    pub kill_every: (u64, u64),
    /// When a worker is stopped (each for [`HANG_FOR`]).
    pub hangs: Vec<Duration>,
    /// When a `garbage` flood starts.
    pub garbage: Option<Duration>,
    /// When the new version is deployed.
    pub deploy: Option<Duration>,
}

impl Schedule {
    /// Every fault, in a run of `duration` whose first `warmup` is left alone: kills
    /// every 400-600 ms, hangs at 20% and 65%, a flood at 30%, a deployment at 35% (none
    /// before the end of the warm-up).
    pub fn chaos(duration: Duration, warmup: Duration) -> Schedule {
        let at = |share: f64| duration.mul_f64(share).max(warmup);
        Schedule {
            kill_from: warmup,
            kill_every: (400, 600),
            hangs: vec![at(0.20), at(0.65)],
            garbage: Some(at(0.30)),
            deploy: Some(at(0.35)),
        }
    }

    /// The soak's occasional kill: one every 30 s, 5 s after a sample (taken every 10 s),
    /// so that each sample sees every worker back.
    pub fn soak() -> Schedule {
        Schedule {
            kill_from: Duration::from_secs(35),
            kill_every: (30_000, 30_000),
            hangs: Vec::new(),
            garbage: None,
            deploy: None,
        }
    }
}

/// What was done, and how it went.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Workers sent SIGKILL.
    pub kills: u64,
    /// Kill times at which no worker of the primary was up to be killed.
    pub kill_misses: u64,
    /// How each hang ended.
    pub hangs: Vec<String>,
    /// `garbage` calls made, and how they ended (by kind; `ok` if answered).
    pub garbage: BTreeMap<String, u64>,
    /// The deployment's outcome.
    pub deployment: Option<String>,
    /// The deployment's events, in order.
    pub deploy_events: Vec<String>,
    /// Fault calls (garbage, deploy) that did not end within their deadline + margin.
    pub hung: u64,
    /// When the flood started and Deploy was called, since the start of the load.
    pub garbage_at: Option<Duration>,
    pub deploy_at: Option<Duration>,
}

/// What the faults need.
#[derive(Clone)]
pub struct Ctx {
    pub client: RuntimeClient<Channel>,
    pub host_pid: u32,
    pub t0: Instant,
    /// The end of the load.
    pub end: Instant,
    pub seed: u64,
    /// The folder of the version to deploy.
    pub release: PathBuf,
}

/// Runs `schedule` against the host until the end of the load (and a deployment until it
/// ends); returns what happened.
pub async fn run(cx: Ctx, schedule: Schedule) -> Faults {
    let out = Arc::new(Mutex::new(Faults::default()));
    // Stopped workers are not killed by the killer: a hang must stay a hang.
    let stopped = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = vec![tokio::spawn(kill_loop(
        cx.clone(),
        schedule.clone(),
        out.clone(),
        stopped.clone(),
    ))];
    for (i, at) in schedule.hangs.iter().enumerate() {
        tasks.push(tokio::spawn(hang(
            cx.clone(),
            *at,
            i as u64,
            out.clone(),
            stopped.clone(),
        )));
    }
    if let Some(at) = schedule.garbage {
        tasks.push(tokio::spawn(garbage(cx.clone(), at, out.clone())));
    }
    if let Some(at) = schedule.deploy {
        tasks.push(tokio::spawn(deploy(cx.clone(), at, out.clone())));
    }
    for t in tasks {
        t.await.expect("a fault task");
    }
    let f = out.lock().expect("faults").clone();
    f
}

/// The primary's worker processes now (of its active version), that are the host's.
async fn workers(c: &mut RuntimeClient<Channel>, host: u32) -> Vec<u32> {
    let Ok(m) = c
        .get_module(pb::GetModuleRequest {
            module: PRIMARY.into(),
        })
        .await
    else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = m
        .into_inner()
        .instances
        .iter()
        .map(|i| i.pid)
        .filter(|&p| p != 0 && probe::is_worker_of(p, host))
        .collect();
    pids.sort_unstable();
    pids
}

async fn kill_loop(
    mut cx: Ctx,
    s: Schedule,
    out: Arc<Mutex<Faults>>,
    stopped: Arc<Mutex<HashSet<u32>>>,
) {
    let mut rng = Rng::new(cx.seed, 1);
    let mut at = cx.t0 + s.kill_from;
    while at < cx.end {
        tokio::time::sleep_until(at).await;
        let hung = stopped.lock().expect("stopped").clone();
        let pids: Vec<u32> = workers(&mut cx.client, cx.host_pid)
            .await
            .into_iter()
            .filter(|p| !hung.contains(p))
            .collect();
        if pids.is_empty() {
            out.lock().expect("faults").kill_misses += 1;
        } else {
            let pid = pids[rng.below(pids.len())];
            // Checked again just before the signal: a pid seen a moment ago may be gone.
            if probe::is_worker_of(pid, cx.host_pid) && probe::signal(pid, libc::SIGKILL).is_ok() {
                out.lock().expect("faults").kills += 1;
            } else {
                out.lock().expect("faults").kill_misses += 1;
            }
        }
        at += rng.millis(s.kill_every.0, s.kill_every.1);
    }
}

async fn hang(
    mut cx: Ctx,
    at: Duration,
    n: u64,
    out: Arc<Mutex<Faults>>,
    stopped: Arc<Mutex<HashSet<u32>>>,
) {
    let mut rng = Rng::new(cx.seed, 10 + n);
    tokio::time::sleep_until(cx.t0 + at).await;
    let pids = workers(&mut cx.client, cx.host_pid).await;
    if pids.is_empty() {
        out.lock()
            .expect("faults")
            .hangs
            .push(format!("at {:.1}s: no worker up to stop", at.as_secs_f64()));
        return;
    }
    let pid = pids[rng.below(pids.len())];
    stopped.lock().expect("stopped").insert(pid);
    if !probe::is_worker_of(pid, cx.host_pid) || probe::signal(pid, libc::SIGSTOP).is_err() {
        stopped.lock().expect("stopped").remove(&pid);
        out.lock().expect("faults").hangs.push(format!(
            "at {:.1}s: worker {pid} gone before SIGSTOP",
            at.as_secs_f64()
        ));
        return;
    }
    let t = Instant::now();
    // Watch whether the host replaces it (kills it after failed health checks).
    let mut gone = None;
    while t.elapsed() < HANG_FOR {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !probe::is_stopped_worker_of(pid, cx.host_pid) {
            gone = Some(t.elapsed());
            break;
        }
    }
    let what = match gone {
        Some(after) => format!(
            "at {:.1}s: stopped {pid}; the host killed it {:.1}s later (health checks)",
            at.as_secs_f64(),
            after.as_secs_f64()
        ),
        None => {
            let resumed = probe::is_stopped_worker_of(pid, cx.host_pid)
                && probe::signal(pid, libc::SIGCONT).is_ok();
            format!(
                "at {:.1}s: stopped {pid} for {:.0}s, then {}",
                at.as_secs_f64(),
                HANG_FOR.as_secs_f64(),
                if resumed { "SIGCONT" } else { "it was gone" }
            )
        }
    };
    stopped.lock().expect("stopped").remove(&pid);
    out.lock().expect("faults").hangs.push(what);
}

async fn garbage(mut cx: Ctx, at: Duration, out: Arc<Mutex<Faults>>) {
    tokio::time::sleep_until(cx.t0 + at).await;
    out.lock().expect("faults").garbage_at = Some(cx.t0.elapsed());
    for i in 0..GARBAGE_CALLS {
        tokio::time::sleep_until(cx.t0 + at + GARBAGE_EVERY * i).await;
        let mut req = load::request("garbage", serde_json::json!([]));
        req.timeout_ms = Some(GARBAGE_DEADLINE.as_millis() as u64);
        req.max_attempts = Some(1);
        let (_, r) = load::call(&mut cx.client, req, GARBAGE_DEADLINE).await;
        let kind = match r {
            None => {
                out.lock().expect("faults").hung += 1;
                "hung".to_owned()
            }
            Some(Ok(_)) => "ok".to_owned(),
            Some(Err(s)) => load::describe(&s).0,
        };
        *out.lock().expect("faults").garbage.entry(kind).or_default() += 1;
    }
}

async fn deploy(mut cx: Ctx, at: Duration, out: Arc<Mutex<Faults>>) {
    // Every deployment event from now on, in order.
    let events = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (mut c, events) = (cx.client.clone(), events.clone());
        tokio::spawn(async move {
            let Ok(r) = c
                .watch_deployments(pb::WatchDeploymentsRequest {
                    modules: vec![PRIMARY.into()],
                })
                .await
            else {
                return;
            };
            let mut s = r.into_inner();
            while let Ok(Some(e)) = s.message().await {
                let mut line = format!("{} {}", e.r#type, e.version);
                if !e.reason.is_empty() {
                    line.push_str(&format!(" ({})", e.reason));
                }
                events.lock().expect("events").push(line);
            }
        })
    };
    tokio::time::sleep_until(cx.t0 + at).await;
    let started = Instant::now();
    out.lock().expect("faults").deploy_at = Some(cx.t0.elapsed());
    let req = pb::DeployRequest {
        module: PRIMARY.into(),
        path: cx.release.display().to_string(),
        strategy: Some(pb::Strategy {
            kind: Some(pb::strategy::Kind::Canary(pb::Canary {
                percents: CANARY_PERCENTS.to_vec(),
                stage_duration_ms: CANARY_STAGE.as_millis() as u64,
                manual: false,
                stage_deadline_ms: CANARY_STAGE_DEADLINE.as_millis() as u64,
            })),
            scheduled_at_ms: None,
        }),
        by: "chaos-bench".into(),
        why: "a deployment in the middle of the faults".into(),
    };
    let r = tokio::time::timeout(Duration::from_secs(60), cx.client.deploy(req)).await;
    let outcome = match r {
        Err(_) => {
            out.lock().expect("faults").hung += 1;
            "Deploy did not answer within 60 s".to_owned()
        }
        Ok(Err(s)) => {
            let (kind, text) = load::describe(&s);
            format!("refused ({kind}): {text}")
        }
        Ok(Ok(r)) => {
            let version = r.into_inner().version;
            // Follow it until no rollout is left.
            loop {
                let d = cx
                    .client
                    .get_deployment(pb::DeploymentRequest {
                        module: PRIMARY.into(),
                    })
                    .await;
                match d {
                    Ok(d) if d.get_ref().rollout.is_none() => break,
                    _ if Instant::now() > cx.end + DEPLOY_GRACE => break,
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            let took = started.elapsed();
            let h = cx
                .client
                .get_history(pb::DeploymentRequest {
                    module: PRIMARY.into(),
                })
                .await
                .map(|h| h.into_inner().versions);
            let v = h
                .ok()
                .and_then(|vs| vs.into_iter().find(|v| v.version == version));
            match v {
                Some(v) => {
                    let s = v.summary.unwrap_or_default();
                    let mut line = format!(
                        "canary {}: {} {} after {:.1}s ({} calls, {} errors",
                        CANARY_PERCENTS.map(|p| p.to_string()).join("/"),
                        v.version,
                        v.state,
                        took.as_secs_f64(),
                        s.calls,
                        s.errors
                    );
                    line.push(')');
                    if !v.reason.is_empty() {
                        line.push_str(&format!(": {}", v.reason));
                    }
                    line
                }
                None => format!("{version}: not in the history after {took:?}"),
            }
        }
    };
    // The last events (released) come once the old version drained.
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.abort();
    let mut f = out.lock().expect("faults");
    f.deployment = Some(outcome);
    f.deploy_events = events.lock().expect("events").clone();
}
