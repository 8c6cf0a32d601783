//! The host's HTTP endpoints, beside the gRPC API: probes for an orchestrator
//! (`/health/live`, `/health/ready`, `/health/startup`, and `/health` in detail),
//! Prometheus metrics (`/metrics`), and a JSON call API for clients without a gRPC stack
//! (`POST /v1/modules/{module}/{method}`, `GET /v1/modules`, `GET /v1/modules/{module}`).
//!
//! Probes and metrics need no API key; the call API needs the host's, like the gRPC API.
//! On an address reachable from other machines the call API is refused (403) unless the
//! host has an API key; probes and metrics still answer.
//!
//! Readiness is false while the modules load, while a module marked `required` cannot
//! serve (neither it nor a fallback takes calls), and from the moment the host is told to
//! stop: before it refuses new calls, so that a load balancer stops sending them first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use polyglot_core::api::MAX_MESSAGE_SIZE;
use polyglot_core::{code, CallError, CallOptions, ModuleStatus, Reply, Runtime, Value};
use serde_json::{json, Map};
use tokio_stream::StreamExt as _;

use crate::auth::{is_exposed, Auth, API_KEY_HEADER};
use crate::lifecycle::Lifecycle;
use crate::metrics::Exporter;

/// Where the HTTP endpoints listen by default: loopback, on the port OpenTelemetry's
/// Prometheus exporters use by default.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9464";

/// The header that sets a call's deadline in milliseconds (as the `timeoutMs` query
/// parameter does; with both, the shorter counts).
pub const TIMEOUT_HEADER: &str = "x-timeout-ms";

/// The header that carries a call's routing key (as the `routingKey` query parameter
/// does): calls with the same key stay on one version while a deployment splits traffic.
pub const ROUTING_KEY_HEADER: &str = "x-routing-key";

/// The header that names a request: echoed, and the envelope's `id`; generated when
/// absent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client; a longer one is replaced by a generated
/// id (it names a request in logs, it is no payload).
const MAX_REQUEST_ID: usize = 128;

/// The most a request body's declared `content-length` reserves before its bytes come:
/// larger bodies grow as they arrive, so a client cannot reserve 64 MiB per request it
/// never sends.
const PREALLOCATE_MAX: usize = 1024 * 1024;

/// How long the server waits, once told to stop, for HTTP requests still running (the
/// runtime has drained its calls by then: what is left is writing their answers).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What every handler shares.
#[derive(Clone)]
struct Http {
    runtime: Runtime,
    life: Arc<Lifecycle>,
    auth: Auth,
    exporter: Exporter,
    /// Why the call API is refused, when it is.
    calls_refused: Option<Arc<str>>,
    ids: Arc<RequestIds>,
}

/// The HTTP server, running.
pub struct HttpServer {
    addr: SocketAddr,
    calls_refused: Option<Arc<str>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Serves the endpoints on `listener` until [`HttpServer::stop`]. The call API is
    /// refused when the address is reachable from other machines and `auth` has no key.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn start(
        listener: tokio::net::TcpListener,
        runtime: Runtime,
        life: Arc<Lifecycle>,
        auth: Auth,
        exporter: Exporter,
    ) -> anyhow::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let calls_refused = (is_exposed(&addr) && !auth.has_key()).then(|| {
            Arc::from(format!(
                "the HTTP call API is refused: this host's HTTP address {addr} is reachable \
                 from other machines and the host has no API key (start it with --api-key, \
                 or listen on a loopback address); probes and metrics still answer"
            ))
        });
        let state = Http {
            runtime,
            life,
            auth,
            exporter,
            calls_refused: calls_refused.clone(),
            ids: Arc::new(RequestIds::new()),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router(state)).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { server.await });
        Ok(HttpServer {
            addr,
            calls_refused,
            stop,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Why the call API is refused (an exposed address without an API key), if it is.
    pub fn calls_refused(&self) -> Option<&str> {
        self.calls_refused.as_deref()
    }

    /// Stops taking connections and waits (up to a few seconds) for the requests still
    /// running.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(STOP_GRACE, &mut task).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server failed"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("HTTP requests still running at the stop deadline");
                task.abort();
            }
        }
    }
}

