//! The gRPC API: the `polyglot.v1.Runtime` service over a [`Runtime`], the standard
//! `grpc.health.v1` service (one entry per module plus the overall one), server
//! reflection, and API keys (`auth`) checked on every Runtime call.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use polyglot_core::api::{self, module_info, MAX_MESSAGE_SIZE};
use polyglot_core::{
    CallError, CallOptions, HealthState, LoadError, Reply, Runtime, RuntimeEvent, Value,
};
use polyglot_proto::v1 as pb;

use crate::auth::{is_exposed, Auth, API_KEY_HEADER, AUTHORIZATION};
use crate::deployments;
use crate::lifecycle::Lifecycle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::Stream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

/// How often module health is copied into the gRPC health service: often enough for a
/// probe to see a failed module within a second.
const HEALTH_REFRESH: Duration = Duration::from_millis(500);

/// The gRPC service name of the Runtime API, also its entry in the health service.
pub const RUNTIME_SERVICE: &str = "polyglot.v1.Runtime";

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The `polyglot.v1.Runtime` service.
pub struct Api {
    runtime: Runtime,
    /// False on an API reachable from other machines without an API key: deployments
    /// build and start programs on this machine, so they are refused there.
    deployments_allowed: bool,
}

impl Api {
    fn may_deploy(&self) -> Result<(), Status> {
        if self.deployments_allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "deployments are refused: this host's API is reachable from other machines \
                 and has no API key, and a deployment builds and starts programs on the host \
                 (start it with --api-key, or listen on a loopback address)",
            ))
        }
    }
}

