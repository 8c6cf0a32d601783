//! [`Backend`]: what a Python `Runtime` or `Client` talks to, an embedded
//! `polyglot_core::Runtime` or a running host over gRPC, behind one set of async
//! operations. Both answer in the API's messages (an embedded runtime's written by
//! [`polyglot_core::api`], as a host writes them; `model.rs` makes them dicts) and fail
//! with the same [`Failure`] kinds, so the Python classes above them share every method.

use std::path::Path;
use std::time::Duration;

use polyglot_core::api;
use polyglot_core::{CallError, CallOptions, DeploymentError, Manifest, Value, VersionMeta};
use polyglot_proto::v1 as pb;
use polyglot_proto::v1::runtime_client::RuntimeClient;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::errors::{deployment_failure, status_failure, Failure};
use crate::model;

/// Who a deployment's history names when the caller does not say.
pub const DEFAULT_BY: &str = "python";

/// How many events an event stream holds for a consumer that has not read them yet:
/// the runtime's own broadcast buffer, so a burst the runtime keeps fits here too.
pub const EVENT_QUEUE: usize = polyglot_core::EVENT_BUFFER;

/// A gRPC deadline beyond a call's own timeout: the host's precise `Timeout` error
/// arrives first, and a host that stopped answering still fails the call.
const GRPC_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Where calls and operations go.
#[derive(Clone)]
pub enum Backend {
    /// A runtime in this process.
    Embedded(polyglot_core::Runtime),
    /// A running `polyglot-host serve`.
    Remote(Box<Remote>),
}

/// A client of a host's Runtime API that sends the API key with every request.
#[derive(Clone)]
pub struct Remote {
    client: RuntimeClient<Channel>,
    key: Option<MetadataValue<Ascii>>,
    /// Where the host is.
    pub url: String,
}

/// One call.
pub struct CallArgs {
    /// The module.
    pub module: String,
    /// The method.
    pub method: String,
    /// The params: an array of positional ones, or whatever the caller passed whole.
    pub params: Value,
    /// The deadline, instead of the module's.
    pub timeout: Option<Duration>,
    /// The key that keeps a caller on one version while a deployment splits traffic.
    pub routing_key: Option<String>,
}

/// A call's result and who served it.
pub struct ReplyData {
    /// The result.
    pub value: Value,
    /// The implementation that served it.
    pub served_by: String,
    /// Its version.
    pub version: String,
    /// Whether a fallback served it.
    pub fallback: bool,
    /// The worker instance that ran it.
    pub instance: u64,
    /// Time spent in the method, as the worker measured it.
    pub execution_time: Option<Duration>,
}

/// A deployment control.
pub enum Control {
    /// The next stage now.
    Advance,
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// End it, with why: the traffic goes back.
    Abort(String),
    /// A new A/B split: B's percent of the keys.
    Split(u32),
}

/// What an event stream yields: an event as a dict, or the error that ended it.
pub type EventItem = Result<Value, Failure>;

impl Remote {
    /// Connects to `url` (`http://host:port`, or `https://` trusting the public roots and
    /// the PEM certificate `ca`), waiting at most `timeout`.
    ///
    /// # Errors
    /// A `connection` failure: a bad URL, an unreadable CA file, nothing answering.
    pub async fn connect(
        url: String,
        api_key: Option<String>,
        ca: Option<std::path::PathBuf>,
        timeout: Duration,
    ) -> Result<Remote, Failure> {
        let conn = |m: String| Failure::new("connection", m).with("url", url.as_str());
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| conn(format!("{url:?} is not a URL: {e}")))?
            .connect_timeout(timeout);
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(ca) = &ca {
                let pem = std::fs::read(ca).map_err(|e| {
                    conn(format!(
                        "cannot read the CA certificate {}: {e}",
                        ca.display()
                    ))
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| conn(format!("TLS to {url}: {e}")))?;
        } else if ca.is_some() {
            return Err(conn(format!(
                "tls_ca is for https:// URLs; {url} is plain text"
            )));
        }
        let channel = endpoint.connect().await.map_err(|e| {
            conn(format!(
                "cannot connect to {url}: {}",
                polyglot_core::error_chain(&e)
            ))
        })?;
        // Params and results up to the size a host accepts and sends (not tonic's 4 MiB):
        // a larger call is refused here, before it is sent.
        let client = api::runtime_client(channel);
        let key = api_key
            .map(|k| format!("Bearer {k}").parse())
            .transpose()
            .map_err(|_| conn("the API key has characters a header cannot carry".into()))?;
        Ok(Remote { client, key, url })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(k) = &self.key {
            req.metadata_mut().insert("authorization", k.clone());
        }
        req
    }
}

fn grpc(e: tonic::Status) -> Failure {
    status_failure(&e)
}