fn router(state: Http) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(startup))
        .route("/metrics", get(metrics))
        .route("/v1/modules", get(list_modules))
        .route("/v1/modules/{module}", get(get_module))
        .route("/v1/modules/{module}/{method}", post(call))
        .fallback(not_found)
        .with_state(state)
}

// ------------------------------------------------------------------------- probes

async fn live() -> Response {
    json_response(StatusCode::OK, &json!({"status": "live"}))
}

async fn startup(State(h): State<Http>) -> Response {
    if h.life.is_started() {
        json_response(StatusCode::OK, &json!({"status": "started"}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "starting"}),
        )
    }
}

async fn ready(State(h): State<Http>) -> Response {
    let r = Readiness::of(&h);
    json_response(r.http_status(), &r.json())
}

/// Whether the host is ready to take calls, and if not, why.
struct Readiness {
    status: &'static str,
    /// `(module, why)`; no module for reasons of the whole host.
    reasons: Vec<(Option<String>, String)>,
}

impl Readiness {
    fn of(h: &Http) -> Readiness {
        if h.life.is_stopping() {
            return Readiness::not(
                "stopping",
                "the host is shutting down: it takes no new calls",
            );
        }
        if !h.life.is_started() {
            return Readiness::not("starting", "the modules are still loading");
        }
        let reasons: Vec<_> = h
            .runtime
            .modules()
            .into_iter()
            .filter(|m| m.required && h.runtime.serving(&m.name).is_none())
            .map(|m| (Some(m.name.clone()), why_not_serving(&m)))
            .collect();
        Readiness {
            status: if reasons.is_empty() {
                "ready"
            } else {
                "not_ready"
            },
            reasons,
        }
    }

    fn not(status: &'static str, why: &str) -> Readiness {
        Readiness {
            status,
            reasons: vec![(None, why.to_owned())],
        }
    }

