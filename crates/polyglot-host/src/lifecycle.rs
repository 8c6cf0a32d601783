//! Where the host is in its life: loading its modules, serving, stopping. The HTTP probes
//! and the gRPC health service report it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// Where the host is in its life, shared by the HTTP and gRPC servers.
pub struct Lifecycle {
    started: AtomicBool,
    stopping: watch::Sender<bool>,
    load_errors: Mutex<Vec<String>>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            started: AtomicBool::new(false),
            stopping: watch::channel(false).0,
            load_errors: Mutex::new(Vec::new()),
        }
    }
}

impl Lifecycle {
    /// The initial load is done; `load_errors` are its problems, shown by `/health`.
    pub fn mark_started(&self, load_errors: Vec<String>) {
        *self
            .load_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = load_errors;
        self.started.store(true, Ordering::SeqCst);
    }

    /// The host was told to stop: it is not ready from now on.
    pub fn mark_stopping(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the initial load is done.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether the host was told to stop.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Completes once the host is told to stop.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// The initial load's problems.
    pub fn load_errors(&self) -> Vec<String> {
        self.load_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
