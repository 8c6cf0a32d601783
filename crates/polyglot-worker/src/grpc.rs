//! The gRPC transport (`docs/protocol.md`, section 10): the worker listens, announces its
//! address in its handshake line, and serves `polyglot.v1.Worker`. A `Session` runs the
//! same protocol loop as stdio ([`serve_stream`]) over the RPC's byte stream; the unary
//! RPCs call the handler directly.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyglot_proto::v1 as pb;
use polyglot_protocol::{code, env, Codec, ErrorObject, Handshake, Value};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};
use tokio_util::io::{ReaderStream, StreamReader};
use tonic::{Request, Response, Status, Streaming};

use crate::context::Context;
use crate::error::ServeError;
use crate::handler::Handler;
use crate::serve::{handshake_for, serve_stream, CatchUnwind, Ended, ServeOptions};

/// The most data a worker puts in one `Chunk`.
const CHUNK: usize = polyglot_proto::MAX_CHUNK_BYTES;
/// How long held calls may take to finish once the worker is told to stop.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The request metadata that names a session's codec.
pub use polyglot_proto::SESSION_CODEC_METADATA as CODEC_METADATA;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Serving =
    Pin<Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>>;

/// Serves `handler` over gRPC until the host goes away (stdin ends), `$shutdown`, or, for a
/// standalone worker (`POLYGLOT_GRPC_LISTEN`), SIGTERM or SIGINT.
pub(crate) async fn serve(
    handler: Arc<dyn Handler>,
    options: ServeOptions,
) -> Result<Ended, ServeError> {
    let standalone = std::env::var(env::GRPC_LISTEN).ok();
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s != Stop::Running).await;
        }
    };
    let mut handshake = handshake_for(handler.as_ref(), options.codec);
    handshake.transport = Some("grpc".into());
    let shutting_down = Arc::new(AtomicBool::new(false));
    let make_service = |handshake: Handshake| {
        let limit = options.max_frame.saturating_add(1 << 16);
        let service = Service {
            handler: handler.clone(),
            options: options.clone(),
            handshake: Arc::new(handshake),
            shutting_down: shutting_down.clone(),
            stop: stop_tx.clone(),
        };
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(
                pb::worker_server::WorkerServer::new(service)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit),
            )
    };

    // Bind, then announce: the host connects as soon as it reads the address.
    let mut _private_dir = None;
    let mut socket_file = None;
    let serving: Serving = match standalone.as_deref() {
        Some(a) if !a.starts_with("unix:") => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?;
            handshake.address = Some(l.local_addr()?.to_string());
            announce(&handshake)?;
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
            Box::pin(make_service(handshake).serve_with_incoming_shutdown(incoming, stopped))
        }
        other => {
            let path = match other.and_then(|a| a.strip_prefix("unix:")) {
                Some(p) => PathBuf::from(p),
                None => {
                    // A private folder (mode 0700) keeps other users off the socket.
                    let dir = tempfile::Builder::new()
                        .prefix("polyglot-grpc-")
                        .tempdir()?;
                    let p = dir.path().join("worker.sock");
                    _private_dir = Some(dir);
                    p
                }
            };
            let l = tokio::net::UnixListener::bind(&path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {}: {e}", path.display()),
                )
            })?;
            socket_file = Some(path.clone());
            handshake.address = Some(format!("unix:{}", path.display()));
            announce(&handshake)?;
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
            Box::pin(make_service(handshake).serve_with_incoming_shutdown(incoming, stopped))
        }
    };

    // The end: stdin closing (host-started), or a signal (standalone).
    if standalone.is_none() {
        let stop = stop_tx.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            while matches!(io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            let _ = stop.send(Stop::Now);
        });
    } else {
        let stop = stop_tx.clone();
        let shutting_down = shutting_down.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            shutting_down.store(true, Ordering::Release);
            let _ = stop.send(Stop::Graceful);
        });
    }

    let mut serving = serving;
    let mut rx = stop_rx;
    tokio::select! {
        r = &mut serving => r.map_err(|e| io::Error::other(e.to_string()))?,
        stop = rx.wait_for(|s| *s != Stop::Running) => {
            // Stdin ended, or a session's `$shutdown` has drained: stop at once. The
            // Shutdown RPC or a signal: the calls held get a grace period to finish.
            if stop.map(|s| *s == Stop::Graceful).unwrap_or(false) {
                let _ = tokio::time::timeout(STOP_GRACE, &mut serving).await;
            }
        }
    }
    if let Some(path) = socket_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(if shutting_down.load(Ordering::Acquire) {
        Ended::Shutdown
    } else {
        Ended::InputClosed
    })
}

