//! What the runtime plugs into each module's deployer: [`Versions`], where each version
//! came from and its live pool; [`VersionHooks`], its [`Lifecycle`] (warm = ready and
//! `$health`, release = drain then stop, revive = start again from its folder) and
//! [`Instances`]; and [`ManifestSmoke`], the smoke calls of each version's `module.json`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use polyglot_hotswap::{
    BoxError, BoxFuture, Instances, Lifecycle, SmokeCheck, SmokeFailure, SmokePhase, VersionId,
};
use polyglot_protocol::Value;
use tokio::time::Instant;

use super::state::Source;
use crate::connection::ConnError;
use crate::events::Events;
use crate::manifest::{Manifest, SmokeCall, SmokeExpect};
use crate::module::{ready_budget, Attempt, Module};

/// One version as the runtime knows it.
struct Entry {
    source: Source,
    /// The manifest it was started from this time (`None` after a restart, until it is
    /// started again: then it is read from `source`).
    manifest: Option<Arc<Manifest>>,
    /// Its pool, while it runs.
    live: Option<Arc<Module>>,
}

/// The versions of one module: their folders and live pools, for revival, persistence
/// and shutdown.
pub(crate) struct Versions {
    module: String,
    events: Events,
    entries: Mutex<HashMap<String, Entry>>,
    /// Versions whose warm and smoke checks pass without running: the first version of a
    /// module at load, which takes the calls whatever its state (they fall back while it
    /// is not ready, as they always did), since there is nothing else to serve them.
    unchecked: Mutex<HashSet<String>>,
}

impl Versions {
    pub(crate) fn new(module: &str, events: Events) -> Versions {
        Versions {
            module: module.to_owned(),
            events,
            entries: Mutex::new(HashMap::new()),
            unchecked: Mutex::new(HashSet::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unchecked(&self) -> MutexGuard<'_, HashSet<String>> {
        self.unchecked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records where `version` comes from, and its pool if it was started.
    pub(crate) fn add(
        &self,
        version: &str,
        source: Source,
        manifest: Option<Arc<Manifest>>,
        live: Option<Arc<Module>>,
    ) {
        self.entries().insert(
            version.to_owned(),
            Entry {
                source,
                manifest,
                live,
            },
        );
    }

    /// Records the pool `version` runs as now.
    pub(crate) fn set_live(&self, version: &str, module: Arc<Module>) {
        if let Some(e) = self.entries().get_mut(version) {
            e.manifest = Some(module.manifest.clone());
            e.live = Some(module);
        }
    }

    /// Forgets `module` as `version`'s pool (it was stopped), unless another took its
    /// place meanwhile.
    fn forget_live(&self, version: &str, module: &Arc<Module>) {
        if let Some(e) = self.entries().get_mut(version) {
            if e.live.as_ref().is_some_and(|l| Arc::ptr_eq(l, module)) {
                e.live = None;
            }
        }
    }

    /// Every pool still running.
    pub(crate) fn live(&self) -> Vec<Arc<Module>> {
        self.entries()
            .values()
            .filter_map(|e| e.live.clone())
            .collect()
    }

    /// The versions with a running module, by version id.
    pub(crate) fn live_by_id(&self) -> Vec<(String, Arc<Module>)> {
        self.entries()
            .iter()
            .filter_map(|(v, e)| e.live.clone().map(|m| (v.clone(), m)))
            .collect()
    }

    /// Each version's folder, by version id, for the state file.
    pub(crate) fn sources(&self) -> std::collections::BTreeMap<String, Source> {
        self.entries()
            .iter()
            .map(|(v, e)| (v.clone(), e.source.clone()))
            .collect()
    }

    pub(crate) fn set_unchecked(&self, version: &str, on: bool) {
        if on {
            self.unchecked().insert(version.to_owned());
        } else {
            self.unchecked().remove(version);
        }
    }

    fn is_unchecked(&self, version: &str) -> bool {
        self.unchecked().contains(version)
    }

    /// The manifest to start `version` from again: the one it ran with, or (after a
    /// restart) its folder's, which must still declare the same module and version.
    fn manifest_for(&self, version: &str) -> Result<Arc<Manifest>, String> {
        let (source, manifest) = {
            let entries = self.entries();
            let Some(e) = entries.get(version) else {
                return Err(format!(
                    "the runtime does not know the folder of {} {version}",
                    self.module
                ));
            };
            (e.source.clone(), e.manifest.clone())
        };
        if let Some(m) = manifest {
            return Ok(m);
        }
        let m = Manifest::load(&source.dir).map_err(|e| e.to_string())?;
        if m.name != self.module || m.version != source.version {
            return Err(format!(
                "its folder {} now holds {} {}, not {} {}",
                source.dir.display(),
                m.name,
                m.version,
                self.module,
                source.version
            ));
        }
        Ok(Arc::new(m))
    }
}

/// The lifecycle and instances of a module's versions.
#[derive(Clone)]
pub(crate) struct VersionHooks {
    pub versions: Arc<Versions>,
    /// How long a released version's calls in flight may take to finish.
    pub drain: Duration,
}

impl Lifecycle<Module> for VersionHooks {
    /// Every worker started and answered `$health`.
    fn warm(&self, version: VersionId, target: Arc<Module>) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            if self.versions.is_unchecked(version.as_str()) {
                return Ok(());
            }
            let deadline = Instant::now() + ready_budget(&target.manifest);
            target.wait_ready(deadline).await.map_err(BoxError::from)
        })
    }

