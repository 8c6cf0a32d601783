//! Deployments: each module loaded from a folder is a [`Deployment`], a
//! [`Deployer`](polyglot_hotswap::Deployer) over its versions (`T` = one version's
//! [`Module`], its own worker pool), with the hooks that start, check, drain and revive
//! versions, its drive loop, and its events forwarded to the runtime (and to the state
//! file). The runtime's operations on them are in `api`.
//!
//! - `config`: [`DeploymentConfig`].
//! - `hooks`: warm, release, revive, instances, and the manifest's smoke calls.
//! - `state`: the state file.
//! - `error`: [`DeploymentError`].
//! - `api`: `Runtime::deploy`, `rollback`, `advance`, ... and the restore at load.

mod api;
mod config;
mod error;
mod hooks;
pub(crate) mod state;

use std::sync::{Arc, Mutex, PoisonError, Weak};

use polyglot_hotswap::{DeployError, DeployEvent, Deployer, Route, Strategy, VersionMeta};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use self::api::DeploySource;
pub use self::config::{DeploymentConfig, DEFAULT_RETAIN_PREVIOUS};
pub use self::error::DeploymentError;
pub(crate) use self::hooks::Versions;
use self::hooks::{ManifestSmoke, VersionHooks};
use self::state::PersistedModule;
use crate::module::Module;
use crate::runtime::Inner;

/// One module's versions under a deployer.
pub(crate) struct Deployment {
    pub name: String,
    pub deployer: Arc<Deployer<Module>>,
    pub versions: Arc<Versions>,
    /// The drive loop and the event forwarder.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Deployment {
    /// A deployment of module `name` with nothing staged, its drive loop and event
    /// forwarder running.
    pub(crate) fn new(name: &str, runtime: &Arc<Inner>) -> Arc<Deployment> {
        let cfg = &runtime.deploy_config;
        let versions = Arc::new(Versions::new(name, runtime.events.clone()));
        let hooks = VersionHooks {
            versions: versions.clone(),
            drain: runtime.config.drain_timeout,
        };
        let deployer = Arc::new(
            Deployer::builder()
                .name(name)
                .thresholds(cfg.thresholds.clone())
                .health_window(cfg.health_window, cfg.health_buckets)
                .auto_rollback(cfg.auto_rollback)
                .retain_previous(cfg.retain_previous)
                .history_limit(cfg.history_limit)
                .deadlines(cfg.deadlines)
                .lifecycle(hooks.clone())
                .instances(hooks)
                .smoke_check(ManifestSmoke {
                    versions: versions.clone(),
                })
                .build(),
        );
        let drive = tokio::spawn(drive(Arc::downgrade(&deployer), cfg.tick));
        let forward = tokio::spawn(forward(
            deployer.subscribe(),
            runtime.deploy_events.clone(),
            Arc::downgrade(runtime),
        ));
        Arc::new(Deployment {
            name: name.to_owned(),
            deployer,
            versions,
            tasks: Mutex::new(vec![drive, forward]),
        })
    }

    /// Where a call with this routing key goes (a random point without one). Lock-free.
    #[inline]
    pub(crate) fn route(&self, key: Option<&str>) -> Option<Route<Module>> {
        match key {
            Some(k) => self.deployer.route(k),
            None => self.deployer.route_any(),
        }
    }

    /// The active version's pool.
    pub(crate) fn active(&self) -> Option<Arc<Module>> {
        self.deployer.active()
    }

    /// A version id for a new version declared `version`: the version itself, or, while
    /// a version of that id is in use or retained, `version#2`, `version#3`, ...
    pub(crate) fn free_id(&self, version: &str) -> String {
        let usable = |id: &str| match self.deployer.version(id) {
            None => true,
            Some(info) => info.state.is_terminal() && !info.retained && !self.in_rollout(id),
        };
        if usable(version) {
            return version.to_owned();
        }
        (2u32..)
            .map(|n| format!("{version}#{n}"))
            .find(|id| usable(id))
            .expect("some suffix is free")
    }

    fn in_rollout(&self, id: &str) -> bool {
        self.deployer.status().rollout.is_some_and(|r| {
            r.version.as_str() == id || r.from.as_ref().is_some_and(|f| f.as_str() == id)
        })
    }

    /// Makes `module` the active version `id` without its warm and smoke checks: the
    /// first version of a module at load, which serves (or falls back) whatever its
    /// state, since nothing else can.
    pub(crate) async fn activate_first(
        &self,
        id: &str,
        module: Arc<Module>,
        meta: VersionMeta,
    ) -> Result<(), DeployError> {
        self.versions.set_unchecked(id, true);
        let result = async {
            self.deployer.stage(id, module, meta).await?;
            self.deployer.deploy(id, Strategy::Immediate).await
        }
        .await;
        self.versions.set_unchecked(id, false);
        result
    }

    /// What the state file keeps of it.
    pub(crate) fn persisted(&self) -> PersistedModule {
        PersistedModule {
            snapshot: self.deployer.snapshot(),
            sources: self.versions.sources(),
        }
    }

    /// True while nothing is active and no deployment runs: a module whose first
    /// deployment failed.
    pub(crate) fn is_empty(&self) -> bool {
        let s = self.deployer.status();
        s.active.is_none() && s.rollout.is_none()
    }

    /// Stops the drive loop and the forwarder, and waits until they are stopped: no tick
    /// runs after this.
    pub(crate) async fn stop_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Drains every running version (each finishes its calls in flight, up to `drain`)
    /// and stops it.
    pub(crate) async fn drain_all(&self, drain: std::time::Duration) {
        let stops: Vec<_> = self
            .versions
            .live()
            .into_iter()
            .map(|m| tokio::spawn(async move { m.drain_and_stop(drain).await }))
            .collect();
        for s in stops {
            let _ = s.await;
        }
    }
}

/// Ticks the deployer every `every` for as long as it exists.
async fn drive(deployer: Weak<Deployer<Module>>, every: std::time::Duration) {
    loop {
        {
            let Some(d) = deployer.upgrade() else { return };
            d.tick().await;
        }
        tokio::time::sleep(every).await;
    }
}

/// Forwards a deployer's events to the runtime's subscribers, and writes the state file
/// after each burst of them.
async fn forward(
    mut rx: broadcast::Receiver<DeployEvent>,
    out: broadcast::Sender<DeployEvent>,
    runtime: Weak<Inner>,
) {
    use broadcast::error::{RecvError, TryRecvError};
    // The events of a module's first activation at load are routine: logged at debug.
    // Every later one is a deployment an operator wants in the log.
    let mut initial = true;
    let mut log = |e: &DeployEvent| {
        if initial {
            tracing::debug!(module = %e.deployment, version = %e.version, event = ?e.kind, "deployment");
        } else {
            tracing::info!(module = %e.deployment, version = %e.version, event = ?e.kind, "deployment");
        }
        if matches!(
            e.kind,
            polyglot_hotswap::EventKind::Succeeded | polyglot_hotswap::EventKind::Failed { .. }
        ) {
            initial = false;
        }
    };
    loop {
        match rx.recv().await {
            Ok(e) => {
                log(&e);
                // No subscriber is not an error: nobody is watching.
                let _ = out.send(e);
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "deployment events were missed by the runtime's forwarder"
                );
            }
            Err(RecvError::Closed) => return,
        }
        loop {
            match rx.try_recv() {
                Ok(e) => {
                    log(&e);
                    let _ = out.send(e);
                }
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        let Some(inner) = runtime.upgrade() else {
            return;
        };
        if inner.state.is_some() {
            let _ = tokio::task::spawn_blocking(move || inner.persist()).await;
        }
    }
}