/// Prints the handshake line on stdout, which the host reads.
fn announce(h: &Handshake) -> io::Result<()> {
    use std::io::Write;
    let mut out = io::stdout().lock();
    out.write_all(h.to_line().as_bytes())?;
    out.flush()
}

/// What ends the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Stop at once: the host is gone, or the calls are drained already.
    Now,
    /// Stop taking calls, give the held ones [`STOP_GRACE`].
    Graceful,
}

#[derive(Clone)]
struct Service {
    handler: Arc<dyn Handler>,
    options: ServeOptions,
    handshake: Arc<Handshake>,
    shutting_down: Arc<AtomicBool>,
    stop: watch::Sender<Stop>,
}

/// A unary call's request, its codec and its decoded params.
fn decode_call(
    request: Request<pb::WorkerCallRequest>,
) -> Result<(pb::WorkerCallRequest, Codec, Value), Status> {
    let r = request.into_inner();
    let codec = parse_codec(&r.codec)?;
    let params = Value::decode(codec, &r.params).map_err(|e| {
        Status::invalid_argument(format!(
            "the params of {} are not valid {codec}: {e}",
            r.method
        ))
    })?;
    Ok((r, codec, params))
}

fn parse_codec(name: &str) -> Result<Codec, Status> {
    if name.is_empty() {
        return Ok(Codec::Json);
    }
    name.parse()
        .map_err(|e: polyglot_protocol::UnknownCodec| Status::invalid_argument(e.to_string()))
}

impl Service {
    /// Runs one unary call to its end.
    async fn run(
        &self,
        method: String,
        params: Value,
        codec: Codec,
        progress: Option<mpsc::UnboundedSender<Value>>,
    ) -> pb::WorkerCallResponse {
        let started = Instant::now();
        let outcome = if method.starts_with('$') {
            Err(ErrorObject::new(
                code::METHOD_NOT_FOUND,
                format!("{method:?} is reserved; use the Health and Shutdown RPCs"),
            ))
        } else if self.shutting_down.load(Ordering::Acquire) {
            Err(ErrorObject::new(
                code::SHUTTING_DOWN,
                format!("the worker is shutting down and takes no new calls ({method})"),
            ))
        } else {
            let ctx = Context {
                id: None,
                method: Arc::from(method.as_str()),
                output: None,
                progress,
                cancel: Arc::default(),
            };
            CatchUnwind(self.handler.call(&method, params, ctx))
                .await
                .map_err(ErrorObject::from)
        };
        let outcome = match outcome {
            Ok(v) => pb::worker_call_response::Outcome::Result(v.encode(codec)),
            Err(e) => pb::worker_call_response::Outcome::Error(pb::WorkerError {
                code: e.code,
                message: e.message,
                data: e.data.map(|d| d.encode(codec)).unwrap_or_default(),
            }),
        };
        pb::WorkerCallResponse {
            outcome: Some(outcome),
            execution_time_us: started.elapsed().as_micros() as u64,
        }
    }
}

#[tonic::async_trait]
impl pb::worker_server::Worker for Service {
    type SessionStream = BoxStream<pb::Chunk>;

