//! [`Connection`]: one worker's protocol stream, many calls in flight on it.
//!
//! A call takes a concurrency permit (the worker's announced `maxConcurrency`), gets an
//! id, parks a oneshot in the pending map and appends its request to a shared write
//! buffer. One writer task writes whatever has gathered in one syscall; one reader task
//! decodes responses and completes the matching pending slot, in whatever order they come.
//! A call dropped or timed out removes its slot and sends `$cancel`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyglot_protocol::{
    encode_request, frame_payload_len, Codec, ErrorObject, Expected, Frame, FrameReader, Handshake,
    Id, LogLevel, Request, Value, WorkerMessage,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::time::Instant;

use crate::error::StartFailure;

/// How a call on a connection ended, short of a result.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The deadline passed.
    Timeout,
    /// The worker is gone; the reason says how.
    Closed(String),
    /// The worker answered with an error.
    Remote(ErrorObject),
    /// A frame over the limit: "request" or "response", and its size.
    TooLarge(&'static str, u64),
    /// Its concurrency and its queue are full: refused at once.
    Overloaded,
}

enum Outcome {
    Done(Result<Value, ErrorObject>, Option<u64>),
    TooLarge(u64),
}

struct Slot {
    tx: oneshot::Sender<Outcome>,
    progress: Option<mpsc::UnboundedSender<Value>>,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, Slot>,
    /// Set once: why the connection is closed. Pending calls fail with it.
    closed: Option<String>,
}

/// Where requests go: the worker's stdin pipe, its socket, or a gRPC session. All are
/// written with non-blocking `try_write`, so a caller can write without waking the writer
/// task.
pub(crate) enum Sink {
    /// The stdio transport.
    Pipe(tokio::net::unix::pipe::Sender),
    /// The socket transport.
    Socket(tokio::net::unix::OwnedWriteHalf),
    /// The gRPC transport: chunks of a `Session` stream.
    Grpc(mpsc::Sender<polyglot_proto::v1::Chunk>),
}

impl Sink {
    /// The worker's stdin as a sink.
    pub(crate) fn stdin(stdin: tokio::process::ChildStdin) -> std::io::Result<Sink> {
        let fd = stdin.into_owned_fd()?;
        Ok(Sink::Pipe(tokio::net::unix::pipe::Sender::from_owned_fd(
            fd,
        )?))
    }

    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Pipe(p) => p.try_write(buf),
            Sink::Socket(s) => s.try_write(buf),
            Sink::Grpc(tx) => match tx.try_reserve() {
                Ok(permit) => {
                    let n = buf.len().min(polyglot_proto::MAX_CHUNK_BYTES);
                    permit.send(polyglot_proto::v1::Chunk {
                        data: bytes::Bytes::copy_from_slice(&buf[..n]),
                    });
                    Ok(n)
                }
                Err(mpsc::error::TrySendError::Full(())) => {
                    Err(std::io::ErrorKind::WouldBlock.into())
                }
                Err(mpsc::error::TrySendError::Closed(())) => {
                    Err(std::io::ErrorKind::BrokenPipe.into())
                }
            },
        }
    }

    async fn writable(&self) -> std::io::Result<()> {
        match self {
            Sink::Pipe(p) => p.writable().await,
            Sink::Socket(s) => s.writable().await,
            Sink::Grpc(tx) => match tx.reserve().await {
                Ok(_) => Ok(()),
                Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
            },
        }
    }
}

/// The requests waiting to be written. `busy` is set while the writer task owns the
/// stream (writing, or about to); when it is clear the buffer is empty, and a caller
/// writes its request itself: one call at a time then costs no task wake-up. Under load
/// the writer is busy, callers only append, and a burst goes out in one write.
struct WriteQueue {
    queue: Mutex<Queue>,
    notify: Notify,
    sink: Sink,
}

#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    busy: bool,
}

impl WriteQueue {
    fn push<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut q = self.queue.lock().expect("write queue lock");
        let before = q.buf.len();
        let r = f(&mut q.buf);
        if q.buf.len() == before || q.busy {
            return r; // nothing added, or the writer takes it with the rest
        }
        // The writer is idle, so these are the only bytes queued: write them now. The
        // lock keeps every other writer out, so frames never interleave.
        match self.sink.try_write(&q.buf) {
            Ok(n) if n == q.buf.len() => {
                q.buf.clear();
                return r;
            }
            Ok(n) => {
                q.buf.drain(..n);
            }
            Err(_) => {} // would block, or failed: the writer task finds out
        }
        q.busy = true;
        drop(q);
        self.notify.notify_one();
        r
    }
}