    fn http_status(&self) -> StatusCode {
        if self.status == "ready" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    fn json(&self) -> serde_json::Value {
        let reasons: Vec<_> = self
            .reasons
            .iter()
            .map(|(module, reason)| match module {
                Some(m) => json!({"module": m, "reason": reason}),
                None => json!({"reason": reason}),
            })
            .collect();
        json!({"status": self.status, "reasons": reasons})
    }
}

/// Why a required module cannot serve: its state and health, and its last error.
fn why_not_serving(m: &ModuleStatus) -> String {
    let state = serde_json::to_value(m.state).unwrap_or_default();
    let health = serde_json::to_value(m.health).unwrap_or_default();
    let mut why = format!(
        "required, and neither it nor a fallback takes calls: it is {} and {}",
        state.as_str().unwrap_or("?"),
        health.as_str().unwrap_or("?")
    );
    if let Some(e) = &m.last_error {
        why.push_str(": ");
        why.push_str(e);
    }
    why
}

async fn health(State(h): State<Http>) -> Response {
    let r = Readiness::of(&h);
    let modules: Vec<_> = h
        .runtime
        .modules()
        .iter()
        .map(|m| module_detail(&h.runtime, m))
        .collect();
    let mut body = r.json();
    body["started"] = json!(h.life.is_started());
    body["modules"] = json!(modules);
    body["loadErrors"] = json!(h.life.load_errors());
    json_response(r.http_status(), &body)
}

/// A module's status with what serves it now and its deployment in progress.
fn module_detail(runtime: &Runtime, m: &ModuleStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    let serving = runtime.serving(&m.name);
    v["available"] = json!(serving.is_some());
    v["servedBy"] = json!(serving);
    let deployment = runtime.deployment(&m.name);
    if let Some(active) = deployment.as_ref().and_then(|d| d.active.as_ref()) {
        v["version"] = json!(active.to_string());
    }
    v["deployment"] = match deployment {
        Some(d) if d.rollout.is_some() => json!({"rollout": d.rollout, "traffic": d.traffic}),
        _ => serde_json::Value::Null,
    };
    v
}

async fn metrics(State(h): State<Http>) -> Response {
    let text = h.exporter.render(&h.runtime, &h.auth);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

// ------------------------------------------------------------------------- call API

/// The query parameters of a call.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallQuery {
    timeout_ms: Option<u64>,
    routing_key: Option<String>,
    max_attempts: Option<u32>,
}

async fn list_modules(State(h): State<Http>, headers: HeaderMap) -> Response {
    let id = h.ids.of(&headers);
    if let Err(e) = admit(&h, &headers) {
        return e.response(&id);
    }
    let modules = h.runtime.modules();
    with_id(
        json_response(StatusCode::OK, &json!({"modules": modules})),
        &id,
    )
}

async fn get_module(
    State(h): State<Http>,
    Path(module): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = h.ids.of(&headers);
    if let Err(e) = admit(&h, &headers) {
        return e.response(&id);
    }
    match h.runtime.module(&module) {
        Some(m) => with_id(
            json_response(StatusCode::OK, &module_detail(&h.runtime, &m)),
            &id,
        ),
        None => ApiError::call(&CallError::ModuleNotFound { module }).response(&id),
    }
}

async fn call(
    State(h): State<Http>,
    Path((module, method)): Path<(String, String)>,
    query: Result<Query<CallQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = h.ids.of(&headers);
    let prepared = async {
        admit(&h, &headers)?;
        let query = query.map_err(|e| {
            ApiError::invalid(&module, &method, format!("the query: {}", e.body_text()))
        })?;
        let timeout = timeout(&module, &method, &query, &headers)?;
        let params = params(&module, &method, &headers, body).await?;
        let key = query
            .routing_key
            .clone()
            .or_else(|| header_str(&headers, ROUTING_KEY_HEADER).map(str::to_owned));
        Ok::<_, ApiError>((params, timeout, key, query.max_attempts))
    };
    let (params, timeout, key, max_attempts) = match prepared.await {
        Ok(p) => p,
        Err(e) => return e.response(&id),
    };
    let opts = CallOptions {
        timeout,
        max_attempts,
        ..CallOptions::default()
    };
    let result = match &key {
        Some(k) => {
            h.runtime
                .call_keyed(&module, &method, params, k, opts)
                .await
        }
        None => h.runtime.call_with(&module, &method, params, opts).await,
    };
    match result {
        Ok(reply) => with_id(json_response(StatusCode::OK, &envelope(&id, reply)), &id),
        Err(e) => ApiError::call(&e).response(&id),
    }
}

/// The call API's gate: open on this address, the right API key, the modules loaded.
fn admit(h: &Http, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(why) = &h.calls_refused {
        return Err(ApiError::host(
            StatusCode::FORBIDDEN,
            "permission_denied",
            why.to_string(),
        ));
    }
    let authorization = header_str(headers, header::AUTHORIZATION.as_str());
    if let Err(refusal) = h
        .auth
        .verify(authorization, header_str(headers, API_KEY_HEADER))
    {
        return Err(ApiError::host(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            refusal.message().to_owned(),
        ));
    }
    if !h.life.is_started() {
        return Err(ApiError::host(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the host is still loading its modules".to_owned(),
        ));
    }
    Ok(())
}

/// The call's params from its body: JSON, binary as `{"$bytes": "<base64>"}`; an empty
/// body is `null`, as in the protocol. A body over [`MAX_MESSAGE_SIZE`] is refused before
/// it is read when its `content-length` says so, else as soon as it grows past it.
async fn params(
    module: &str,
    method: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let too_large = || {
        ApiError::host(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over the limit of {MAX_MESSAGE_SIZE} bytes"),
        )
        .about(module, method)
    };
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > MAX_MESSAGE_SIZE {
        return Err(too_large());
    }
    let mut body = body.into_data_stream();
    // What it declares, up to a bound: a declared size is no promise to send it.
    let mut bytes = Vec::with_capacity(declared.min(PREALLOCATE_MAX));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid(module, method, format!("the body cannot be read: {e}"))
        })?;
        if bytes.len() + chunk.len() > MAX_MESSAGE_SIZE {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| ApiError::invalid(module, method, format!("the body is not valid JSON: {e}")))
}