#[tonic::async_trait]
impl pb::runtime_server::Runtime for Api {
    async fn call(
        &self,
        req: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        let deadline = grpc_timeout(req.metadata());
        let r = req.into_inner();
        let (codec, params, timeout) = prepare(&r, deadline)?;
        let opts = CallOptions {
            timeout,
            max_attempts: r.max_attempts,
            ..CallOptions::default()
        };
        let reply = routed(&self.runtime, &r, params, opts)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(response(codec, reply)?))
    }

    type CallStreamStream = EventStream<pb::CallEvent>;

    async fn call_stream(
        &self,
        req: Request<pb::CallRequest>,
    ) -> Result<Response<Self::CallStreamStream>, Status> {
        let deadline = grpc_timeout(req.metadata());
        let r = req.into_inner();
        let (codec, params, timeout) = prepare(&r, deadline)?;
        let (ptx, mut prx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(64);
        let runtime = self.runtime.clone();
        tokio::spawn(async move {
            let opts = CallOptions {
                timeout,
                progress: Some(ptx),
                max_attempts: r.max_attempts,
            };
            let call = routed(&runtime, &r, params, opts);
            tokio::pin!(call);
            let progress_event = |v: Value| -> Result<pb::CallEvent, Status> {
                Ok(pb::CallEvent {
                    event: Some(pb::call_event::Event::Progress(encode(codec, &v))),
                })
            };
            let outcome = loop {
                tokio::select! {
                    biased;
                    Some(p) = prx.recv() => {
                        if tx.send(progress_event(p)).await.is_err() {
                            return; // the client went away: dropping the call cancels it
                        }
                    }
                    outcome = &mut call => break outcome,
                }
            };
            // Progress sent before the answer is already queued: deliver it first.
            while let Ok(p) = prx.try_recv() {
                let _ = tx.send(progress_event(p)).await;
            }
            let last = outcome
                .map_err(|e| status_of(&e))
                .and_then(|reply| response(codec, reply))
                .map(|res| pb::CallEvent {
                    event: Some(pb::call_event::Event::Result(res)),
                });
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_modules(
        &self,
        _req: Request<pb::ListModulesRequest>,
    ) -> Result<Response<pb::ListModulesResponse>, Status> {
        let modules = self.runtime.modules().iter().map(module_info).collect();
        Ok(Response::new(pb::ListModulesResponse { modules }))
    }

    async fn get_module(
        &self,
        req: Request<pb::GetModuleRequest>,
    ) -> Result<Response<pb::ModuleInfo>, Status> {
        let name = req.into_inner().module;
        match self.runtime.module(&name) {
            Some(m) => Ok(Response::new(module_info(&m))),
            None => Err(status_of(&CallError::ModuleNotFound { module: name })),
        }
    }

    async fn reload_module(
        &self,
        req: Request<pb::ReloadModuleRequest>,
    ) -> Result<Response<pb::ReloadModuleResponse>, Status> {
        let name = req.into_inner().module;
        match self.runtime.reload(&name).await {
            Ok(r) => Ok(Response::new(pb::ReloadModuleResponse {
                module: r.module,
                old_version: r.old_version,
                new_version: r.new_version,
            })),
            Err(e @ LoadError::NotFound(_)) => Err(Status::not_found(e.to_string())),
            Err(e) => Err(Status::failed_precondition(format!(
                "{e} (the running version keeps serving)"
            ))),
        }
    }

    type WatchEventsStream = EventStream<pb::Event>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let only = req.into_inner().modules;
        let events = self.runtime.subscribe();
        let stream = forward(events, "event", move |e: RuntimeEvent| {
            (only.is_empty() || only.contains(&e.module)).then(|| api::runtime_event(e))
        });
        Ok(Response::new(stream))
    }

    async fn deploy(
        &self,
        req: Request<pb::DeployRequest>,
    ) -> Result<Response<pb::DeployResponse>, Status> {
        self.may_deploy()?;
        deployments::deploy(&self.runtime, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        self.may_deploy()?;
        deployments::rollback(&self.runtime, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn advance_deployment(
        &self,
        req: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        self.may_deploy()?;
        let m = req.into_inner().module;
        let r = self.runtime.advance(&m).await;
        self.control(&m, r)
    }

    async fn pause_deployment(
        &self,
        req: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        self.may_deploy()?;
        let m = req.into_inner().module;
        let r = self.runtime.pause(&m).await;
        self.control(&m, r)
    }

    async fn resume_deployment(
        &self,
        req: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        self.may_deploy()?;
        let m = req.into_inner().module;
        let r = self.runtime.resume(&m).await;
        self.control(&m, r)
    }

    async fn abort_deployment(
        &self,
        req: Request<pb::AbortDeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        self.may_deploy()?;
        let r = req.into_inner();
        let why = if r.reason.is_empty() {
            "aborted through the API"
        } else {
            &r.reason
        };
        let result = self.runtime.abort(&r.module, why).await;
        self.control(&r.module, result)
    }

    async fn set_split(
        &self,
        req: Request<pb::SetSplitRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        self.may_deploy()?;
        let r = req.into_inner();
        let Ok(percent) = u8::try_from(r.percent_b) else {
            return Err(invalid_argument(
                &r.module,
                "",
                format!("percent_b: {} is not between 1 and 99", r.percent_b),
            ));
        };
        let result = self.runtime.set_split(&r.module, percent).await;
        self.control(&r.module, result)
    }

    async fn get_deployment(
        &self,
        req: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        let m = req.into_inner().module;
        deployments::require_status(&self.runtime, &m).map(Response::new)
    }

    async fn list_deployments(
        &self,
        _req: Request<pb::ListDeploymentsRequest>,
    ) -> Result<Response<pb::ListDeploymentsResponse>, Status> {
        let deployments = self
            .runtime
            .deployments()
            .iter()
            .map(|s| api::deployment_status(&self.runtime, s))
            .collect();
        Ok(Response::new(pb::ListDeploymentsResponse { deployments }))
    }

    async fn get_history(
        &self,
        req: Request<pb::DeploymentRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let module = req.into_inner().module;
        let Some(history) = self.runtime.history(&module) else {
            return Err(deployments::not_deployable(&self.runtime, &module));
        };
        let versions = history.iter().map(api::version_info).collect();
        Ok(Response::new(pb::HistoryResponse { module, versions }))
    }

    type WatchDeploymentsStream = EventStream<pb::DeploymentEvent>;

    async fn watch_deployments(
        &self,
        req: Request<pb::WatchDeploymentsRequest>,
    ) -> Result<Response<Self::WatchDeploymentsStream>, Status> {
        let only = req.into_inner().modules;
        // Subscribed before the response: a client that watches, then deploys, sees
        // every event of its deployment.
        let events = self.runtime.subscribe_deployments();
        let stream = forward(
            events,
            "deployment event",
            move |e: polyglot_core::DeployEvent| {
                (only.is_empty() || only.contains(&e.deployment)).then(|| api::deployment_event(&e))
            },
        );
        Ok(Response::new(stream))
    }
}

impl Api {
    /// The answer of a deployment control RPC: the status after it, or its error.
    fn control(
        &self,
        module: &str,
        result: Result<(), polyglot_core::DeploymentError>,
    ) -> Result<Response<pb::DeploymentStatus>, Status> {
        result.map_err(|e| deployments::error_status(module, &e))?;
        deployments::require_status(&self.runtime, module).map(Response::new)
    }
}

/// A stream of what `pick` makes of each broadcast item it accepts, until the client goes
/// away. A watcher that falls behind misses items (logged), never slows the runtime.
fn forward<T, U>(
    mut rx: tokio::sync::broadcast::Receiver<T>,
    what: &'static str,
    pick: impl Fn(T) -> Option<U> + Send + 'static,
) -> EventStream<U>
where
    T: Clone + Send + 'static,
    U: Send + 'static,
{
    let (tx, out) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let item = match rx.recv().await {
                Ok(item) => item,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a {what} watcher fell behind and missed some");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if let Some(u) = pick(item) {
                if tx.send(Ok(u)).await.is_err() {
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(out))
}

fn prepare(
    r: &pb::CallRequest,
    deadline: Option<Duration>,
) -> Result<(pb::Codec, Value, Option<Duration>), Status> {
    let codec = pb::Codec::try_from(r.codec).unwrap_or(pb::Codec::Unspecified);
    let params = decode(codec, &r.params).map_err(|e| {
        invalid_argument(
            &r.module,
            &r.method,
            format!("the params are not valid {}: {e}", codec_name(codec)),
        )
    })?;
    let timeout = match (r.timeout_ms.map(Duration::from_millis), deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((codec, params, timeout))
}

/// Runs a call, sticky to one version of the module by its routing key when it has one.
async fn routed(
    runtime: &Runtime,
    r: &pb::CallRequest,
    params: Value,
    opts: CallOptions,
) -> Result<polyglot_core::Reply, polyglot_core::CallError> {
    if r.routing_key.is_empty() {
        runtime.call_with(&r.module, &r.method, params, opts).await
    } else {
        runtime
            .call_keyed(&r.module, &r.method, params, &r.routing_key, opts)
            .await
    }
}

fn codec_name(c: pb::Codec) -> &'static str {
    match c {
        pb::Codec::Msgpack => "MessagePack",
        _ => "JSON",
    }
}

/// The protocol's codec for an API codec (JSON unless MessagePack is named).
fn wire_codec(codec: pb::Codec) -> polyglot_core::Codec {
    match codec {
        pb::Codec::Msgpack => polyglot_core::Codec::Msgpack,
        _ => polyglot_core::Codec::Json,
    }
}

/// Params as the client sent them; empty bytes are `null`.
fn decode(codec: pb::Codec, bytes: &[u8]) -> Result<Value, String> {
    Value::decode(wire_codec(codec), bytes).map_err(|e| {
        // The parser's own words: the caller already names the codec.
        std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string())
    })
}

fn encode(codec: pb::Codec, v: &Value) -> Vec<u8> {
    v.encode(wire_codec(codec))
}

fn response(codec: pb::Codec, reply: Reply) -> Result<pb::CallResponse, Status> {
    Ok(pb::CallResponse {
        result: encode(codec, &reply.value),
        codec: if codec == pb::Codec::Msgpack {
            pb::Codec::Msgpack
        } else {
            pb::Codec::Json
        } as i32,
        served_by: reply.served_by,
        version: reply.version,
        fallback: reply.fallback,
        instance: reply.instance as u32,
        execution_time_us: reply.execution_time.map_or(0, |d| d.as_micros() as u64),
    })
}

/// The gRPC status of a call error: a deliberate code, the error's text, and an
/// [`pb::ErrorDetail`] in the details.
pub fn status_of(e: &CallError) -> Status {
    let (code, d) = error_detail(e);
    polyglot_proto::status_with_detail(code, e.to_string(), &d)
}

/// The gRPC code of a call error and its [`pb::ErrorDetail`]: its kind, the module and
/// method, a method's own error (code, message, data), why each implementation could not
/// take the call, and the fallback that took it. The HTTP API's errors say the same.
pub fn error_detail(e: &CallError) -> (Code, pb::ErrorDetail) {
    let mut d = pb::ErrorDetail {
        kind: e.kind().to_owned(),
        ..Default::default()
    };
    let code = match e {
        CallError::ModuleNotFound { module } => {
            d.module = module.clone();
            Code::NotFound
        }
        CallError::MethodNotFound { module, method, .. } => {
            (d.module, d.method) = (module.clone(), method.clone());
            Code::NotFound
        }
        CallError::Timeout { module, method, .. } => {
            (d.module, d.method) = (module.clone(), method.clone());
            Code::DeadlineExceeded
        }
        // The call reached a worker that died: it may have run. Retry only if idempotent.
        CallError::WorkerExited { module, method, .. } => {
            (d.module, d.method) = (module.clone(), method.clone());
            Code::Aborted
        }
        CallError::Remote {
            module,
            method,
            code,
            message,
            data,
        } => {
            (d.module, d.method) = (module.clone(), method.clone());
            (d.code, d.message) = (code.clone(), message.clone());
            d.data_json = data.as_ref().map(|v| v.to_string()).unwrap_or_default();
            match code.as_str() {
                polyglot_core::code::INVALID_PARAMS => Code::InvalidArgument,
                polyglot_core::code::METHOD_NOT_FOUND => Code::Unimplemented,
                polyglot_core::code::CANCELLED => Code::Cancelled,
                polyglot_core::code::FRAME_TOO_LARGE => Code::ResourceExhausted,
                _ => Code::Unknown,
            }
        }
        CallError::FrameTooLarge { module, method, .. }
        | CallError::Overloaded { module, method, .. } => {
            (d.module, d.method) = (module.clone(), method.clone());
            Code::ResourceExhausted
        }
        CallError::Unavailable {
            module,
            method,
            causes,
        } => {
            (d.module, d.method) = (module.clone(), method.clone());
            d.causes = proto_causes(causes);
            Code::Unavailable
        }
        CallError::FallbackFailed {
            module,
            method,
            causes,
            served_by,
            error,
        } => {
            let (code, inner) = error_detail(error);
            (d.module, d.method) = (module.clone(), method.clone());
            d.served_by = served_by.clone();
            d.causes = proto_causes(causes);
            (d.code, d.message, d.data_json) = (inner.code, inner.message, inner.data_json);
            code
        }
        CallError::ShuttingDown => Code::Unavailable,
    };
    (code, d)
}

fn proto_causes(causes: &[polyglot_core::Cause]) -> Vec<pb::Cause> {
    causes
        .iter()
        .map(|c| pb::Cause {
            implementation: c.implementation.clone(),
            reason: c.reason.clone(),
        })
        .collect()
}

fn invalid_argument(module: &str, method: &str, message: String) -> Status {
    let d = pb::ErrorDetail {
        kind: "invalid_argument".into(),
        module: module.into(),
        method: method.into(),
        message: message.clone(),
        ..Default::default()
    };
    polyglot_proto::status_with_detail(Code::InvalidArgument, message, &d)
}

/// The `grpc-timeout` a client set, if any (`100m`, `5S`, ...).
fn grpc_timeout(meta: &MetadataMap) -> Option<Duration> {
    let v = meta.get("grpc-timeout")?.to_str().ok()?;
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Checks the API key of a Runtime call (its `authorization` or `x-api-key` metadata).
fn check(auth: &Auth, req: Request<()>) -> Result<Request<()>, Status> {
    let header = |name: &str| req.metadata().get(name).and_then(|v| v.to_str().ok());
    match auth.verify(header(AUTHORIZATION), header(API_KEY_HEADER)) {
        Ok(()) => Ok(req),
        Err(refusal) => Err(Status::unauthenticated(refusal.message())),
    }
}

/// Serves the gRPC API on `listener` until `shutdown` completes, then stops taking new
/// RPCs and lets those in flight finish. Its health service says not serving from the
/// moment `life` is stopping.
///
/// # Errors
/// When the reflection service cannot be built or the server fails.
pub async fn serve(
    runtime: Runtime,
    listener: tokio::net::TcpListener,
    auth: Auth,
    tls: Option<Tls>,
    life: Arc<Lifecycle>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(RUNTIME_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    // Not serving from the moment the host is told to stop, before it refuses calls: a
    // gRPC readiness probe sees what `/health/ready` does.
    let stopping_task = {
        let reporter = reporter.clone();
        tokio::spawn(async move {
            life.stopping().await;
            for service in ["", RUNTIME_SERVICE] {
                reporter
                    .set_service_status(service, tonic_health::ServingStatus::NotServing)
                    .await;
            }
        })
    };
    let health_task = {
        let runtime = runtime.clone();
        let mut reporter = reporter.clone();
        tokio::spawn(async move {
            // The modules with an entry: one unloaded since (`serve --watch`) loses it.
            let mut known = std::collections::HashSet::new();
            loop {
                let modules = runtime.modules();
                for m in &modules {
                    let status = match m.health {
                        HealthState::Healthy | HealthState::Degraded => {
                            tonic_health::ServingStatus::Serving
                        }
                        HealthState::Unhealthy => tonic_health::ServingStatus::NotServing,
                    };
                    reporter.set_service_status(&m.name, status).await;
                }
                let now: std::collections::HashSet<String> =
                    modules.into_iter().map(|m| m.name).collect();
                for gone in known.difference(&now) {
                    reporter.clear_service_status(gone).await;
                }
                known = now;
                tokio::time::sleep(HEALTH_REFRESH).await;
            }
        })
    };
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(polyglot_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(polyglot_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let deployments_allowed = auth.has_key() || !is_exposed(&listener.local_addr()?);
    let api = Api {
        runtime,
        deployments_allowed,
    };
    // Calls and replies up to MAX_MESSAGE_SIZE, not tonic's 4 MiB: what a worker takes.
    let api = pb::runtime_server::RuntimeServer::new(api)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let api =
        tonic::service::interceptor::InterceptedService::new(api, move |req| check(&auth, req));
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = tls {
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(t.identity))
            .map_err(|e| {
                anyhow::anyhow!(
                    "the TLS certificate {} or its key {} cannot be used: {e}",
                    t.cert.display(),
                    t.key.display()
                )
            })?;
    }
    let result = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    health_task.abort();
    stopping_task.abort();
    result?;
    Ok(())
}

/// The host's TLS identity: a certificate chain and its key, and where they came from.
pub struct Tls {
    /// The certificate chain file.
    pub cert: std::path::PathBuf,
    /// The key file.
    pub key: std::path::PathBuf,
    identity: tonic::transport::Identity,
}

/// Reads a PEM certificate chain and its PEM private key.
///
/// # Errors
/// When a file cannot be read or is not PEM; the error names the file.
pub fn load_identity(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Tls> {
    let read = |path: &std::path::Path, what: &str| -> anyhow::Result<Vec<u8>> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read the TLS {what} {}: {e}", path.display()))?;
        if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
            anyhow::bail!(
                "the TLS {what} {} is not PEM (no -----BEGIN line)",
                path.display()
            );
        }
        Ok(bytes)
    };
    let identity =
        tonic::transport::Identity::from_pem(read(cert, "certificate")?, read(key, "private key")?);
    Ok(Tls {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        identity,
    })
}
