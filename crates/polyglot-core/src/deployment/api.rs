//! The runtime's deployment operations ([`Runtime::deploy`], [`Runtime::rollback`], ...),
//! and how a module loaded from a folder gets its deployment: restored from the state
//! file, or activated fresh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use polyglot_hotswap::{
    DeployError, DeployEvent, HookFailure, RollbackTo, Status, Strategy, VersionId, VersionInfo,
    VersionMeta, VersionState,
};
use tokio::sync::broadcast;

use super::error::DeploymentError;
use super::state::{PersistedModule, Source};
use super::Deployment;
use crate::error::{chain, LoadError};
use crate::manifest::Manifest;
use crate::module::Module;
use crate::runtime::{LoadReport, Runtime, Slot};

/// Where a new version comes from: a module folder (its `module.json` is read), or a
/// manifest already read.
#[derive(Debug, Clone)]
pub enum DeploySource {
    /// A module folder holding a `module.json`.
    Dir(PathBuf),
    /// A validated manifest (its `dir` is the version's folder).
    Manifest(Box<Manifest>),
}

impl From<&Path> for DeploySource {
    fn from(dir: &Path) -> DeploySource {
        DeploySource::Dir(dir.to_path_buf())
    }
}

impl From<PathBuf> for DeploySource {
    fn from(dir: PathBuf) -> DeploySource {
        DeploySource::Dir(dir)
    }
}

impl From<&PathBuf> for DeploySource {
    fn from(dir: &PathBuf) -> DeploySource {
        DeploySource::Dir(dir.clone())
    }
}

impl From<Manifest> for DeploySource {
    fn from(m: Manifest) -> DeploySource {
        DeploySource::Manifest(Box::new(m))
    }
}

impl Runtime {
    /// Deploys a new version of module `module` from `source` by `strategy`: reads and
    /// checks its manifest (same module name, typically another version), builds it,
    /// starts its own worker pool and waits until every worker answered `$health` (within
    /// the start deadline), runs its warm check and the smoke calls of its `module.json`,
    /// then moves traffic to it as the strategy says. Immediate and blue-green switch
    /// before this returns; canary, A/B, rolling and shadow deployments go on in the
    /// background, judged against the thresholds of the runtime's [`DeploymentConfig`]
    /// (follow them with [`Runtime::deployment`] and
    /// [`Runtime::subscribe_deployments`]). Versions that stop taking traffic drain their
    /// calls in flight before they are stopped.
    ///
    /// A module not loaded yet gets its first version this way (nothing to compare with:
    /// it is activated once its checks pass). Returns the version id, which is the
    /// manifest's `version` (`version#2`, ... when that version is already running).
    ///
    /// ```no_run
    /// # async fn run(rt: polyglot_core::Runtime) -> Result<(), polyglot_core::DeploymentError> {
    /// use std::path::Path;
    /// use std::time::Duration;
    /// use polyglot_core::{Strategy, VersionMeta};
    ///
    /// let v = rt
    ///     .deploy(
    ///         "text",
    ///         Path::new("releases/text-1.4.0"),
    ///         Strategy::canary(&[5, 25, 50], Duration::from_secs(60)),
    ///         VersionMeta::new("ana", "faster slugify"),
    ///     )
    ///     .await?;
    /// println!("deploying {v}: {:?}", rt.deployment("text"));
    /// # Ok(()) }
    /// ```
    ///
    /// [`DeploymentConfig`]: crate::DeploymentConfig
    ///
    /// # Errors
    /// [`DeploymentError::Load`] (manifest, build), [`DeploymentError::WrongModule`],
    /// [`DeploymentError::InProcess`], [`DeploymentError::Replicas`],
    /// [`DeploymentError::ShuttingDown`]; [`DeploymentError::Deploy`] when the deployer
    /// refuses (a deployment in progress, an invalid strategy) or the version fails to
    /// start (`StartFailed`, whose source is the [`LoadError`]) or its checks
    /// (`WarmFailed`, `SmokeFailed`). Whatever fails, the active version keeps serving.
    pub async fn deploy(
        &self,
        module: &str,
        source: impl Into<DeploySource>,
        strategy: Strategy,
        meta: VersionMeta,
    ) -> Result<VersionId, DeploymentError> {
        let inner = self.inner();
        if inner.is_shutting_down() {
            return Err(DeploymentError::ShuttingDown);
        }
        let manifest = match source.into() {
            DeploySource::Dir(d) => Manifest::load(&d).map_err(LoadError::from)?,
            DeploySource::Manifest(m) => *m,
        };
        let (dep, created) = {
            let _one_at_a_time = inner.control.lock().await;
            match inner.slot(module) {
                Some(Slot::Deployed(d)) => (d, false),
                Some(Slot::Mounted(_)) => return Err(DeploymentError::InProcess(module.into())),
                None => {
                    if manifest.name != module {
                        return Err(wrong_module(module, &manifest));
                    }
                    let d = Deployment::new(module, inner);
                    inner.insert(module, Slot::Deployed(d.clone()));
                    (d, true)
                }
            }
        };
        let result = self
            .deploy_version(&dep, Arc::new(manifest), strategy, meta)
            .await;
        if result.is_err() && created && dep.is_empty() {
            // A module that never got a version is not a module.
            inner.remove_if(module, &dep);
            dep.stop_tasks().await;
            dep.drain_all(Duration::ZERO).await;
        }
        result
    }