/// The call's deadline: `timeoutMs` or the `x-timeout-ms` header, the shorter of the two.
fn timeout(
    module: &str,
    method: &str,
    query: &CallQuery,
    headers: &HeaderMap,
) -> Result<Option<Duration>, ApiError> {
    let header = match header_str(headers, TIMEOUT_HEADER) {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            ApiError::invalid(
                module,
                method,
                format!("{TIMEOUT_HEADER}: {v:?} is not a number of milliseconds"),
            )
        })?),
    };
    let ms = match (query.timeout_ms, header) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if ms == Some(0) {
        return Err(ApiError::invalid(
            module,
            method,
            "the timeout must be at least 1 millisecond".to_owned(),
        ));
    }
    Ok(ms.map(Duration::from_millis))
}

/// The answer of a call: the protocol's response envelope (`id`, `result`,
/// `executionTime` in microseconds, `timestamp`) with who served it.
fn envelope(id: &str, reply: Reply) -> serde_json::Value {
    json!({
        "id": id,
        "result": reply.value.to_json(),
        "servedBy": reply.served_by,
        "version": reply.version,
        "fallback": reply.fallback,
        "instance": reply.instance,
        "executionTime": reply.execution_time.map(|d| d.as_micros() as u64),
        "timestamp": now_ms(),
    })
}

/// An error of the call API: its HTTP status and the `error` object.
struct ApiError {
    status: StatusCode,
    error: Map<String, serde_json::Value>,
}

impl ApiError {
    /// An error of the host's own (not of a call): its code is its kind in upper case.
    fn host(status: StatusCode, kind: &str, message: String) -> ApiError {
        let mut error = Map::new();
        error.insert("code".into(), json!(kind.to_uppercase()));
        error.insert("kind".into(), json!(kind));
        error.insert("message".into(), json!(message));
        ApiError { status, error }
    }

    fn invalid(module: &str, method: &str, message: String) -> ApiError {
        ApiError::host(StatusCode::BAD_REQUEST, "invalid_argument", message).about(module, method)
    }

    fn about(mut self, module: &str, method: &str) -> ApiError {
        self.error.insert("module".into(), json!(module));
        self.error.insert("method".into(), json!(method));
        self
    }

    /// A call's error: the status of the table in the README, the worker's error code
    /// for a method's own error (else the kind in upper case), and the details the gRPC
    /// API's `ErrorDetail` has.
    fn call(e: &CallError) -> ApiError {
        let mut a = ApiError::host(call_status(e), e.kind(), e.to_string());
        let (_, d) = crate::grpc::error_detail(e);
        let mut put = |k: &str, v: serde_json::Value| {
            a.error.insert(k.into(), v);
        };
        for (k, v) in [
            ("module", d.module),
            ("method", d.method),
            ("code", d.code),
            ("servedBy", d.served_by),
        ] {
            if !v.is_empty() {
                put(k, json!(v));
            }
        }
        if let Ok(data) = serde_json::from_str::<serde_json::Value>(&d.data_json) {
            put("data", data);
        }
        if !d.causes.is_empty() {
            let causes = d.causes.iter();
            put(
                "causes",
                causes
                    .map(|c| json!({"implementation": c.implementation, "reason": c.reason}))
                    .collect(),
            );
        }
        match e {
            CallError::MethodNotFound { offered, .. } => put("offered", json!(offered)),
            CallError::Timeout { timeout, .. } => {
                put("timeoutMs", json!(timeout.as_millis() as u64))
            }
            _ => {}
        }
        a
    }

