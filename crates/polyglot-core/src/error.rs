//! The runtime's errors. Each names the module (and method, instance, file) it is about.

use std::fmt;
use std::time::Duration;

use polyglot_protocol::{HandshakeError, Value};

use crate::manifest::ManifestError;

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No module of that name is loaded.
    #[error("no module named {module:?} is loaded")]
    ModuleNotFound {
        /// The name asked for.
        module: String,
    },
    /// The module does not offer the method.
    #[error("module {module:?} has no method {method:?} (it offers: {})", offered.join(", "))]
    MethodNotFound {
        /// The module.
        module: String,
        /// The method asked for.
        method: String,
        /// What it offers.
        offered: Vec<String>,
    },
    /// The deadline passed; the worker was sent `$cancel`.
    #[error("{module}.{method} timed out after {}ms", timeout.as_millis())]
    Timeout {
        /// The module that was running the call.
        module: String,
        /// The method.
        method: String,
        /// The deadline that expired.
        timeout: Duration,
    },
    /// The worker running the call exited or was killed before answering.
    #[error("{module}.{method}: worker {instance} exited before answering ({reason})")]
    WorkerExited {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// The instance number in the module's pool.
        instance: usize,
        /// How it ended: exit status, signal, protocol violation.
        reason: String,
    },
    /// The method ran and returned an error.
    #[error("{module}.{method} failed: {code}: {message}")]
    Remote {
        /// The module that ran it.
        module: String,
        /// The method.
        method: String,
        /// The error code the worker sent.
        code: String,
        /// The message it sent.
        message: String,
        /// Details it sent.
        data: Option<Value>,
    },
    /// The call's params or its response exceed the frame size limit.
    #[error(
        "{module}.{method}: the {what} is {size} bytes, over the frame limit of {limit} bytes"
    )]
    FrameTooLarge {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// "request" or "response".
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Every worker of the module is running and queueing as many calls as it may: the
    /// call was refused at once rather than queued without bound.
    #[error("{module}.{method}: overloaded: every worker is busy and its queue of {queue} calls is full")]
    Overloaded {
        /// The module.
        module: String,
        /// The method.
        method: String,
        /// The queue limit per worker (`maxQueue`).
        queue: u32,
    },
    /// No implementation could take the call: the module and every fallback are
    /// unavailable (not built, not started, unhealthy, crashed, restarting, failed).
    #[error("{module}.{method} is unavailable: {}", Causes(causes))]
    Unavailable {
        /// The module asked for.
        module: String,
        /// The method.
        method: String,
        /// Why each implementation tried could not take it, in order.
        causes: Vec<Cause>,
    },
    /// The primary was unavailable, and the fallback that took the call failed.
    #[error(
        "{module}.{method}: {} and its fallback {served_by:?} failed: {error}",
        Causes(causes)
    )]
    FallbackFailed {
        /// The module asked for.
        module: String,
        /// The method.
        method: String,
        /// Why the implementations before the fallback could not take it.
        causes: Vec<Cause>,
        /// The fallback that took it.
        served_by: String,
        /// How it failed.
        #[source]
        error: Box<CallError>,
    },
    /// The runtime is shutting down and takes no new calls.
    #[error("the runtime is shutting down and takes no new calls")]
    ShuttingDown,
}

impl CallError {
    /// A short stable name of the error's kind, for metrics and bindings.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::ModuleNotFound { .. } => "module_not_found",
            CallError::MethodNotFound { .. } => "method_not_found",
            CallError::Timeout { .. } => "timeout",
            CallError::WorkerExited { .. } => "worker_exited",
            CallError::Remote { .. } => "remote",
            CallError::FrameTooLarge { .. } => "frame_too_large",
            CallError::Overloaded { .. } => "overloaded",
            CallError::Unavailable { .. } => "unavailable",
            CallError::FallbackFailed { .. } => "fallback_failed",
            CallError::ShuttingDown => "shutting_down",
        }
    }
}

/// Why one implementation could not take a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The implementation: a module name, or `module (fallback file)`.
    pub implementation: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.implementation, self.reason)
    }
}

struct Causes<'a>(&'a [Cause]);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Why a worker could not be started, with everything needed to fix it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "module {module:?} worker {instance} failed to start: {reason}\n  command: {command}{}",
    tail(stderr)
)]
pub struct StartError {
    /// The module.
    pub module: String,
    /// The instance number.
    pub instance: usize,
    /// The command line that was run.
    pub command: String,
    /// What went wrong.
    pub reason: StartFailure,
    /// The last lines the worker wrote to stderr.
    pub stderr: Vec<String>,
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "\n  stderr: (nothing)".into();
    }
    let mut s = String::from("\n  last lines of stderr:");
    for l in lines {
        s.push_str("\n    ");
        s.push_str(l);
    }
    s
}

/// What went wrong starting a worker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartFailure {
    /// The program could not be run at all.
    #[error("cannot run it: {0}")]
    Spawn(String),
    /// It exited before its handshake.
    #[error("it exited before its handshake with {0}")]
    Exited(String),
    /// It sent no handshake in time.
    #[error("no handshake within the handshake timeout of {}ms", .0.as_millis())]
    NoHandshake(Duration),
    /// Its handshake was refused.
    #[error("handshake refused: {0}")]
    Refused(#[from] HandshakeError),
    /// Reading its output failed.
    #[error("reading its output failed: {0}")]
    Io(String),
    /// The socket transport could not be set up.
    #[error("socket transport: {0}")]
    Socket(String),
    /// The gRPC transport could not connect or open its session.
    #[error("gRPC transport: {0}")]
    Grpc(String),
}

/// A module's build step failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("module {module:?}: build `{command}` {reason}{}", tail(output))]
pub struct BuildError {
    /// The module.
    pub module: String,
    /// The build command line.
    pub command: String,
    /// What happened (exit status, cannot run, no output produced).
    pub reason: String,
    /// The last lines of the build's output.
    pub output: Vec<String>,
}

/// Why a module could not be (re)loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Its manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Its build failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Its workers did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// No module of that name is loaded.
    #[error("no module named {0:?} is loaded")]
    NotFound(String),
    /// Two module folders declare the same name.
    #[error("{}: module {name:?} is already defined by {}", file.display(), other.display())]
    Duplicate {
        /// The name.
        name: String,
        /// The second manifest.
        file: std::path::PathBuf,
        /// The first one.
        other: std::path::PathBuf,
    },
    /// The modules directory cannot be read.
    #[error("cannot read the modules directory {}: {message}", dir.display())]
    Directory {
        /// The directory.
        dir: std::path::PathBuf,
        /// The error.
        message: String,
    },
    /// The new version did not become healthy in time.
    #[error("module {module:?}: {message}")]
    NotReady {
        /// The module.
        module: String,
        /// What happened.
        message: String,
    },
    /// The deployment state file could not be read (it was moved aside), or a module's
    /// persisted version could not be brought back.
    #[error("deployment state file {}: {message}", file.display())]
    State {
        /// The state file.
        file: std::path::PathBuf,
        /// What happened, and what the runtime did instead.
        message: String,
    },
}

/// An error with its causes, joined by ": " ("transport error: connection refused"): the
/// causes say what actually failed.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
