//! [`Output`]: the worker's side of the protocol stream. Messages are encoded into one
//! shared buffer; a single writer task writes whatever has gathered in one syscall, so a
//! burst of responses costs one write, not one per response.

use std::sync::{Arc, Mutex};

use polyglot_protocol::{code, frame_payload_len, Codec, ErrorObject, Response, WorkerMessage};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

#[derive(Clone)]
pub(crate) struct Output {
    inner: Arc<Inner>,
}

struct Inner {
    codec: Codec,
    limit: usize,
    buf: Mutex<Buf>,
    notify: Notify,
}

#[derive(Default)]
struct Buf {
    bytes: Vec<u8>,
    closed: bool,
}

impl Output {
    pub(crate) fn new(codec: Codec, limit: usize) -> Output {
        Output {
            inner: Arc::new(Inner {
                codec,
                limit,
                buf: Mutex::new(Buf::default()),
                notify: Notify::new(),
            }),
        }
    }

    /// Queues one message; one over the frame limit is replaced by a `FRAME_TOO_LARGE`
    /// error response for the same call (or dropped, for progress and logs).
    pub(crate) fn send(&self, msg: &WorkerMessage) {
        let mut buf = self.inner.buf.lock().expect("output lock");
        if buf.closed {
            return;
        }
        let at = buf.bytes.len();
        msg.encode(self.inner.codec, &mut buf.bytes);
        let size = frame_payload_len(self.inner.codec, &buf.bytes, at);
        if size > self.inner.limit {
            buf.bytes.truncate(at);
            if let WorkerMessage::Response(r) = msg {
                Response {
                    id: r.id.clone(),
                    outcome: Err(ErrorObject::new(
                        code::FRAME_TOO_LARGE,
                        format!(
                            "the response is {size} bytes, over the frame limit of {} bytes",
                            self.inner.limit
                        ),
                    )),
                    timestamp: r.timestamp,
                    execution_time_us: r.execution_time_us,
                }
                .encode(self.inner.codec, &mut buf.bytes);
            }
        }
        let wake = at == 0;
        drop(buf);
        if wake {
            self.inner.notify.notify_one();
        }
    }

    pub(crate) fn send_raw(&self, bytes: &[u8]) {
        let mut buf = self.inner.buf.lock().expect("output lock");
        let wake = buf.bytes.is_empty();
        buf.bytes.extend_from_slice(bytes);
        drop(buf);
        if wake {
            self.inner.notify.notify_one();
        }
    }

    /// Stops taking messages; the writer writes what is queued, then ends.
    pub(crate) fn close(&self) {
        self.inner.buf.lock().expect("output lock").closed = true;
        self.inner.notify.notify_one();
    }

    /// Writes queued messages until closed. Returns when everything queued before
    /// [`Output::close`] is written.
    pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(&self, mut w: W) -> std::io::Result<()> {
        let mut spare = Vec::new();
        loop {
            let closed = {
                let mut buf = self.inner.buf.lock().expect("output lock");
                std::mem::swap(&mut buf.bytes, &mut spare);
                buf.closed
            };
            if !spare.is_empty() {
                w.write_all(&spare).await?;
                w.flush().await?;
                spare.clear();
                continue;
            }
            if closed {
                return Ok(());
            }
            self.inner.notify.notified().await;
        }
    }
}