    fn response(self, id: &str) -> Response {
        let mut r = json_response(
            self.status,
            &json!({"id": id, "error": serde_json::Value::Object(self.error)}),
        );
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        with_id(r, id)
    }
}

/// The HTTP status of a call's error (the table in the README).
fn call_status(e: &CallError) -> StatusCode {
    match e {
        CallError::ModuleNotFound { .. } | CallError::MethodNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        CallError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        // The worker died with the call: it may have run. Retry only if idempotent.
        CallError::WorkerExited { .. } => StatusCode::BAD_GATEWAY,
        CallError::Remote { code: c, .. } => match c.as_str() {
            code::INVALID_PARAMS => StatusCode::BAD_REQUEST,
            code::METHOD_NOT_FOUND => StatusCode::NOT_IMPLEMENTED,
            code::FRAME_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            code::SHUTTING_DOWN => StatusCode::SERVICE_UNAVAILABLE,
            code::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
            // The method ran and refused with its own code: no HTTP client or proxy
            // retries a 422 by itself (a 5xx it may, and the method might run twice).
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
        CallError::FrameTooLarge { what, .. } if *what == "request" => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        CallError::FrameTooLarge { .. } => StatusCode::BAD_GATEWAY,
        CallError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
        CallError::Unavailable { .. } | CallError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        CallError::FallbackFailed { error, .. } => call_status(error),
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::host(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint {method} {}: the endpoints are /health, /health/live, /health/ready, \
             /health/startup, /metrics, GET /v1/modules[/{{module}}] and \
             POST /v1/modules/{{module}}/{{method}}",
            uri.path()
        ),
    )
    .response("")
}

// ------------------------------------------------------------------------- plumbing

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn with_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        if !id.is_empty() {
            r.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
    }
    r
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Request ids: the client's `x-request-id` when it sent a usable one, else 16 hex
/// digits unique in this process (a counter through a bijection seeded at random, so
/// that ids of two runs do not repeat each other).
struct RequestIds {
    seed: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        use std::hash::BuildHasher;
        RequestIds {
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            next: AtomicU64::new(0),
        }
    }

    fn of(&self, headers: &HeaderMap) -> String {
        if let Some(given) = header_str(headers, REQUEST_ID_HEADER) {
            if !given.is_empty()
                && given.len() <= MAX_REQUEST_ID
                && given.bytes().all(|b| b.is_ascii_graphic())
            {
                return given.to_owned();
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Multiplying by an odd constant is a bijection on u64: no two counters collide.
        format!(
            "{:016x}",
            (n ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallbacks_error_decides_the_status() {
        let remote = CallError::Remote {
            module: "b".into(),
            method: "f".into(),
            code: "NOT_READY".into(),
            message: "model not loaded".into(),
            data: None,
        };
        assert_eq!(call_status(&remote), StatusCode::UNPROCESSABLE_ENTITY);
        let e = CallError::FallbackFailed {
            module: "a".into(),
            method: "f".into(),
            causes: Vec::new(),
            served_by: "b".into(),
            error: Box::new(remote),
        };
        assert_eq!(call_status(&e), StatusCode::UNPROCESSABLE_ENTITY);
        let a = ApiError::call(&e);
        assert_eq!(a.error["code"], json!("NOT_READY"));
        assert_eq!(a.error["kind"], json!("fallback_failed"));
        assert_eq!(
            (a.error["module"].as_str(), a.error["servedBy"].as_str()),
            (Some("a"), Some("b"))
        );
    }

    #[test]
    fn request_ids_are_the_clients_or_unique() {
        let ids = RequestIds::new();
        let mut h = HeaderMap::new();
        let a = ids.of(&h);
        let b = ids.of(&h);
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-7"));
        assert_eq!(ids.of(&h), "req-7");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        assert_ne!(ids.of(&h), "has space");
    }
}
