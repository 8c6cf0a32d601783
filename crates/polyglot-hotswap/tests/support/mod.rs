//! Fixtures shared by the deployer's tests: a stand-in for a version's pool, a lifecycle
//! and smoke check that can be told to fail, instances whose readiness the test controls,
//! and a deployer on a manual clock.
#![allow(dead_code)] // each test file uses its own part of the fixtures

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyglot_hotswap::{
    BoxError, BoxFuture, DeployEvent, Deployer, DeployerBuilder, EventKind, Instances, Lifecycle,
    ManualClock, Outcome, SmokeCheck, SmokeFailure, SmokePhase, Strategy, Thresholds, VersionId,
    VersionMeta, VersionState,
};
use tokio::sync::broadcast;

/// What a version is, for these tests: its name and which start of it this is.
#[derive(Debug)]
pub struct Pool {
    pub version: String,
    pub generation: u32,
}

pub fn pool(version: &str) -> Arc<Pool> {
    Arc::new(Pool {
        version: version.into(),
        generation: 0,
    })
}

/// A lifecycle whose warm check fails for the versions in `broken`, that revives the
/// versions in `revivable`, and logs what it was asked.
#[derive(Clone, Default)]
pub struct Hooks {
    pub broken: Arc<Mutex<HashSet<String>>>,
    pub hanging: Arc<Mutex<HashSet<String>>>,
    pub revivable: Arc<Mutex<HashSet<String>>>,
    pub warmed: Arc<Mutex<Vec<String>>>,
    pub released: Arc<Mutex<Vec<String>>>,
    pub revived: Arc<Mutex<Vec<String>>>,
}

impl Hooks {
    pub fn break_version(&self, v: &str) {
        self.broken.lock().unwrap().insert(v.into());
    }

    /// Its warm check never finishes.
    pub fn hang(&self, v: &str) {
        self.hanging.lock().unwrap().insert(v.into());
    }

    pub fn allow_revival(&self, v: &str) {
        self.revivable.lock().unwrap().insert(v.into());
    }

    pub fn released(&self) -> Vec<String> {
        self.released.lock().unwrap().clone()
    }
}

impl Lifecycle<Pool> for Hooks {
    fn warm(&self, version: VersionId, target: Arc<Pool>) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            assert_eq!(
                target.version,
                version.as_str(),
                "warm check got the wrong value"
            );
            self.warmed.lock().unwrap().push(version.to_string());
            if self.hanging.lock().unwrap().contains(version.as_str()) {
                std::future::pending::<()>().await;
            }
            if self.broken.lock().unwrap().contains(version.as_str()) {
                return Err(format!("{version} does not answer $health").into());
            }
            Ok(())
        })
    }

    fn release(&self, version: VersionId, _target: Arc<Pool>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.released.lock().unwrap().push(version.to_string());
        })
    }

    fn revive(&self, version: VersionId) -> BoxFuture<'_, Result<Arc<Pool>, BoxError>> {
        Box::pin(async move {
            if !self.revivable.lock().unwrap().contains(version.as_str()) {
                return Err("its module folder is gone".into());
            }
            self.revived.lock().unwrap().push(version.to_string());
            Ok(Arc::new(Pool {
                version: version.to_string(),
                generation: 1,
            }))
        })
    }
}

/// A smoke check "echo" that fails for the (version, phase) pairs in `failing` with a
/// mismatch.
#[derive(Clone, Default)]
pub struct Smoke {
    pub failing: Arc<Mutex<HashSet<(String, SmokePhase)>>>,
    pub runs: Arc<Mutex<Vec<(String, SmokePhase)>>>,
}

impl Smoke {
    pub fn fail(&self, v: &str, phase: SmokePhase) {
        self.failing.lock().unwrap().insert((v.into(), phase));
    }
}

impl SmokeCheck<Pool> for Smoke {
    fn name(&self) -> &str {
        "echo"
    }

    fn run(
        &self,
        version: VersionId,
        _target: Arc<Pool>,
        phase: SmokePhase,
    ) -> BoxFuture<'_, Result<(), SmokeFailure>> {
        Box::pin(async move {
            self.runs.lock().unwrap().push((version.to_string(), phase));
            if self
                .failing
                .lock()
                .unwrap()
                .contains(&(version.to_string(), phase))
            {
                return Err(SmokeFailure::mismatch("echo(\"hi\")", "\"hi\"", "\"HI\""));
            }
            Ok(())
        })
    }
}