impl Backend {
    /// Runs one call.
    pub async fn call(self, args: CallArgs) -> Result<ReplyData, Failure> {
        match self {
            Backend::Embedded(rt) => {
                let opts = CallOptions {
                    timeout: args.timeout,
                    ..CallOptions::default()
                };
                let reply = match &args.routing_key {
                    Some(key) => {
                        rt.call_keyed(&args.module, &args.method, args.params, key, opts)
                            .await
                    }
                    None => {
                        rt.call_with(&args.module, &args.method, args.params, opts)
                            .await
                    }
                }
                .map_err(Failure::from)?;
                Ok(ReplyData {
                    value: reply.value,
                    served_by: reply.served_by,
                    version: reply.version,
                    fallback: reply.fallback,
                    instance: reply.instance as u64,
                    execution_time: reply.execution_time,
                })
            }
            Backend::Remote(mut r) => {
                let msg = pb::CallRequest {
                    module: args.module,
                    method: args.method,
                    params: args.params.encode(polyglot_core::Codec::Msgpack),
                    codec: pb::Codec::Msgpack as i32,
                    timeout_ms: args.timeout.map(|t| t.as_millis() as u64),
                    routing_key: args.routing_key.unwrap_or_default(),
                    max_attempts: None,
                };
                let mut req = r.request(msg);
                if let Some(t) = args.timeout {
                    req.set_timeout(t + GRPC_DEADLINE_MARGIN);
                }
                let res = r.client.call(req).await.map_err(grpc)?.into_inner();
                let codec = if res.codec == pb::Codec::Msgpack as i32 {
                    polyglot_core::Codec::Msgpack
                } else {
                    polyglot_core::Codec::Json
                };
                let value = Value::decode(codec, &res.result).map_err(|e| {
                    Failure::internal(format!("the host's result does not decode: {e}"))
                })?;
                Ok(ReplyData {
                    value,
                    served_by: res.served_by,
                    version: res.version,
                    fallback: res.fallback,
                    instance: u64::from(res.instance),
                    execution_time: (res.execution_time_us > 0)
                        .then(|| Duration::from_micros(res.execution_time_us)),
                })
            }
        }
    }

    /// Every loaded module, sorted by name.
    pub async fn modules(self) -> Result<Vec<pb::ModuleInfo>, Failure> {
        match self {
            Backend::Embedded(rt) => Ok(rt.modules().iter().map(api::module_info).collect()),
            Backend::Remote(mut r) => {
                let req = r.request(pb::ListModulesRequest {});
                Ok(r.client
                    .list_modules(req)
                    .await
                    .map_err(grpc)?
                    .into_inner()
                    .modules)
            }
        }
    }

    /// One module.
    pub async fn module(self, name: String) -> Result<pb::ModuleInfo, Failure> {
        match self {
            Backend::Embedded(rt) => rt
                .module(&name)
                .map(|m| api::module_info(&m))
                .ok_or_else(|| CallError::ModuleNotFound { module: name }.into()),
            Backend::Remote(mut r) => {
                let req = r.request(pb::GetModuleRequest { module: name });
                Ok(r.client.get_module(req).await.map_err(grpc)?.into_inner())
            }
        }
    }

    /// Reloads a module from its folder without downtime.
    pub async fn reload(self, name: String) -> Result<pb::ReloadModuleResponse, Failure> {
        match self {
            Backend::Embedded(rt) => {
                let r = rt.reload(&name).await.map_err(Failure::from)?;
                Ok(pb::ReloadModuleResponse {
                    module: r.module,
                    old_version: r.old_version,
                    new_version: r.new_version,
                })
            }
            Backend::Remote(mut r) => {
                let req = r.request(pb::ReloadModuleRequest { module: name });
                Ok(r.client
                    .reload_module(req)
                    .await
                    .map_err(grpc)?
                    .into_inner())
            }
        }
    }

    /// Deploys the version in folder `path` of `module` by `strategy`.
    pub async fn deploy(
        self,
        module: String,
        path: String,
        strategy: pb::Strategy,
        by: String,
        why: String,
    ) -> Result<pb::DeployResponse, Failure> {
        match self {
            Backend::Embedded(rt) => {
                let invalid = |code: &str, message: String| {
                    Failure::new("invalid_argument", message)
                        .with("module", module.as_str())
                        .with("code", code)
                };
                let manifest = Manifest::load(Path::new(&path))
                    .map_err(|e| invalid("manifest", e.to_string()))?;
                let strategy = api::strategy(Some(&strategy), manifest.instances)
                    .map_err(|m| invalid("invalid_strategy", m))?;
                let meta = VersionMeta::new(by, why);
                let version = rt
                    .deploy(&module, manifest, strategy, meta)
                    .await
                    .map_err(|e| deployment_failure(&module, &e))?;
                Ok(pb::DeployResponse {
                    status: rt
                        .deployment(&module)
                        .map(|s| api::deployment_status(&rt, &s)),
                    module,
                    version: version.to_string(),
                })
            }
            Backend::Remote(mut r) => {
                let req = r.request(pb::DeployRequest {
                    module,
                    path,
                    strategy: Some(strategy),
                    by,
                    why,
                });
                Ok(r.client.deploy(req).await.map_err(grpc)?.into_inner())
            }
        }
    }