    /// Stages `manifest` as a new version of `dep` (its pool started and ready), then
    /// deploys it.
    pub(crate) async fn deploy_version(
        &self,
        dep: &Arc<Deployment>,
        manifest: Arc<Manifest>,
        strategy: Strategy,
        meta: VersionMeta,
    ) -> Result<VersionId, DeploymentError> {
        let module = &dep.name;
        if manifest.name != *module {
            return Err(wrong_module(module, &manifest));
        }
        let rolling = match &strategy {
            Strategy::Rolling(r) => Some(r.replicas),
            Strategy::Scheduled(s) => match &*s.then {
                Strategy::Rolling(r) => Some(r.replicas),
                _ => None,
            },
            _ => None,
        };
        if let Some(replicas) = rolling.filter(|r| *r != manifest.instances as usize) {
            return Err(DeploymentError::Replicas {
                module: module.clone(),
                version: manifest.version.clone(),
                replicas,
                instances: manifest.instances,
            });
        }
        // A rolling update replacing a live version starts one new worker (for the
        // version's checks) and lets the deployer add the others batch by batch; every
        // other deployment starts the whole pool.
        let initial = if rolling.is_some() && dep.deployer.status().active.is_some() {
            1
        } else {
            manifest.instances as usize
        };
        let failed = |source| DeploymentError::Deploy {
            module: module.clone(),
            source: Box::new(source),
        };
        let id = dep.free_id(&manifest.version);
        dep.versions.add(
            &id,
            Source {
                dir: manifest.dir.clone(),
                version: manifest.version.clone(),
            },
            Some(manifest.clone()),
            None,
        );
        let events = self.inner().events.clone();
        let versions = dep.versions.clone();
        let started_id = id.clone();
        dep.deployer
            .prepare(&id, meta, async move {
                let m = Module::launch(manifest, &events, initial).await?;
                versions.set_live(&started_id, m.clone());
                Ok::<_, LoadError>(m)
            })
            .await
            .map_err(failed)?;
        dep.deployer.deploy(&id, strategy).await.map_err(failed)?;
        VersionId::new(id).map_err(failed)
    }