/// Counters of one connection, for health reports.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    /// Responses to calls the host had already given up on.
    pub late: AtomicU64,
    /// Frames skipped for their size.
    pub oversize: AtomicU64,
}

/// One worker's protocol stream. See the module docs.
pub(crate) struct Connection {
    label: Arc<str>,
    instance: usize,
    codec: Codec,
    max_frame: usize,
    handshake: Handshake,
    next_id: AtomicU64,
    state: Mutex<State>,
    out: WriteQueue,
    permits: Semaphore,
    outstanding: AtomicUsize,
    /// Why the worker cannot be trusted any more (garbage, unknown ids), once it is so.
    trouble: Mutex<Option<String>>,
    trouble_notify: Notify,
    /// With the gRPC transport: `$health` is the worker's `Health` RPC.
    health_rpc: Option<crate::grpc::WorkerClient>,
    pub(crate) stats: ConnStats,
}

/// What `establish` hands back: the connection, and the tasks that drive its stream.
pub(crate) struct Established {
    pub conn: Arc<Connection>,
    pub reader: tokio::task::JoinHandle<()>,
    pub writer: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Reads the worker's handshake (skipping and reporting non-protocol lines before it),
    /// checks it against the manifest, then starts the reader and writer tasks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn establish<R>(
        mut input: R,
        output: Sink,
        expected: Expected<'_>,
        label: &str,
        instance: usize,
        max_frame: usize,
        handshake_timeout: Duration,
        health_rpc: Option<crate::grpc::WorkerClient>,
    ) -> Result<Established, StartFailure>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let mut reader = FrameReader::new(Codec::Json, max_frame);
        let handshake = read_handshake(
            &mut input,
            &mut reader,
            expected,
            label,
            instance,
            handshake_timeout,
        )
        .await?;
        reader.set_codec(handshake.codec);
        let conn = Arc::new(Connection {
            label: Arc::from(label),
            instance,
            codec: handshake.codec,
            max_frame,
            permits: Semaphore::new(handshake.max_concurrency as usize),
            handshake,
            next_id: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            out: WriteQueue {
                queue: Mutex::new(Queue::default()),
                notify: Notify::new(),
                sink: output,
            },
            outstanding: AtomicUsize::new(0),
            trouble: Mutex::new(None),
            trouble_notify: Notify::new(),
            health_rpc,
            stats: ConnStats::default(),
        });
        let reader = tokio::spawn(conn.clone().read_loop(input, reader));
        let writer = tokio::spawn(conn.clone().write_loop());
        Ok(Established {
            conn,
            reader,
            writer,
        })
    }
    pub(crate) fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Calls in flight or waiting for a permit on this connection.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().expect("state lock").closed.is_some()
    }

    /// Runs one call until `deadline`. Progress notifications go to `progress`.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: &Value,
        deadline: Instant,
        progress: Option<mpsc::UnboundedSender<Value>>,
    ) -> Result<(Value, Option<u64>), ConnError> {
        self.call_bounded(method, params, deadline, progress, usize::MAX)
            .await
    }

    /// [`Connection::call`], refused with `Overloaded` when `limit` calls are already
    /// running or waiting on this worker.
    pub(crate) async fn call_bounded(
        &self,
        method: &str,
        params: &Value,
        deadline: Instant,
        progress: Option<mpsc::UnboundedSender<Value>>,
        limit: usize,
    ) -> Result<(Value, Option<u64>), ConnError> {
        if method == "$health" {
            if let Some(client) = &self.health_rpc {
                let left = deadline.saturating_duration_since(Instant::now());
                return crate::grpc::health(client, left)
                    .await
                    .map(|v| (v, None))
                    .map_err(ConnError::Remote);
            }
        }
        if self.outstanding.fetch_add(1, Ordering::Relaxed) >= limit {
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            return Err(ConnError::Overloaded);
        }
        let mut guard = CallGuard {
            conn: self,
            id: None,
        };
        // `$health` takes no permit: a worker busy with long calls is busy, not unhealthy,
        // and SDKs answer `$health` outside their method slots.
        let _permit = if method == "$health" {
            None
        } else {
            match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
                Ok(Ok(p)) => Some(p),
                Ok(Err(_)) => return Err(ConnError::Closed("the connection closed".into())),
                Err(_) => return Err(ConnError::Timeout),
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.state.lock().expect("state lock");
            if let Some(reason) = &st.closed {
                return Err(ConnError::Closed(reason.clone()));
            }
            st.pending.insert(id, Slot { tx, progress });
        }
        guard.id = Some(id);
        let timeout_ms = deadline
            .checked_duration_since(Instant::now())
            .map(|d| d.as_millis() as u64);
        let size = self.out.push(|buf| {
            let at = buf.len();
            encode_request(
                self.codec,
                buf,
                Some(&Id::Uint(id)),
                method,
                params,
                None,
                timeout_ms,
            );
            let size = frame_payload_len(self.codec, buf, at);
            if size > self.max_frame {
                buf.truncate(at);
            }
            size
        });
        if size > self.max_frame {
            return Err(ConnError::TooLarge("request", size as u64));
        }
        let outcome = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => {
                guard.id = None;
                let reason = self.state.lock().expect("state lock").closed.clone();
                return Err(ConnError::Closed(reason.unwrap_or_else(|| "closed".into())));
            }
            Err(_) => return Err(ConnError::Timeout), // the guard cancels
        };
        guard.id = None;
        match outcome {
            Outcome::Done(Ok(v), took) => Ok((v, took)),
            Outcome::Done(Err(e), _) => Err(ConnError::Remote(e)),
            Outcome::TooLarge(size) => Err(ConnError::TooLarge("response", size)),
        }
    }

    /// Sends a notification (no answer expected).
    pub(crate) fn notify(&self, method: &str, params: Value) {
        self.out
            .push(|buf| Request::notification(method, params).encode(self.codec, buf));
    }

    /// Fails every pending call with `reason` and refuses new ones.
    pub(crate) fn close(&self, reason: &str) {
        let pending = {
            let mut st = self.state.lock().expect("state lock");
            if st.closed.is_none() {
                st.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut st.pending)
        };
        // Dropping the senders wakes each caller, which reads the reason set above.
        drop(pending);
        self.permits.close();
        self.out.notify.notify_one();
    }

    /// Completes when the worker has proven it cannot be trusted (garbage on its output,
    /// a response to an id never issued) or its output ended; returns why.
    pub(crate) async fn trouble(&self) -> String {
        loop {
            let notified = self.trouble_notify.notified();
            if let Some(t) = self.trouble.lock().expect("trouble lock").clone() {
                return t;
            }
            notified.await;
        }
    }

    pub(crate) fn report_trouble(&self, why: String) {
        let mut t = self.trouble.lock().expect("trouble lock");
        if t.is_none() {
            *t = Some(why);
        }
        drop(t);
        self.trouble_notify.notify_waiters();
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        self: Arc<Self>,
        mut input: R,
        mut reader: FrameReader,
    ) {
        let why = 'outer: loop {
            while let Some(frame) = reader.next_frame() {
                match frame {
                    Frame::Data(bytes) => match WorkerMessage::decode(self.codec, bytes) {
                        Ok(msg) => {
                            if let Err(why) = self.dispatch(msg) {
                                break 'outer why;
                            }
                        }
                        Err(e) => {
                            // With what follows it, which is most of a stray line on a
                            // MessagePack stream (the reader yields its first bytes).
                            let mut raw = bytes[..bytes.len().min(800)].to_vec();
                            let more = reader.pending();
                            raw.extend_from_slice(&more[..more.len().min(800)]);
                            let text: String =
                                String::from_utf8_lossy(&raw).chars().take(200).collect();
                            break 'outer format!(
                                "protocol violation: it wrote something that is not a protocol message ({e}): {text:?}"
                            );
                        }
                    },
                    Frame::TooLarge { size, id } => {
                        self.stats.oversize.fetch_add(1, Ordering::Relaxed);
                        let slot = id.and_then(|id| id.as_u64()).and_then(|id| {
                            self.state.lock().expect("state lock").pending.remove(&id)
                        });
                        tracing::warn!(module = %self.label, instance = self.instance, size,
                            limit = self.max_frame, "worker sent a frame over the limit; skipped");
                        if let Some(slot) = slot {
                            let _ = slot.tx.send(Outcome::TooLarge(size));
                        }
                    }
                }
            }
            match input.read(reader.read_buf()).await {
                Ok(0) => {
                    break match reader.finish() {
                        Ok(()) => "its output closed".to_owned(),
                        Err(e) => format!("its output closed mid-frame ({e})"),
                    }
                }
                Ok(n) => reader.filled(n),
                Err(e) => break format!("reading its output failed: {e}"),
            }
        };
        self.report_trouble(why);
    }

    /// Routes one message to its caller. An `Err` means the worker cannot be trusted.
    fn dispatch(&self, msg: WorkerMessage) -> Result<(), String> {
        match msg {
            WorkerMessage::Response(r) => {
                let Some(id) = r.id.as_u64() else {
                    return Err(format!(
                        "protocol violation: a response to id {}, which the host never issued",
                        r.id
                    ));
                };
                let slot = self.state.lock().expect("state lock").pending.remove(&id);
                match slot {
                    Some(slot) => {
                        let _ = slot.tx.send(Outcome::Done(r.outcome, r.execution_time_us));
                    }
                    None if id < self.next_id.load(Ordering::Relaxed) => {
                        // A call that timed out or was cancelled: its answer came late.
                        self.stats.late.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        return Err(format!(
                            "protocol violation: a response to id {id}, which the host never issued"
                        ))
                    }
                }
            }
            WorkerMessage::Progress { id, progress } => {
                if let Some(id) = id.as_u64() {
                    let st = self.state.lock().expect("state lock");
                    if let Some(tx) = st.pending.get(&id).and_then(|s| s.progress.as_ref()) {
                        let _ = tx.send(progress);
                    }
                }
            }
            WorkerMessage::Log(rec) => {
                let (label, instance) = (&*self.label, self.instance);
                let fields = rec.fields.map(|f| f.to_string()).unwrap_or_default();
                match rec.level {
                    LogLevel::Trace => {
                        tracing::trace!(target: "polyglot::worker", module = %label, instance, fields, "{}", rec.message)
                    }
                    LogLevel::Debug => {
                        tracing::debug!(target: "polyglot::worker", module = %label, instance, fields, "{}", rec.message)
                    }
                    LogLevel::Info => {
                        tracing::info!(target: "polyglot::worker", module = %label, instance, fields, "{}", rec.message)
                    }
                    LogLevel::Warn => {
                        tracing::warn!(target: "polyglot::worker", module = %label, instance, fields, "{}", rec.message)
                    }
                    LogLevel::Error => {
                        tracing::error!(target: "polyglot::worker", module = %label, instance, fields, "{}", rec.message)
                    }
                }
            }
        }
        Ok(())
    }

    async fn write_loop(self: Arc<Self>) {
        let mut spare = Vec::new();
        loop {
            let notified = self.out.notify.notified();
            {
                let mut q = self.out.queue.lock().expect("write queue lock");
                if q.buf.is_empty() {
                    q.busy = false;
                } else {
                    std::mem::swap(&mut q.buf, &mut spare);
                    q.busy = true;
                }
            }
            if spare.is_empty() {
                if self.is_closed() {
                    return;
                }
                notified.await;
                continue;
            }
            let mut written = 0;
            while written < spare.len() {
                let r = match self.out.sink.writable().await {
                    Ok(()) => self.out.sink.try_write(&spare[written..]),
                    Err(e) => Err(e),
                };
                match r {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        tracing::debug!(module = %self.label, instance = self.instance, error = %e,
                            "writing to the worker failed");
                        return;
                    }
                }
            }
            spare.clear();
        }
    }
}