    /// Rolls `module` back, to `to` or the last version known healthy.
    pub async fn rollback(
        self,
        module: String,
        to: Option<String>,
    ) -> Result<pb::RollbackResponse, Failure> {
        match self {
            Backend::Embedded(rt) => {
                let version = rt
                    .rollback(&module, to.as_deref())
                    .await
                    .map_err(|e| deployment_failure(&module, &e))?;
                Ok(pb::RollbackResponse {
                    status: rt
                        .deployment(&module)
                        .map(|s| api::deployment_status(&rt, &s)),
                    module,
                    version: version.to_string(),
                })
            }
            Backend::Remote(mut r) => {
                let req = r.request(pb::RollbackRequest {
                    module,
                    to: to.unwrap_or_default(),
                });
                Ok(r.client.rollback(req).await.map_err(grpc)?.into_inner())
            }
        }
    }

    /// Advances, pauses, resumes, aborts or re-splits `module`'s deployment; its status
    /// after.
    pub async fn control(
        self,
        module: String,
        control: Control,
    ) -> Result<pb::DeploymentStatus, Failure> {
        match self {
            Backend::Embedded(rt) => {
                let result = match control {
                    Control::Advance => rt.advance(&module).await,
                    Control::Pause => rt.pause(&module).await,
                    Control::Resume => rt.resume(&module).await,
                    Control::Abort(why) => rt.abort(&module, &why).await,
                    Control::Split(p) => match u8::try_from(p) {
                        Ok(p) => rt.set_split(&module, p).await,
                        Err(_) => {
                            return Err(Failure::new(
                                "invalid_argument",
                                format!("percent_b: {p} is not between 1 and 99"),
                            )
                            .with("module", module.as_str()))
                        }
                    },
                };
                result.map_err(|e| deployment_failure(&module, &e))?;
                embedded_status(&rt, &module)
            }
            Backend::Remote(mut r) => {
                let reply = match control {
                    Control::Advance => {
                        let req = r.request(pb::DeploymentRequest { module });
                        r.client.advance_deployment(req).await
                    }
                    Control::Pause => {
                        let req = r.request(pb::DeploymentRequest { module });
                        r.client.pause_deployment(req).await
                    }
                    Control::Resume => {
                        let req = r.request(pb::DeploymentRequest { module });
                        r.client.resume_deployment(req).await
                    }
                    Control::Abort(reason) => {
                        let req = r.request(pb::AbortDeploymentRequest { module, reason });
                        r.client.abort_deployment(req).await
                    }
                    Control::Split(percent_b) => {
                        let req = r.request(pb::SetSplitRequest { module, percent_b });
                        r.client.set_split(req).await
                    }
                };
                Ok(reply.map_err(grpc)?.into_inner())
            }
        }
    }

    /// `module`'s deployment now.
    pub async fn deployment(self, module: String) -> Result<pb::DeploymentStatus, Failure> {
        match self {
            Backend::Embedded(rt) => embedded_status(&rt, &module),
            Backend::Remote(mut r) => {
                let req = r.request(pb::DeploymentRequest { module });
                Ok(r.client
                    .get_deployment(req)
                    .await
                    .map_err(grpc)?
                    .into_inner())
            }
        }
    }

    /// Every module's deployment, sorted by module.
    pub async fn deployments(self) -> Result<Vec<pb::DeploymentStatus>, Failure> {
        match self {
            Backend::Embedded(rt) => Ok(rt
                .deployments()
                .iter()
                .map(|s| api::deployment_status(&rt, s))
                .collect()),
            Backend::Remote(mut r) => {
                let req = r.request(pb::ListDeploymentsRequest {});
                Ok(r.client
                    .list_deployments(req)
                    .await
                    .map_err(grpc)?
                    .into_inner()
                    .deployments)
            }
        }
    }

    /// `module`'s versions, in the order they were staged.
    pub async fn history(self, module: String) -> Result<Vec<pb::VersionInfo>, Failure> {
        match self {
            Backend::Embedded(rt) => match rt.history(&module) {
                Some(h) => Ok(h.iter().map(api::version_info).collect()),
                None => Err(not_deployable(&rt, &module)),
            },
            Backend::Remote(mut r) => {
                let req = r.request(pb::DeploymentRequest { module });
                Ok(r.client
                    .get_history(req)
                    .await
                    .map_err(grpc)?
                    .into_inner()
                    .versions)
            }
        }
    }