    /// Rolls module `module` back: the deployment in progress if there is one, else the
    /// active version. `to` names the version to go back to (it must have been active,
    /// and not been judged unhealthy); `None` takes the most recently active version
    /// known healthy. A version already stopped is started again from its folder; the
    /// target must pass its warm check before it takes the traffic. Returns the version
    /// that took it.
    ///
    /// # Errors
    /// [`DeploymentError::NotFound`], [`DeploymentError::InProcess`];
    /// [`DeploymentError::Deploy`] with `NoRollbackTarget` (nothing changed; it says
    /// what was refused and why), `RollbackRefused`, `UnknownVersion`, `NoDeployment`.
    pub async fn rollback(
        &self,
        module: &str,
        to: Option<&str>,
    ) -> Result<VersionId, DeploymentError> {
        let dep = self.deployed(module)?;
        let target = to.map_or(RollbackTo::Previous, |v| RollbackTo::Version(v.to_owned()));
        dep.deployer
            .rollback(target, "requested through the runtime")
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Moves module `module`'s deployment on now: the next canary stage (or the promotion
    /// after the last), B of an A/B test, a shadow, the end of a blue-green grace period.
    /// Its analysis must have passed.
    ///
    /// # Errors
    /// [`DeploymentError::NotFound`], [`DeploymentError::InProcess`];
    /// [`DeploymentError::Deploy`] with `NoDeployment`, `NotReady` (time or healthy
    /// calls missing, and which), `TooEarly`, `NotApplicable`.
    pub async fn advance(&self, module: &str) -> Result<(), DeploymentError> {
        let dep = self.deployed(module)?;
        dep.deployer
            .advance()
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Pauses module `module`'s deployment: it neither advances nor runs into its
    /// deadlines until resumed (a version judged unhealthy is still rolled back).
    ///
    /// # Errors
    /// As [`Runtime::advance`]: `NoDeployment`, `NotApplicable` (already paused).
    pub async fn pause(&self, module: &str) -> Result<(), DeploymentError> {
        let dep = self.deployed(module)?;
        dep.deployer
            .pause()
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Resumes module `module`'s paused deployment.
    ///
    /// # Errors
    /// As [`Runtime::advance`]: `NoDeployment`, `NotApplicable` (not paused).
    pub async fn resume(&self, module: &str) -> Result<(), DeploymentError> {
        let dep = self.deployed(module)?;
        dep.deployer
            .resume()
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Ends module `module`'s deployment: the new version is failed with `why`, and the
    /// traffic goes back to the version active before it started.
    ///
    /// # Errors
    /// As [`Runtime::advance`]: `NoDeployment`.
    pub async fn abort(&self, module: &str, why: &str) -> Result<(), DeploymentError> {
        let dep = self.deployed(module)?;
        dep.deployer
            .abort(why)
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Changes the split of module `module`'s A/B test: B gets `percent_b` percent of the
    /// routing keys.
    ///
    /// # Errors
    /// As [`Runtime::advance`]: `NoDeployment`, `NotApplicable` (not an A/B test),
    /// `InvalidStrategy` (outside 1 to 99).
    pub async fn set_split(&self, module: &str, percent_b: u8) -> Result<(), DeploymentError> {
        let dep = self.deployed(module)?;
        dep.deployer
            .set_split(percent_b)
            .await
            .map_err(|source| deploy_error(module, source))
    }

    /// Module `module`'s deployment now: its active version, the deployment in progress
    /// (strategy, phase, share, verdict), and where calls go. `None` for a module not
    /// loaded or served in-process.
    pub fn deployment(&self, module: &str) -> Option<Status> {
        match self.inner().slot(module)? {
            Slot::Deployed(d) => Some(d.deployer.status()),
            Slot::Mounted(_) => None,
        }
    }

    /// Every module's deployment, sorted by module.
    pub fn deployments(&self) -> Vec<Status> {
        let mut v: Vec<Status> = self
            .inner()
            .modules
            .load()
            .values()
            .filter_map(|s| match s {
                Slot::Deployed(d) => Some(d.deployer.status()),
                Slot::Mounted(_) => None,
            })
            .collect();
        v.sort_by(|a, b| a.deployment.cmp(&b.deployment));
        v
    }

    /// Module `module`'s versions, in the order they were staged: state, who and why,
    /// strategy, when, health.
    pub fn history(&self, module: &str) -> Option<Vec<VersionInfo>> {
        match self.inner().slot(module)? {
            Slot::Deployed(d) => Some(d.deployer.history()),
            Slot::Mounted(_) => None,
        }
    }

    /// Every deployment event of every module from now on: staged, started, stages,
    /// holds, promotions, rollbacks, failures, releases. (Workers, health and fallbacks
    /// are in [`Runtime::subscribe`].)
    pub fn subscribe_deployments(&self) -> broadcast::Receiver<DeployEvent> {
        self.inner().deploy_events.subscribe()
    }

    fn deployed(&self, module: &str) -> Result<Arc<Deployment>, DeploymentError> {
        match self.inner().slot(module) {
            Some(Slot::Deployed(d)) => Ok(d),
            Some(Slot::Mounted(_)) => Err(DeploymentError::InProcess(module.into())),
            None => Err(DeploymentError::NotFound(module.into())),
        }
    }

    /// Gives a module found in a folder its deployment: restored from the state file
    /// (on the version that was active, from that version's folder), or with the found
    /// version active at once. Returns the pool it serves with and a start problem.
    pub(crate) async fn load_found(
        &self,
        found: Arc<Manifest>,
        report: &mut LoadReport,
    ) -> (Arc<Module>, Option<LoadError>) {
        let inner = self.inner();
        let name = found.name.clone();
        let dep = Deployment::new(&name, inner);
        let persisted = inner.state.as_ref().and_then(|s| s.take(&name));
        if let Some(p) = persisted {
            if let Some(back) = self.come_back(&dep, &found, p, report).await {
                inner.insert(&name, Slot::Deployed(dep));
                return back;
            }
        }
        let (module, err) = Module::load(found.clone(), &inner.events).await;
        let id = dep.free_id(&found.version);
        dep.versions.add(
            &id,
            Source {
                dir: found.dir.clone(),
                version: found.version.clone(),
            },
            Some(found.clone()),
            Some(module.clone()),
        );
        let meta = VersionMeta::new("load", format!("loaded from {}", found.dir.display()));
        if let Err(e) = dep.activate_first(&id, module.clone(), meta).await {
            tracing::error!(module = %name, error = %chain(&e), "activating the first version failed");
            report.errors.push(LoadError::NotReady {
                module: name.clone(),
                message: format!("activating version {id} failed: {}", chain(&e)),
            });
        }
        inner.insert(&name, Slot::Deployed(dep));
        (module, err)
    }

    /// Restores `dep` from its persisted state. Comes back on the persisted active version
    /// when its folder still holds it (started from there: the pool and its start
    /// problem are returned); otherwise restores the history alone, says why, and
    /// returns `None` for the found version to be activated.
    async fn come_back(
        &self,
        dep: &Arc<Deployment>,
        found: &Arc<Manifest>,
        p: PersistedModule,
        report: &mut LoadReport,
    ) -> Option<(Arc<Module>, Option<LoadError>)> {
        let inner = self.inner();
        let name = &dep.name;
        let file = inner
            .state
            .as_ref()
            .map(|s| s.path().to_path_buf())
            .unwrap_or_default();
        let PersistedModule {
            mut snapshot,
            sources,
        } = p;
        for (v, src) in &sources {
            dep.versions.add(v, src.clone(), None, None);
        }
        let back = snapshot.active.clone().map(|active| {
            let src = sources.get(active.as_str()).cloned();
            let plan = match &src {
                None => Err("the state file does not say which folder it came from".to_owned()),
                Some(s) if s.dir == found.dir && s.version == found.version => Ok(found.clone()),
                Some(s) => match Manifest::load(&s.dir) {
                    Ok(m) if m.name == *name && m.version == s.version => Ok(Arc::new(m)),
                    Ok(m) => Err(format!(
                        "its folder {} now holds {} {}",
                        s.dir.display(),
                        m.name,
                        m.version
                    )),
                    Err(e) => Err(e.to_string()),
                },
            };
            (active, src, plan)
        });
        match back {
            Some((active, Some(src), Ok(manifest))) => {
                if manifest.dir != found.dir || manifest.version != found.version {
                    tracing::info!(module = %name, version = %active, dir = %manifest.dir.display(),
                        found = %found.version, found_dir = %found.dir.display(),
                        "coming back on the version the state file says was active; deploy the folder found to switch");
                }
                let (module, err) = Module::load(manifest.clone(), &inner.events).await;
                dep.versions
                    .add(active.as_str(), src, Some(manifest), Some(module.clone()));
                let value = module.clone();
                match dep
                    .deployer
                    .restore(snapshot, move |v| (*v == active).then(|| value.clone()))
                    .await
                {
                    Ok(()) => Some((module, err)),
                    Err(e) => {
                        report.errors.push(LoadError::State {
                            file,
                            message: format!(
                                "module {name:?}: its history cannot be restored ({}); it starts afresh on {} {}",
                                chain(&e),
                                found.version,
                                found.dir.display()
                            ),
                        });
                        module.stop_now().await;
                        None
                    }
                }
            }
            other => {
                if let Some((active, src, why)) = other {
                    let why = match why {
                        Err(why) => why,
                        Ok(_) => "the state file does not say which folder it came from".into(),
                    };
                    let message = format!(
                        "module {name:?}: the state file says {active} was active, but it cannot be \
                         started again: {why}; serving {} from {} instead",
                        found.version,
                        found.dir.display()
                    );
                    // The same folder holding a newer version is an upgrade by the
                    // operator; another folder gone or changed is worth a report.
                    if src.is_some_and(|s| s.dir == found.dir) {
                        tracing::info!(module = %name, version = %active, reason = %why,
                            "the persisted version's folder holds another version now; serving that one");
                    } else {
                        tracing::warn!(module = %name, version = %active, reason = %why,
                            "the persisted version cannot be started again; serving the folder found");
                        report.errors.push(LoadError::State {
                            file: file.clone(),
                            message,
                        });
                    }
                    // Keep the history, with that version superseded.
                    let now = polyglot_protocol::now_ms();
                    for v in snapshot.versions.iter_mut().filter(|v| v.version == active) {
                        v.state = VersionState::Superseded;
                        v.ended_at_ms = Some(now);
                        v.retained = false;
                    }
                    snapshot.active = None;
                }
                if let Err(e) = dep.deployer.restore(snapshot, |_| None).await {
                    report.errors.push(LoadError::State {
                        file,
                        message: format!(
                            "module {name:?}: its history cannot be restored ({}); it starts afresh",
                            chain(&e)
                        ),
                    });
                }
                None
            }
        }
    }
}

impl DeploymentError {
    /// As a reload reports it: the start's own [`LoadError`] when the new version did not
    /// start, else the error in words.
    pub(crate) fn into_load_error(self, module: &str) -> LoadError {
        let message = match self {
            DeploymentError::Load(e) => return *e,
            DeploymentError::Deploy { source, .. } => match *source {
                DeployError::StartFailed {
                    source: HookFailure::Failed(e),
                    ..
                } => match e.downcast::<LoadError>() {
                    Ok(e) => return *e,
                    Err(e) => chain(&*e),
                },
                other => chain(&other),
            },
            other => other.to_string(),
        };
        LoadError::NotReady {
            module: module.to_owned(),
            message,
        }
    }
}

fn wrong_module(module: &str, m: &Manifest) -> DeploymentError {
    DeploymentError::WrongModule {
        module: module.to_owned(),
        found: m.name.clone(),
        file: m.file.clone(),
    }
}

fn deploy_error(module: &str, source: DeployError) -> DeploymentError {
    DeploymentError::Deploy {
        module: module.to_owned(),
        source: Box::new(source),
    }
}
