//! `--connect URL`: the commands against a running host (`call`, `modules`, and the
//! deployment commands).

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use std::path::Path;
use tonic::metadata::MetadataValue;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// A Runtime API client that sends the API key with every call.
pub struct Client {
    inner: RuntimeClient<Channel>,
    key: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to `url` (`http://127.0.0.1:50051`, or `https://` with TLS, trusting the
    /// public roots and `ca` if given).
    ///
    /// # Errors
    /// When the URL is invalid, the CA file unreadable, or nothing answers there.
    pub async fn connect(
        url: &str,
        api_key: Option<&str>,
        ca: Option<&Path>,
    ) -> anyhow::Result<Client> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = ca {
                let pem = std::fs::read(ca).map_err(|e| {
                    anyhow::anyhow!("cannot read the CA certificate {}: {e}", ca.display())
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| anyhow::anyhow!("TLS to {url}: {e}"))?;
        } else if ca.is_some() {
            anyhow::bail!("--tls-ca is for https:// URLs; {url} is plain text");
        }
        let channel = endpoint.connect().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to {url}: {}",
                polyglot_core::error_chain(&e)
            )
        })?;
        // Replies up to the size the host sends, not tonic's 4 MiB.
        let inner = polyglot_core::api::runtime_client(channel);
        let key = api_key
            .map(|k| format!("Bearer {k}").parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("the API key has characters a header cannot carry"))?;
        Ok(Client { inner, key })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(k) = &self.key {
            req.metadata_mut().insert("authorization", k.clone());
        }
        req
    }

    /// Runs one call with JSON params; returns the response or the status.
    pub async fn call(&mut self, req: pb::CallRequest) -> Result<pb::CallResponse, tonic::Status> {
        let r = self.request(req);
        self.inner.call(r).await.map(tonic::Response::into_inner)
    }

    /// Every module.
    pub async fn modules(&mut self) -> Result<Vec<pb::ModuleInfo>, tonic::Status> {
        let r = self.request(pb::ListModulesRequest {});
        Ok(self.inner.list_modules(r).await?.into_inner().modules)
    }

    /// Deploys a new version.
    pub async fn deploy(
        &mut self,
        req: pb::DeployRequest,
    ) -> Result<pb::DeployResponse, tonic::Status> {
        let r = self.request(req);
        self.inner.deploy(r).await.map(tonic::Response::into_inner)
    }

    /// Rolls a module back.
    pub async fn rollback(
        &mut self,
        req: pb::RollbackRequest,
    ) -> Result<pb::RollbackResponse, tonic::Status> {
        let r = self.request(req);
        self.inner
            .rollback(r)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs a deployment control: advance, pause, resume, abort or a new split.
    pub async fn control(
        &mut self,
        control: Control,
    ) -> Result<pb::DeploymentStatus, tonic::Status> {
        let reply = match control {
            Control::Advance(module) => {
                let r = self.request(pb::DeploymentRequest { module });
                self.inner.advance_deployment(r).await
            }
            Control::Pause(module) => {
                let r = self.request(pb::DeploymentRequest { module });
                self.inner.pause_deployment(r).await
            }
            Control::Resume(module) => {
                let r = self.request(pb::DeploymentRequest { module });
                self.inner.resume_deployment(r).await
            }
            Control::Abort { module, reason } => {
                let r = self.request(pb::AbortDeploymentRequest { module, reason });
                self.inner.abort_deployment(r).await
            }
            Control::Split { module, percent_b } => {
                let r = self.request(pb::SetSplitRequest { module, percent_b });
                self.inner.set_split(r).await
            }
        };
        reply.map(tonic::Response::into_inner)
    }

    /// One module's deployment status.
    pub async fn deployment(
        &mut self,
        module: &str,
    ) -> Result<pb::DeploymentStatus, tonic::Status> {
        let r = self.request(pb::DeploymentRequest {
            module: module.into(),
        });
        self.inner
            .get_deployment(r)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every module's deployment status.
    pub async fn deployments(&mut self) -> Result<Vec<pb::DeploymentStatus>, tonic::Status> {
        let r = self.request(pb::ListDeploymentsRequest {});
        Ok(self
            .inner
            .list_deployments(r)
            .await?
            .into_inner()
            .deployments)
    }

    /// A module's versions.
    pub async fn history(&mut self, module: &str) -> Result<Vec<pb::VersionInfo>, tonic::Status> {
        let r = self.request(pb::DeploymentRequest {
            module: module.into(),
        });
        Ok(self.inner.get_history(r).await?.into_inner().versions)
    }

    /// The deployment events of `modules` (all when empty) from now on.
    pub async fn watch_deployments(
        &mut self,
        modules: Vec<String>,
    ) -> Result<tonic::Streaming<pb::DeploymentEvent>, tonic::Status> {
        let r = self.request(pb::WatchDeploymentsRequest { modules });
        Ok(self.inner.watch_deployments(r).await?.into_inner())
    }
}

/// A deployment control RPC.
pub enum Control {
    /// The next stage now.
    Advance(String),
    /// Pause.
    Pause(String),
    /// Resume.
    Resume(String),
    /// Abort, with why.
    Abort {
        /// The module.
        module: String,
        /// Why.
        reason: String,
    },
    /// A new A/B split.
    Split {
        /// The module.
        module: String,
        /// B's percent of the keys.
        percent_b: u32,
    },
}

/// A status as one line for people: its message, and the error kind from its details.
pub fn describe(status: &tonic::Status) -> String {
    match polyglot_proto::error_detail(status) {
        Some(d) if !d.kind.is_empty() => format!("error ({}): {}", d.kind, status.message()),
        _ => format!("error ({:?}): {}", status.code(), status.message()),
    }
}
