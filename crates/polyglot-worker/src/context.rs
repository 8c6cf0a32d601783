//! [`Context`]: what a method can do besides returning: progress, logs, cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use polyglot_protocol::{Id, LogLevel, LogRecord, Value, WorkerMessage};
use tokio::sync::Notify;

use crate::output::Output;

/// Handed to every method call.
#[derive(Clone)]
pub struct Context {
    pub(crate) id: Option<Id>,
    pub(crate) method: Arc<str>,
    pub(crate) output: Option<Output>,
    /// Where progress goes when the call did not come over a protocol stream (a unary
    /// gRPC `CallStream`).
    pub(crate) progress: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
    pub(crate) cancel: Arc<Cancel>,
}

#[derive(Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

impl Context {
    /// A context for calling a handler directly, outside any worker (in-process use,
    /// tests): progress and logs go nowhere.
    pub fn detached(method: &str) -> Context {
        Context {
            id: None,
            method: Arc::from(method),
            output: None,
            progress: None,
            cancel: Arc::default(),
        }
    }

    /// The call's id (`None` for a notification or a detached call).
    pub fn call_id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// The method being called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Sends a progress notification for this call.
    pub fn progress(&self, progress: impl Into<Value>) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(progress.into());
        } else if let (Some(out), Some(id)) = (&self.output, &self.id) {
            out.send(&WorkerMessage::Progress {
                id: id.clone(),
                progress: progress.into(),
            });
        }
    }

    /// Sends a log message to the host, which writes it with the module's name.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        if let Some(out) = &self.output {
            out.send(&WorkerMessage::Log(LogRecord {
                level,
                message: message.into(),
                fields: None,
            }));
        }
    }

    /// Whether the host cancelled this call.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.flag.load(Ordering::Acquire)
    }

    /// Completes when the host cancels this call (select on it in long methods).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Writes raw bytes to the protocol stream. For tests of the host's handling of a
    /// misbehaving worker only; a real worker never needs it.
    #[doc(hidden)]
    pub fn write_raw_for_tests(&self, bytes: &[u8]) {
        if let Some(out) = &self.output {
            out.send_raw(bytes);
        }
    }
}