    /// Stops routing to it, lets its calls in flight finish (up to the drain timeout),
    /// then stops its workers. The drain runs in a task of its own, so that it finishes
    /// even if the deployer stops waiting for it.
    fn release(&self, version: VersionId, target: Arc<Module>) -> BoxFuture<'_, ()> {
        let versions = self.versions.clone();
        let drain = self.drain;
        Box::pin(async move {
            let task = tokio::spawn(async move {
                target.drain_and_stop(drain).await;
                versions.forget_live(version.as_str(), &target);
            });
            let _ = task.await;
        })
    }

    /// Builds and starts it again from its folder; the deployer then checks it warm.
    fn revive(&self, version: VersionId) -> BoxFuture<'_, Result<Arc<Module>, BoxError>> {
        Box::pin(async move {
            let manifest = self.versions.manifest_for(version.as_str())?;
            tracing::info!(module = %self.versions.module, version = %version, dir = %manifest.dir.display(), "starting a released version again");
            let (module, err) = Module::load(manifest, &self.versions.events).await;
            if let Some(e) = err {
                module.stop_now().await;
                return Err(e.into());
            }
            self.versions.set_live(version.as_str(), module.clone());
            Ok(module)
        })
    }
}

/// A version's pool has its manifest's `instances` worker slots; a rolling update runs
/// as many of them as the deployer asks for, and counts those taking calls as ready.
impl Instances<Module> for VersionHooks {
    fn scale(
        &self,
        _version: VersionId,
        target: Arc<Module>,
        replicas: usize,
    ) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move { target.scale(replicas).await.map_err(BoxError::from) })
    }

    fn ready(&self, _version: &VersionId, target: &Arc<Module>) -> usize {
        target.ready_instances()
    }
}

/// The smoke calls of each version's own `module.json` (`smoke`), run against its pool.
pub(crate) struct ManifestSmoke {
    pub versions: Arc<Versions>,
}

impl SmokeCheck<Module> for ManifestSmoke {
    fn name(&self) -> &str {
        "module.json smoke"
    }

    fn run(
        &self,
        version: VersionId,
        target: Arc<Module>,
        _phase: SmokePhase,
    ) -> BoxFuture<'_, Result<(), SmokeFailure>> {
        Box::pin(async move {
            if self.versions.is_unchecked(version.as_str()) {
                return Ok(());
            }
            for call in &target.manifest.smoke {
                smoke_call(&target, call).await?;
            }
            Ok(())
        })
    }
}

/// Runs one smoke call on `module` and compares its answer.
async fn smoke_call(module: &Module, call: &SmokeCall) -> Result<(), SmokeFailure> {
    let deadline = Instant::now() + module.manifest.timeout;
    let mut params = Value::from(call.params.clone());
    let expected = match &call.expect {
        SmokeExpect::Success => "a result".to_owned(),
        SmokeExpect::Result(r) => r.to_string(),
        SmokeExpect::Error(code) => format!("error {code}"),
    };
    let what = call.to_string();
    match module
        .attempt(&call.method, &mut params, deadline, None)
        .await
    {
        Attempt::Done { value, .. } => match &call.expect {
            SmokeExpect::Success => Ok(()),
            SmokeExpect::Result(r) if Value::from(r.clone()) == value => Ok(()),
            _ => Err(SmokeFailure::mismatch(what, expected, value.to_string())),
        },
        Attempt::Failed(ConnError::Remote(e), _) => match &call.expect {
            SmokeExpect::Error(code) if *code == e.code => Ok(()),
            _ => Err(SmokeFailure::mismatch(
                what,
                expected,
                format!("error {}: {}", e.code, e.message),
            )),
        },
        Attempt::Failed(e, instance) => Err(SmokeFailure::new(format!(
            "{what}: {}",
            crate::runtime::conn_error(e, module, &call.method, instance, None)
        ))),
        Attempt::Unavailable(u) => Err(SmokeFailure::new(format!("{what}: the version {}", u.0))),
    }
}
