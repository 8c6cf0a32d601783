//! `--connect URL`: the `call` and `modules` commands against a running host.

use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A Runtime API client that sends the API key with every call.
pub struct Client {
    inner: RuntimeClient<Channel>,
    key: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to `url` (`http://127.0.0.1:50051`).
    ///
    /// # Errors
    /// When the URL is invalid or nothing answers there.
    pub async fn connect(url: &str, api_key: Option<&str>) -> anyhow::Result<Client> {
        let inner = RuntimeClient::connect(url.to_owned())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
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
}

/// A status as one line for people: its message, and the error kind from its details.
pub fn describe(status: &tonic::Status) -> String {
    match pb::ErrorDetail::decode(status.details()) {
        Ok(d) if !d.kind.is_empty() => format!("error ({}): {}", d.kind, status.message()),
        _ => format!("error ({:?}): {}", status.code(), status.message()),
    }
}
