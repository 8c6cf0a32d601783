//! [`DeploymentError`]: why a deployment operation of the runtime was refused or failed.

use std::path::PathBuf;

use polyglot_hotswap::DeployError;

use crate::error::LoadError;

/// Why a deployment operation ([`Runtime::deploy`](crate::Runtime::deploy),
/// [`rollback`](crate::Runtime::rollback), [`advance`](crate::Runtime::advance), ...)
/// was refused or failed. Each names the module.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// No module of that name is loaded.
    #[error("no module named {0:?} is loaded")]
    NotFound(String),
    /// The module is served in the host's process by a mounted handler: it has no
    /// folder and no versions.
    #[error("module {0:?} is an in-process handler: it has no versions to deploy or roll back")]
    InProcess(String),
    /// The new version's manifest, build or start failed. (Boxed: a load error is large,
    /// and results of deployment operations are passed around.)
    #[error(transparent)]
    Load(Box<LoadError>),
    /// The manifest given names another module.
    #[error(
        "{}: it declares module {found:?}, not {module:?}; a deployment replaces a module \
         by a version of the same name",
        file.display()
    )]
    WrongModule {
        /// The module being deployed.
        module: String,
        /// The name the manifest declares.
        found: String,
        /// The manifest.
        file: PathBuf,
    },
    /// A rolling update asked for another number of instances than the version's pool
    /// has.
    #[error(
        "cannot deploy {module} {version} with a rolling update to {replicas} instances: \
         its manifest sets `instances: {instances}`, the size of each version's pool; use \
         {instances} replicas, or change `instances` in its module.json"
    )]
    Replicas {
        /// The module.
        module: String,
        /// The version.
        version: String,
        /// The replicas the strategy asked for.
        replicas: usize,
        /// The instances its manifest starts.
        instances: u32,
    },
    /// The deployer refused the operation, or the deployment failed (its start, warm
    /// check, smoke checks, or no rollback target). [`DeploymentError::deploy_error`]
    /// gives the deployer's error to match on.
    #[error("module {module:?}: {}", crate::error::chain(&**source))]
    Deploy {
        /// The module.
        module: String,
        /// What the deployer said (boxed: it is large).
        source: Box<DeployError>,
    },
    /// The runtime is shutting down.
    #[error("the runtime is shutting down and takes no deployments")]
    ShuttingDown,
}

impl DeploymentError {
    /// The deployer's error, for [`DeploymentError::Deploy`]:
    /// `matches!(e.deploy_error(), Some(DeployError::NotReady { .. }))`.
    pub fn deploy_error(&self) -> Option<&DeployError> {
        match self {
            DeploymentError::Deploy { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<LoadError> for DeploymentError {
    fn from(e: LoadError) -> DeploymentError {
        DeploymentError::Load(Box::new(e))
    }
}
