//! Serving a [`Handler`] over a byte stream: the handshake, then requests in and
//! responses out, many calls at once, `$health`, `$cancel` and `$shutdown`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use polyglot_protocol::{
    code, env, now_ms, salvage_id, Codec, ErrorObject, Frame, FrameReader, Handshake, Id, Request,
    Response, Value, WorkerMessage, DEFAULT_MAX_FRAME, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::context::{Cancel, Context};
use crate::error::{MethodError, ServeError};
use crate::handler::{BoxFuture, Handler, MethodResult, Worker};
use crate::output::Output;

/// How a serve loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The input reached end of file: the host is gone or closed the stream.
    InputClosed,
    /// `$shutdown`: every call in flight was answered.
    Shutdown,
}

/// The options of one serve loop, read from the host's environment by [`Worker::serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The codec after the handshake.
    pub codec: Codec,
    /// The frame size limit in bytes.
    pub max_frame: usize,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            codec: Codec::Json,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl ServeOptions {
    /// Reads `POLYGLOT_CODEC` and `POLYGLOT_MAX_FRAME`.
    ///
    /// # Errors
    /// When one holds a value this SDK does not understand.
    pub fn from_env() -> Result<ServeOptions, ServeError> {
        let mut o = ServeOptions::default();
        if let Ok(v) = std::env::var(env::CODEC) {
            o.codec = v.parse().map_err(|e: polyglot_protocol::UnknownCodec| {
                ServeError::Environment {
                    variable: env::CODEC,
                    value: v.clone(),
                    problem: e.to_string(),
                }
            })?;
        }
        if let Ok(v) = std::env::var(env::MAX_FRAME) {
            o.max_frame = v.parse().map_err(|_| ServeError::Environment {
                variable: env::MAX_FRAME,
                value: v.clone(),
                problem: "expected a number of bytes".into(),
            })?;
        }
        Ok(o)
    }
}

impl Worker {
    /// Serves this worker as the host started it: checks the environment, then speaks
    /// the protocol over stdin/stdout (or the local socket the host names) until the
    /// host shuts it down or goes away. Meant to be all of `main`.
    ///
    /// Run by hand, without the host's environment, it says what it is and exits 1.
    pub fn serve(self) -> ExitCode {
        match self.try_serve() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: {e}", self.module_name());
                ExitCode::FAILURE
            }
        }
    }

    fn module_name(&self) -> &str {
        Handler::module(self)
    }

    /// [`Worker::serve`], returning how it ended.
    ///
    /// # Errors
    /// When started without the host's environment, or the stream fails.
    pub fn try_serve(&self) -> Result<Ended, ServeError> {
        let Ok(protocol) = std::env::var(env::PROTOCOL) else {
            return Err(ServeError::NotStartedByHost {
                module: self.module_name().to_owned(),
            });
        };
        if protocol != PROTOCOL_VERSION.to_string() {
            return Err(ServeError::Environment {
                variable: env::PROTOCOL,
                value: protocol,
                problem: format!("this worker speaks protocol version {PROTOCOL_VERSION}"),
            });
        }
        let options = ServeOptions::from_env()?;
        let transport = std::env::var(env::TRANSPORT).unwrap_or_else(|_| "stdio".into());
        // A standalone gRPC worker is not the host's child: it must not die with its parent.
        if std::env::var_os(env::GRPC_LISTEN).is_none() || transport != "grpc" {
            crate::stdio::die_with_parent();
        }
        let runtime = if self.thread_count() > 1 {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.thread_count())
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        };
        let handler: Arc<dyn Handler> = Arc::new(self.clone());
        match transport.as_str() {
            "stdio" => runtime.block_on(async {
                let (input, output) = crate::stdio::protocol_streams()?;
                serve_io(handler, options, input, output).await
            }),
            "socket" => {
                let path = std::env::var(env::SOCKET).map_err(|_| ServeError::Environment {
                    variable: env::SOCKET,
                    value: String::new(),
                    problem: "the socket transport needs the socket's path".into(),
                })?;
                runtime.block_on(async {
                    let stream = tokio::net::UnixStream::connect(&path).await?;
                    let (r, w) = stream.into_split();
                    serve_io(handler, options, r, w).await
                })
            }
            #[cfg(feature = "grpc")]
            "grpc" => runtime.block_on(crate::grpc::serve(handler, options)),
            #[cfg(not(feature = "grpc"))]
            "grpc" => Err(ServeError::Environment {
                variable: env::TRANSPORT,
                value: transport.clone(),
                problem: "this worker was built without the polyglot-worker `grpc` feature".into(),
            }),
            other => Err(ServeError::Environment {
                variable: env::TRANSPORT,
                value: other.to_owned(),
                problem: "expected \"stdio\", \"socket\" or \"grpc\"".into(),
            }),
        }
    }
}