    /// The runtime's and the deployments' events of `modules` (all when empty) from now
    /// on, in one queue. Returns once both are subscribed: an operation started after
    /// this shows in the stream. The task filling the queue ends when the queue is
    /// dropped.
    pub async fn watch(
        self,
        modules: Vec<String>,
    ) -> Result<(mpsc::Receiver<EventItem>, tokio::task::AbortHandle), Failure> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = match self {
            Backend::Embedded(rt) => {
                let events = rt.subscribe();
                let deploys = rt.subscribe_deployments();
                tokio::spawn(forward_embedded(events, deploys, modules, tx))
            }
            Backend::Remote(mut r) => {
                let req = r.request(pb::WatchEventsRequest {
                    modules: modules.clone(),
                });
                let events = r.client.watch_events(req).await.map_err(grpc)?.into_inner();
                let req = r.request(pb::WatchDeploymentsRequest { modules });
                let deploys = r
                    .client
                    .watch_deployments(req)
                    .await
                    .map_err(grpc)?
                    .into_inner();
                tokio::spawn(forward_remote(events, deploys, tx))
            }
        };
        Ok((rx, task.abort_handle()))
    }

    /// Stops an embedded runtime: its calls drain, its workers stop. A remote backend
    /// has nothing to stop (the host serves on).
    pub async fn shutdown(self) -> Result<(), Failure> {
        if let Backend::Embedded(rt) = self {
            rt.shutdown().await;
        }
        Ok(())
    }
}

/// The status of a module that must have a deployment.
fn embedded_status(
    rt: &polyglot_core::Runtime,
    module: &str,
) -> Result<pb::DeploymentStatus, Failure> {
    rt.deployment(module)
        .map(|s| api::deployment_status(rt, &s))
        .ok_or_else(|| not_deployable(rt, module))
}

/// Why a module has no deployment: not loaded, or served in-process.
fn not_deployable(rt: &polyglot_core::Runtime, module: &str) -> Failure {
    let e = if rt.module(module).is_some() {
        DeploymentError::InProcess(module.to_owned())
    } else {
        DeploymentError::NotFound(module.to_owned())
    };
    deployment_failure(module, &e)
}

/// An event telling a consumer that it fell behind and `missed` events were dropped.
fn lagged(category: &str, missed: u64) -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("category".to_owned(), Value::from(category));
    m.insert("type".to_owned(), Value::from("lagged"));
    m.insert("missed".to_owned(), Value::Uint(missed));
    m.insert("timestamp_ms".to_owned(), Value::Uint(now_ms()));
    Value::Map(m)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn forward_embedded(
    mut events: broadcast::Receiver<polyglot_core::RuntimeEvent>,
    mut deploys: broadcast::Receiver<polyglot_core::DeployEvent>,
    modules: Vec<String>,
    tx: mpsc::Sender<EventItem>,
) {
    use broadcast::error::RecvError;
    let wanted = |m: &str| modules.is_empty() || modules.iter().any(|x| x == m);
    let (mut events_open, mut deploys_open) = (true, true);
    while events_open || deploys_open {
        let item = tokio::select! {
            e = events.recv(), if events_open => match e {
                Ok(e) if wanted(&e.module) => model::event_value(&api::runtime_event(e)),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => lagged("runtime", n),
                Err(RecvError::Closed) => { events_open = false; continue }
            },
            d = deploys.recv(), if deploys_open => match d {
                Ok(d) if wanted(&d.deployment) => {
                    model::deploy_event_value(&api::deployment_event(&d))
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => lagged("deployment", n),
                Err(RecvError::Closed) => { deploys_open = false; continue }
            },
            () = tx.closed() => return,
        };
        if tx.send(Ok(item)).await.is_err() {
            return;
        }
    }
}

async fn forward_remote(
    mut events: tonic::Streaming<pb::Event>,
    mut deploys: tonic::Streaming<pb::DeploymentEvent>,
    tx: mpsc::Sender<EventItem>,
) {
    let (mut events_open, mut deploys_open) = (true, true);
    while events_open || deploys_open {
        let item = tokio::select! {
            e = events.next(), if events_open => match e {
                Some(Ok(e)) => Ok(model::event_value(&e)),
                Some(Err(s)) => Err(grpc(s)),
                None => { events_open = false; continue }
            },
            d = deploys.next(), if deploys_open => match d {
                Some(Ok(d)) => Ok(model::deploy_event_value(&d)),
                Some(Err(s)) => Err(grpc(s)),
                None => { deploys_open = false; continue }
            },
            () = tx.closed() => return,
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}