/// Instances per version: `scale` sets the wanted count; ready instances follow at once
/// when `auto_ready` is on, else when the test says (a scale-down is always at once).
#[derive(Clone, Default)]
pub struct Fleet {
    pub counts: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    pub auto_ready: Arc<Mutex<bool>>,
    pub log: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Fleet {
    pub fn set(&self, v: &str, desired: usize, ready: usize) {
        self.counts
            .lock()
            .unwrap()
            .insert(v.into(), (desired, ready));
    }

    pub fn make_ready(&self, v: &str) {
        let mut c = self.counts.lock().unwrap();
        let e = c.entry(v.into()).or_default();
        e.1 = e.0;
    }

    pub fn get(&self, v: &str) -> (usize, usize) {
        self.counts
            .lock()
            .unwrap()
            .get(v)
            .copied()
            .unwrap_or_default()
    }
}

impl Instances<Pool> for Fleet {
    fn scale(
        &self,
        version: VersionId,
        _target: Arc<Pool>,
        replicas: usize,
    ) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push((version.to_string(), replicas));
            let auto = *self.auto_ready.lock().unwrap();
            let mut c = self.counts.lock().unwrap();
            let e = c.entry(version.to_string()).or_default();
            e.0 = replicas;
            e.1 = if auto { replicas } else { e.1.min(replicas) };
            Ok(())
        })
    }

    fn ready(&self, version: &VersionId, _target: &Arc<Pool>) -> usize {
        self.get(version.as_str()).1
    }
}

pub struct Fixture {
    pub d: Deployer<Pool>,
    pub clock: ManualClock,
    pub hooks: Hooks,
    pub smoke: Smoke,
    pub fleet: Fleet,
    pub events: broadcast::Receiver<DeployEvent>,
}

pub const SEC: Duration = Duration::from_secs(1);

/// The thresholds of the fixtures: 10 calls make a verdict, 5% may fail.
pub fn thresholds() -> Thresholds {
    Thresholds::default().with_min_calls(10)
}

pub fn fixture() -> Fixture {
    fixture_with(|b| b)
}

pub fn fixture_with(
    configure: impl FnOnce(DeployerBuilder<Pool>) -> DeployerBuilder<Pool>,
) -> Fixture {
    let clock = ManualClock::new();
    let hooks = Hooks::default();
    let smoke = Smoke::default();
    let fleet = Fleet::default();
    let builder = Deployer::builder()
        .name("text")
        .clock(clock.clone())
        .thresholds(thresholds())
        .retain_previous(60 * SEC)
        .lifecycle(hooks.clone())
        .smoke_check(smoke.clone())
        .instances(fleet.clone());
    let d = configure(builder).build();
    let events = d.subscribe();
    Fixture {
        d,
        clock,
        hooks,
        smoke,
        fleet,
        events,
    }
}

impl Fixture {
    pub async fn stage(&self, v: &str) {
        self.d
            .stage(v, pool(v), VersionMeta::new("tester", format!("test {v}")))
            .await
            .unwrap();
    }

    /// Stages `v`, deploys it at once, and gives it enough good calls to be known
    /// healthy.
    pub async fn activate_healthy(&self, v: &str) {
        self.stage(v).await;
        self.d.deploy(v, Strategy::immediate()).await.unwrap();
        self.calls(v, 20, 0);
        self.d.tick().await;
        assert!(
            self.d.version(v).unwrap().health.is_healthy(),
            "{v} should be known healthy"
        );
    }

    /// Records `ok` good and `err` failed calls of `v`, now.
    pub fn calls(&self, v: &str, ok: usize, err: usize) {
        for _ in 0..ok {
            self.d.record(v, Outcome::Ok, Duration::from_millis(5));
        }
        for _ in 0..err {
            self.d.record(v, Outcome::Error, Duration::from_millis(5));
        }
    }

    /// Routes `n` keyed requests, records each as good, returns how many each version got.
    pub fn serve(&self, n: usize) -> HashMap<String, usize> {
        let mut got = HashMap::new();
        for i in 0..n {
            let r = self
                .d
                .route(format!("key-{i}"))
                .expect("something is active");
            self.d
                .record(r.version.as_str(), Outcome::Ok, Duration::from_millis(5));
            *got.entry(r.version.to_string()).or_default() += 1;
        }
        got
    }

    pub fn state(&self, v: &str) -> VersionState {
        self.d.version(v).expect("known version").state
    }

    pub fn active(&self) -> Option<String> {
        self.d.active_version().map(|v| v.to_string())
    }

    /// The events sent since the last call.
    pub fn events(&mut self) -> Vec<(String, EventKind)> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push((e.version.to_string(), e.kind));
        }
        out
    }

    pub async fn wait(&self, d: Duration) {
        self.clock.advance(d);
        self.d.tick().await;
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