/// The handshake `handler` sends for `codec`.
pub fn handshake_for(handler: &dyn Handler, codec: Codec) -> Handshake {
    Handshake {
        protocol: u64::from(PROTOCOL_VERSION),
        module: handler.module().to_owned(),
        version: handler.version().to_owned(),
        language: Some("rust".into()),
        codec,
        methods: handler.methods(),
        max_concurrency: handler.max_concurrency(),
        pid: Some(std::process::id()),
        transport: None,
        address: None,
    }
}

struct InFlight {
    abort: Option<AbortHandle>,
    cancel: Arc<Cancel>,
}

struct Shared {
    handler: Arc<dyn Handler>,
    output: Output,
    /// Calls running, by id. Whoever removes an entry answers that call, exactly once.
    calls: Mutex<HashMap<Id, InFlight>>,
    idle: Notify,
}

/// Serves `handler` over any byte stream: writes the handshake, then answers requests
/// until the input ends or `$shutdown` is answered. Used by [`Worker::serve`] for stdio
/// and sockets, and directly by tests.
///
/// # Errors
/// When reading or writing the stream fails.
pub async fn serve_io<R, W>(
    handler: Arc<dyn Handler>,
    options: ServeOptions,
    input: R,
    output_stream: W,
) -> Result<Ended, ServeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let handshake = handshake_for(handler.as_ref(), options.codec);
    serve_stream(handler, options, handshake, input, output_stream).await
}

/// [`serve_io`] with the handshake given (a gRPC session's names the transport).
pub(crate) async fn serve_stream<R, W>(
    handler: Arc<dyn Handler>,
    options: ServeOptions,
    handshake: Handshake,
    mut input: R,
    output_stream: W,
) -> Result<Ended, ServeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let codec = options.codec;
    let output = Output::new(codec, options.max_frame);
    output.send_raw(handshake.to_line().as_bytes());
    let writer = {
        let output = output.clone();
        tokio::spawn(async move { output.run_writer(output_stream).await })
    };
    let shared = Arc::new(Shared {
        handler,
        output: output.clone(),
        calls: Mutex::new(HashMap::new()),
        idle: Notify::new(),
    });
    let mut reader = FrameReader::new(codec, options.max_frame);
    let mut shutting_down = false;
    let ended = loop {
        // After `$shutdown`, keep reading (new calls are answered SHUTTING_DOWN, `$cancel`
        // still works) until every call held is answered.
        let n = if shutting_down {
            tokio::select! {
                r = input.read(reader.read_buf()) => r?,
                () = wait_idle(&shared) => break Ended::Shutdown,
            }
        } else {
            input.read(reader.read_buf()).await?
        };
        if n == 0 {
            if let Err(e) = reader.finish() {
                eprintln!("polyglot worker: input ended inside a frame: {e}");
            }
            if shutting_down {
                // The host may close the input right after `$shutdown`: still drain.
                wait_idle(&shared).await;
                break Ended::Shutdown;
            }
            break Ended::InputClosed;
        }
        reader.filled(n);
        while let Some(frame) = reader.next_frame() {
            match frame {
                Frame::Data(bytes) => match Request::decode(codec, bytes) {
                    Ok(req) => dispatch(&shared, req, &mut shutting_down),
                    Err(e) => match salvage_id(codec, bytes) {
                        Some(id) => answer(
                            &shared.output,
                            id,
                            Err(ErrorObject::new(code::INVALID_REQUEST, e.to_string())),
                            None,
                        ),
                        None => eprintln!("polyglot worker: dropped an invalid request: {e}"),
                    },
                },
                Frame::TooLarge { size, id } => match id {
                    Some(id) => answer(
                        &shared.output,
                        id,
                        Err(ErrorObject::new(
                            code::FRAME_TOO_LARGE,
                            format!(
                                "the request is {size} bytes, over the frame limit of {} bytes",
                                options.max_frame
                            ),
                        )),
                        None,
                    ),
                    None => eprintln!(
                        "polyglot worker: dropped a {size}-byte request over the frame limit"
                    ),
                },
            }
        }
    };
    if ended == Ended::InputClosed {
        for (_, call) in shared.calls.lock().expect("calls lock").drain() {
            if let Some(a) = call.abort {
                a.abort();
            }
        }
    }
    output.close();
    match writer.await {
        Ok(result) => result?,
        Err(e) => return Err(ServeError::Io(std::io::Error::other(e))),
    }
    Ok(ended)
}

async fn wait_idle(shared: &Shared) {
    loop {
        let idle = shared.idle.notified();
        if shared.calls.lock().expect("calls lock").is_empty() {
            return;
        }
        idle.await;
    }
}

