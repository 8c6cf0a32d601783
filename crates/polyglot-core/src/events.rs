//! [`RuntimeEvent`]: what happens in a runtime, broadcast to every subscriber.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::resilience::BreakerState;
use crate::supervisor::InstanceState;

/// How many events a slow subscriber may fall behind before it misses some (it is told
/// how many it missed): a burst of restarts across many modules fits.
pub const EVENT_BUFFER: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEvent {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The module (the implementation's label for file fallbacks).
    pub module: String,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum EventKind {
    /// A worker finished its handshake and takes calls.
    WorkerStarted {
        /// Its slot.
        instance: usize,
        /// Its process id.
        pid: u32,
        /// The version it announced.
        version: String,
    },
    /// A worker exited or was stopped for misbehaving.
    WorkerExited {
        /// Its slot.
        instance: usize,
        /// How it ended.
        reason: String,
    },
    /// A worker's health changed.
    HealthChanged {
        /// Its slot.
        instance: usize,
        /// Before.
        from: InstanceState,
        /// After.
        to: InstanceState,
    },
    /// A call was served by a fallback.
    FallbackUsed {
        /// The method.
        method: String,
        /// The implementation that served it.
        served_by: String,
    },
    /// A version's circuit breaker changed state.
    BreakerChanged {
        /// The version.
        version: String,
        /// Before.
        from: BreakerState,
        /// After.
        to: BreakerState,
        /// Why it opened (when it opened).
        reason: String,
    },
    /// A reload changed only the module's call policies (`timeoutMs`, `maxQueue`,
    /// `idempotent`, `retry`, `breaker`) and applied them to the running version.
    PoliciesUpdated {
        /// The version.
        version: String,
    },
    /// A reload switched the module to new workers.
    ReloadDone {
        /// The version before.
        old_version: String,
        /// The version now.
        new_version: String,
    },
    /// The module was added to the runtime ([`Runtime::load_dir`],
    /// [`Runtime::load_module`]), ready or not (its status says).
    ///
    /// [`Runtime::load_dir`]: crate::Runtime::load_dir
    /// [`Runtime::load_module`]: crate::Runtime::load_module
    ModuleLoaded {
        /// The version that serves it.
        version: String,
    },
    /// The module was removed from the runtime ([`Runtime::unload`]): its calls in
    /// flight drained and its workers stopped.
    ///
    /// [`Runtime::unload`]: crate::Runtime::unload
    ModuleUnloaded {
        /// The version that served it until then (empty: none was active).
        version: String,
    },
}

/// The sending side, shared by the runtime, its modules and their supervisors.
#[derive(Clone)]
pub(crate) struct Events(broadcast::Sender<RuntimeEvent>);

impl Events {
    pub(crate) fn new() -> Events {
        Events(broadcast::channel(EVENT_BUFFER).0)
    }

    pub(crate) fn emit(&self, module: &str, kind: EventKind) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.0.send(RuntimeEvent {
            timestamp_ms: polyglot_protocol::now_ms(),
            module: module.to_owned(),
            kind,
        });
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.0.subscribe()
    }
}