    async fn session(
        &self,
        request: Request<Streaming<pb::Chunk>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let codec = match request.metadata().get(CODEC_METADATA) {
            None => self.options.codec,
            Some(v) => parse_codec(v.to_str().unwrap_or("?"))?,
        };
        let options = ServeOptions {
            codec,
            max_frame: self.options.max_frame,
        };
        let mut handshake = (*self.handshake).clone();
        handshake.codec = codec;
        // The session's input ends at the stream's end or its first error (the host went
        // away): either way the session's calls are cancelled.
        let input = StreamReader::new(
            request
                .into_inner()
                .map_while(Result::ok)
                .map(|c| Ok::<_, io::Error>(c.data)),
        );
        let (ours, theirs) = tokio::io::duplex(CHUNK);
        let handler = self.handler.clone();
        let stop = self.stop.clone();
        let shutting_down = self.shutting_down.clone();
        tokio::spawn(async move {
            if let Ok(Ended::Shutdown) =
                serve_stream(handler, options, handshake, input, ours).await
            {
                shutting_down.store(true, Ordering::Release);
                let _ = stop.send(Stop::Now);
            }
        });
        let output = ReaderStream::with_capacity(theirs, CHUNK).map(|r| {
            r.map(|data| pb::Chunk { data })
                .map_err(|e| Status::internal(e.to_string()))
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let h = &self.handshake;
        Ok(Response::new(pb::DescribeResponse {
            protocol: h.protocol as u32,
            module: h.module.clone(),
            version: h.version.clone(),
            language: h.language.clone().unwrap_or_default(),
            methods: h.methods.clone(),
            max_concurrency: h.max_concurrency,
            codec: h.codec.as_str().into(),
            pid: std::process::id(),
        }))
    }

    async fn call(
        &self,
        request: Request<pb::WorkerCallRequest>,
    ) -> Result<Response<pb::WorkerCallResponse>, Status> {
        let (r, codec, params) = decode_call(request)?;
        // Tonic drops this future when the caller cancels: the method's future goes with it.
        Ok(Response::new(self.run(r.method, params, codec, None).await))
    }

    type CallStreamStream = BoxStream<pb::WorkerCallEvent>;

    async fn call_stream(
        &self,
        request: Request<pb::WorkerCallRequest>,
    ) -> Result<Response<Self::CallStreamStream>, Status> {
        let (r, codec, params) = decode_call(request)?;
        let service = self.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            use pb::worker_call_event::Event;
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let run = service.run(r.method, params, codec, Some(ptx));
            tokio::pin!(run);
            let progress = |p: Value| {
                Ok(pb::WorkerCallEvent {
                    event: Some(Event::Progress(p.encode(codec))),
                })
            };
            loop {
                tokio::select! {
                    biased;
                    Some(p) = prx.recv() => {
                        if tx.send(progress(p)).await.is_err() {
                            return;
                        }
                    }
                    done = &mut run => {
                        while let Ok(p) = prx.try_recv() {
                            if tx.send(progress(p)).await.is_err() {
                                return;
                            }
                        }
                        let _ = tx.send(Ok(pb::WorkerCallEvent { event: Some(Event::Result(done)) })).await;
                        return;
                    }
                    // The caller went away: dropping `run` cancels the method.
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn health(
        &self,
        _: Request<pb::WorkerHealthRequest>,
    ) -> Result<Response<pb::WorkerHealthResponse>, Status> {
        let (status, reason) = match CatchUnwind(self.handler.health()).await {
            Ok(v) => (
                v.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("ok")
                    .to_owned(),
                v.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Err(e) => ("unhealthy".to_owned(), e.message),
        };
        Ok(Response::new(pb::WorkerHealthResponse { status, reason }))
    }

    async fn shutdown(
        &self,
        _: Request<pb::WorkerShutdownRequest>,
    ) -> Result<Response<pb::WorkerShutdownResponse>, Status> {
        self.shutting_down.store(true, Ordering::Release);
        let _ = self.stop.send(Stop::Graceful);
        Ok(Response::new(pb::WorkerShutdownResponse {}))
    }
}