/// Handles one request.
fn dispatch(shared: &Arc<Shared>, req: Request, shutting_down: &mut bool) {
    let Request {
        id, method, params, ..
    } = req;
    match method.as_str() {
        "$shutdown" => {
            *shutting_down = true;
            if let Some(id) = id {
                answer(&shared.output, id, Ok(Value::Null), None);
            }
        }
        "$cancel" => {
            cancel(shared, &params);
            if let Some(id) = id {
                answer(&shared.output, id, Ok(Value::Null), None);
            }
        }
        _ => {
            let Some(id) = id else {
                if !method.starts_with('$') && !*shutting_down {
                    // A notification: run it, answer nothing.
                    let fut = shared
                        .handler
                        .call(&method, params, Context::detached(&method));
                    spawn_notification(method.into(), fut);
                }
                return;
            };
            let refusal = if *shutting_down {
                Some(ErrorObject::new(
                    code::SHUTTING_DOWN,
                    format!("the worker is shutting down and takes no new calls ({method})"),
                ))
            } else if method.starts_with('$') && method != "$health" {
                Some(ErrorObject::new(
                    code::METHOD_NOT_FOUND,
                    format!("{method:?} is not a reserved method this worker knows"),
                ))
            } else if shared.calls.lock().expect("calls lock").contains_key(&id) {
                Some(ErrorObject::new(
                    code::INVALID_REQUEST,
                    format!("id {id} is already in use by a call that is still running"),
                ))
            } else {
                None
            };
            if let Some(e) = refusal {
                answer(&shared.output, id, Err(e), None);
                return;
            }
            let method: Arc<str> = Arc::from(method);
            let cancel: Arc<Cancel> = Arc::default();
            let fut = if &*method == "$health" {
                shared.handler.health()
            } else {
                let ctx = Context {
                    id: Some(id.clone()),
                    method: method.clone(),
                    output: Some(shared.output.clone()),
                    progress: None,
                    cancel: cancel.clone(),
                };
                shared.handler.call(&method, params, ctx)
            };
            spawn_call(shared, id, fut, cancel);
        }
    }
}

/// `$cancel`: stops the call and answers it `CANCELLED` (an unknown id is ignored).
fn cancel(shared: &Shared, params: &Value) {
    let target: Option<Id> = match params.get("id") {
        Some(Value::String(s)) => Some(Id::Str(s.clone())),
        Some(v) => v.as_u64().map(Id::Uint).or_else(|| v.as_i64().map(Id::Int)),
        None => None,
    };
    let Some(id) = target else { return };
    let call = shared.calls.lock().expect("calls lock").remove(&id);
    if let Some(call) = call {
        call.cancel.cancel();
        if let Some(a) = call.abort {
            a.abort();
        }
        answer(
            &shared.output,
            id,
            Err(ErrorObject::new(code::CANCELLED, "cancelled by the host")),
            None,
        );
        shared.idle.notify_waiters();
    }
}

fn spawn_notification(method: Arc<str>, fut: BoxFuture<MethodResult>) {
    tokio::spawn(async move {
        if let Err(e) = CatchUnwind(fut).await {
            eprintln!("polyglot worker: notification {method} failed: {e}");
        }
    });
}

fn spawn_call(shared: &Arc<Shared>, id: Id, fut: BoxFuture<MethodResult>, cancel: Arc<Cancel>) {
    let started = Instant::now();
    let mut calls = shared.calls.lock().expect("calls lock");
    let task = {
        let shared = shared.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let outcome = CatchUnwind(fut).await;
            let took = started.elapsed().as_micros() as u64;
            let mine = shared
                .calls
                .lock()
                .expect("calls lock")
                .remove(&id)
                .is_some();
            if mine {
                answer(
                    &shared.output,
                    id,
                    outcome.map_err(ErrorObject::from),
                    Some(took),
                );
                shared.idle.notify_waiters();
            }
        })
    };
    calls.insert(
        id,
        InFlight {
            abort: Some(task.abort_handle()),
            cancel,
        },
    );
}

fn answer(output: &Output, id: Id, outcome: Result<Value, ErrorObject>, took_us: Option<u64>) {
    output.send(&WorkerMessage::Response(Response {
        id,
        outcome,
        timestamp: Some(now_ms()),
        execution_time_us: took_us,
    }));
}

/// Turns a panic inside a method into an `INTERNAL` error for that call.
pub(crate) struct CatchUnwind(pub(crate) BoxFuture<MethodResult>);

impl Future for CatchUnwind {
    type Output = MethodResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<MethodResult> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Poll::Ready(Err(MethodError::internal(format!(
                    "the method panicked: {text}"
                ))))
            }
        }
    }
}