/// Reads a worker's handshake line (skipping and reporting non-protocol lines before it)
/// and checks it against the manifest. Bytes after it stay in `reader`.
pub(crate) async fn read_handshake<R>(
    input: &mut R,
    reader: &mut FrameReader,
    expected: Expected<'_>,
    label: &str,
    instance: usize,
    timeout: Duration,
) -> Result<Handshake, StartFailure>
where
    R: AsyncRead + Unpin,
{
    let read = async {
        loop {
            while let Some(frame) = reader.next_frame() {
                match frame {
                    Frame::Data(line) if Handshake::is_candidate(line) => {
                        let h = Handshake::parse(line)?;
                        h.check(&expected)?;
                        return Ok(h);
                    }
                    Frame::Data(line) => {
                        let text = String::from_utf8_lossy(line);
                        tracing::warn!(
                            module = %label, instance,
                            line = %text.chars().take(200).collect::<String>(),
                            "worker printed a non-protocol line before its handshake; skipped"
                        );
                    }
                    Frame::TooLarge { size, .. } => tracing::warn!(
                        module = %label, instance, size,
                        "worker printed an oversize line before its handshake; skipped"
                    ),
                }
            }
            let n = input
                .read(reader.read_buf())
                .await
                .map_err(|e| StartFailure::Io(e.to_string()))?;
            if n == 0 {
                return Err(StartFailure::Io("its output closed".into()));
            }
            reader.filled(n);
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(StartFailure::NoHandshake(timeout)),
    }
}

/// Undoes a call that did not complete: removes its pending slot, tells the worker to
/// cancel it, and releases its count.
struct CallGuard<'a> {
    conn: &'a Connection,
    id: Option<u64>,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.conn.outstanding.fetch_sub(1, Ordering::Relaxed);
        if let Some(id) = self.id {
            let removed = self
                .conn
                .state
                .lock()
                .expect("state lock")
                .pending
                .remove(&id);
            if removed.is_some() {
                let mut params = polyglot_protocol::Map::new();
                params.insert("id".into(), Value::Uint(id));
                self.conn.notify("$cancel", Value::Map(params));
            }
        }
    }
}
