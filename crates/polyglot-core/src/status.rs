//! Snapshots of modules and workers, for display, health endpoints and bindings.

use serde::Serialize;

use crate::resilience::BreakerState;

pub use crate::supervisor::InstanceState;

/// The lifecycle state of a loaded module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    /// Its workers are starting.
    Starting,
    /// At least one worker started.
    Running,
    /// It takes no calls and will not recover by itself (build failed, or restart
    /// intensity exhausted); a reload revives it.
    Failed,
    /// Replaced by a reload, finishing its calls in flight.
    Draining,
    /// Stopped.
    Stopped,
}

/// The health of a module, from its workers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Every worker is up and passed its last health check.
    Healthy,
    /// Some workers serve, not all (or some report themselves degraded).
    Degraded,
    /// No worker takes calls: calls go to the fallback.
    Unhealthy,
}

/// One worker slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Its number in the pool.
    pub index: usize,
    /// Its state.
    pub state: InstanceState,
    /// Its process id, once started (none for a remote worker).
    pub pid: Option<u32>,
    /// Where the host reaches it over gRPC: the socket or port a gRPC worker announced,
    /// or a remote worker's endpoint. None for stdio and socket workers.
    pub address: Option<String>,
    /// How often it was restarted.
    pub restarts: u64,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// The last error it had (start failure, exit, failed health check).
    pub last_error: Option<String>,
}

/// One module.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleStatus {
    /// Its name.
    pub name: String,
    /// Which implementation this is (the name, or `name (fallback file)`).
    pub implementation: String,
    /// Its version.
    pub version: String,
    /// Its language.
    pub language: String,
    /// Whether it runs in the host's process.
    pub in_process: bool,
    /// Whether the host is ready only while it can serve (`required` in its manifest).
    pub required: bool,
    /// Its lifecycle state.
    pub state: ModuleState,
    /// Its health.
    pub health: HealthState,
    /// The methods callers may use.
    pub methods: Vec<String>,
    /// Its fallback chain.
    pub fallback: Vec<String>,
    /// Its worker slots.
    pub instances: Vec<InstanceStatus>,
    /// Restarts of all its workers.
    pub restarts: u64,
    /// Calls in flight.
    pub in_flight: usize,
    /// Its last error.
    pub last_error: Option<String>,
    /// Its circuit breaker.
    pub breaker: BreakerStatus,
}

/// A version's circuit breaker, as health reports show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerStatus {
    /// Its state (`closed` when the breaker is off).
    pub state: BreakerState,
    /// Why it last opened, if it ever did.
    pub reason: Option<String>,
    /// Whether the manifest turned it off (`breaker.enabled: false`).
    pub disabled: bool,
}
