//! [`Failure`]: an error of the runtime, the host's API or a native function, on its way
//! to becoming a Python exception. The classes live in `polyglot/_errors.py`; their
//! `_make` picks the class by [`Failure::kind`] and sets the attributes.

use std::time::Duration;

use polyglot_core::{CallError, Cause, DeployError, DeploymentError, LoadError, Value};
#[cfg(test)]
use polyglot_proto::v1 as pb;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::convert::to_python;

/// An error with what a Python caller needs to handle it: its kind (which names the
/// exception class), its message, and attributes such as `module`, `code` or `causes`.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The kind: `module_not_found`, `timeout`, `remote`, ... (`_errors.py` maps each to
    /// its class; an unknown kind is a plain `PolyglotError`).
    pub kind: String,
    /// The error's text.
    pub message: String,
    /// Attributes set on the exception, by name.
    pub attrs: Vec<(&'static str, Value)>,
    /// The error this one wraps (a fallback's own failure), set as `__cause__`.
    pub cause: Option<Box<Failure>>,
}

impl Failure {
    /// A failure of `kind` with `message` and no attributes.
    pub fn new(kind: &str, message: impl Into<String>) -> Failure {
        Failure {
            kind: kind.to_owned(),
            message: message.into(),
            attrs: Vec::new(),
            cause: None,
        }
    }

    /// With the attribute `name`.
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Failure {
        self.attrs.push((name, value.into()));
        self
    }

    /// A bug of this package (a panicked task, a broken invariant).
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new("internal", message)
    }

    /// A tokio task that panicked or was cancelled.
    pub fn from_join(e: tokio::task::JoinError) -> Failure {
        if e.is_panic() {
            Failure::from_panic(e.into_panic().as_ref())
        } else {
            Failure::internal("internal error: a polyglot task was cancelled")
        }
    }

    /// A panic (a bug of polyglot), with its message.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Failure {
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Failure::internal(format!("internal error: polyglot panicked: {text}"))
    }

    /// The Python exception.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self.build(py) {
            Ok(exc) => PyErr::from_value(exc),
            // The package's own module is broken: still raise, with the message.
            Err(e) => {
                let err = PyRuntimeError::new_err(self.message);
                err.set_cause(py, Some(e));
                err
            }
        }
    }

    fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let attrs = PyDict::new(py);
        for (name, value) in &self.attrs {
            attrs.set_item(*name, to_python(py, value)?)?;
        }
        let cause = match &self.cause {
            Some(c) => Some(c.build(py)?),
            None => None,
        };
        make(py)?.call1((self.kind.as_str(), self.message.as_str(), attrs, cause))
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        Python::attach(|py| f.into_pyerr(py))
    }
}

/// `polyglot._errors._make`, imported once.
fn make(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    MAKE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("polyglot._errors")?.getattr("_make")?.unbind())
    })
    .map(|f| f.bind(py))
}

fn causes(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| {
                Value::Array(vec![
                    Value::from(c.implementation.as_str()),
                    Value::from(c.reason.as_str()),
                ])
            })
            .collect(),
    )
}

fn seconds(d: Duration) -> Value {
    Value::Float(d.as_secs_f64())
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        let f = Failure::new(e.kind(), e.to_string());
        match e {
            CallError::ModuleNotFound { module } => f.with("module", module),
            CallError::MethodNotFound {
                module,
                method,
                offered,
            } => f.with("module", module).with("method", method).with(
                "offered",
                Value::Array(offered.into_iter().map(Value::from).collect()),
            ),
            CallError::Timeout {
                module,
                method,
                timeout,
            } => f
                .with("module", module)
                .with("method", method)
                .with("timeout", seconds(timeout)),
            CallError::WorkerExited {
                module,
                method,
                instance,
                reason,
            } => f
                .with("module", module)
                .with("method", method)
                .with("instance", instance as u64)
                .with("reason", reason),
            CallError::Remote {
                module,
                method,
                code,
                message,
                data,
            } => f
                .with("module", module)
                .with("method", method)
                .with("code", code)
                .with("message", message)
                .with("data", data.unwrap_or(Value::Null)),
            CallError::FrameTooLarge {
                module,
                method,
                what,
                size,
                limit,
            } => f
                .with("module", module)
                .with("method", method)
                .with("what", what)
                .with("size", size)
                .with("limit", limit as u64),
            CallError::Overloaded {
                module,
                method,
                queue,
            } => f
                .with("module", module)
                .with("method", method)
                .with("queue", u64::from(queue)),
            CallError::Unavailable {
                module,
                method,
                causes: c,
            } => f
                .with("module", module)
                .with("method", method)
                .with("causes", causes(&c)),
            CallError::FallbackFailed {
                module,
                method,
                causes: c,
                served_by,
                error,
            } => {
                let mut f = f
                    .with("module", module)
                    .with("method", method)
                    .with("causes", causes(&c))
                    .with("served_by", served_by);
                f.cause = Some(Box::new(Failure::from(*error)));
                f
            }
            CallError::ShuttingDown => f,
        }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Failure {
        let message = polyglot_core::error_chain(&e);
        match e {
            LoadError::NotFound(module) => {
                Failure::new("module_not_found", message).with("module", module)
            }
            _ => Failure::new("load_failed", message),
        }
    }
}

/// A deployment error of module `module`, with the kind and code the host's API gives
/// the same error (`runtime.proto`), so that both modes raise the same exception.
pub fn deployment_failure(module: &str, e: &DeploymentError) -> Failure {
    const REFUSED: &str = "deployment_refused";
    const FAILED: &str = "deployment_failed";
    const INVALID: &str = "invalid_argument";
    let (kind, code) = match e {
        DeploymentError::NotFound(_) => ("module_not_found", "not_found"),
        DeploymentError::InProcess(_) => (REFUSED, "in_process"),
        DeploymentError::Load(l) => match **l {
            LoadError::Manifest(_) => (INVALID, "manifest"),
            LoadError::Build(_) => (FAILED, "build_failed"),
            _ => (FAILED, "start_failed"),
        },
        DeploymentError::WrongModule { .. } => (INVALID, "wrong_module"),
        DeploymentError::Replicas { .. } => (INVALID, "replicas"),
        DeploymentError::ShuttingDown => ("shutting_down", "shutting_down"),
        DeploymentError::Deploy { source, .. } => match &**source {
            DeployError::InvalidVersionId { .. } => (INVALID, "invalid_version_id"),
            DeployError::InvalidStrategy { .. } => (INVALID, "invalid_strategy"),
            DeployError::UnknownVersion { .. } => ("version_not_found", "unknown_version"),
            DeployError::StartFailed { .. } => (FAILED, "start_failed"),
            DeployError::WarmFailed { .. } => (FAILED, "warm_failed"),
            DeployError::SmokeFailed { .. } => (FAILED, "smoke_failed"),
            DeployError::ScaleFailed { .. } => (FAILED, "scale_failed"),
            DeployError::IllegalTransition { .. } => (REFUSED, "illegal_transition"),
            DeployError::NoDeployment { .. } => (REFUSED, "no_deployment"),
            DeployError::DeploymentInProgress { .. } => (REFUSED, "deployment_in_progress"),
            DeployError::NotApplicable { .. } => (REFUSED, "not_applicable"),
            DeployError::NoInstances { .. } => (REFUSED, "no_instances"),
            DeployError::TooEarly { .. } => (REFUSED, "too_early"),
            DeployError::NotReady { .. } => (REFUSED, "not_ready"),
            DeployError::NoRollbackTarget { .. } => (REFUSED, "no_rollback_target"),
            DeployError::RollbackRefused { .. } => (REFUSED, "rollback_refused"),
            DeployError::Restore { .. } => (REFUSED, "restore"),
        },
    };
    let message = match e {
        DeploymentError::Load(l) => polyglot_core::error_chain(&**l),
        other => other.to_string(),
    };
    Failure::new(kind, message)
        .with("module", module)
        .with("code", code)
}

/// An error of a native function: `InvalidArgument` (a `ValueError`),
/// `AuthenticationFailed`, `TooLarge` or `CorruptData`.
pub fn native_failure(e: &polyglot_native::Error) -> Failure {
    use polyglot_native::code;
    let kind = match e.code() {
        code::INVALID_PARAMS => "invalid_argument",
        code::AUTHENTICATION_FAILED => "authentication_failed",
        code::TOO_LARGE => "too_large",
        code::CORRUPT_DATA => "corrupt_data",
        _ => "internal",
    };
    Failure::new(kind, e.to_string()).with("code", e.code())
}

/// The exception of a gRPC status from a host: its `ErrorDetail` (`runtime.proto`) says
/// which error it is; a status without one (the host unreachable, a refused key, a
/// message over a size limit) is classified by its code.
pub fn status_failure(status: &tonic::Status) -> Failure {
    use tonic::Code;
    let message = status.message().to_owned();
    let Some(d) = polyglot_proto::error_detail(status) else {
        let kind = match status.code() {
            Code::NotFound => "module_not_found",
            Code::DeadlineExceeded => "timeout",
            Code::Unavailable => "connection",
            Code::Unauthenticated | Code::PermissionDenied => "access_denied",
            Code::FailedPrecondition => "load_failed",
            Code::InvalidArgument => "invalid_argument",
            Code::ResourceExhausted | Code::OutOfRange => "frame_too_large",
            _ => "internal",
        };
        let text = if message.is_empty() {
            format!("the host answered {:?}", status.code())
        } else {
            message
        };
        return Failure::new(kind, text).with("grpc_status", format!("{:?}", status.code()));
    };
    let opt = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::from(s)
        }
    };
    let data = if d.data_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str::<serde_json::Value>(&d.data_json)
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(d.data_json.as_str()))
    };
    let causes = Value::Array(
        d.causes
            .iter()
            .map(|c| {
                Value::Array(vec![
                    Value::from(c.implementation.as_str()),
                    Value::from(c.reason.as_str()),
                ])
            })
            .collect(),
    );
    let mut f = Failure::new(&d.kind, message.clone())
        .with("module", opt(&d.module))
        .with("method", opt(&d.method))
        .with("grpc_status", format!("{:?}", status.code()));
    match d.kind.as_str() {
        "remote" => {
            f = f
                .with("code", d.code)
                .with("message", d.message)
                .with("data", data);
        }
        "unavailable" => f = f.with("causes", causes),
        "fallback_failed" => {
            f = f.with("causes", causes).with("served_by", d.served_by);
            if !d.code.is_empty() {
                let inner = Failure::new("remote", format!("{}: {}", d.code, d.message))
                    .with("module", opt(&d.module))
                    .with("method", opt(&d.method))
                    .with("code", d.code)
                    .with("message", d.message)
                    .with("data", data);
                f.cause = Some(Box::new(inner));
            }
        }
        _ => {
            if !d.code.is_empty() {
                f = f.with("code", d.code);
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(f: &'a Failure, name: &str) -> Option<&'a Value> {
        f.attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_status_without_detail_is_classified_by_its_code() {
        let f = status_failure(&tonic::Status::unauthenticated("no key"));
        assert_eq!(f.kind, "access_denied");
        assert_eq!(f.message, "no key");
        let f = status_failure(&tonic::Status::unavailable(""));
        assert_eq!(f.kind, "connection");
        assert!(f.message.contains("Unavailable"), "{}", f.message);
    }

    #[test]
    fn a_remote_error_keeps_its_code_message_and_data() {
        let detail = pb::ErrorDetail {
            kind: "remote".into(),
            module: "crypto".into(),
            method: "blake3".into(),
            code: "INVALID_PARAMS".into(),
            message: "bad key".into(),
            data_json: r#"{"param": "key"}"#.into(),
            ..Default::default()
        };
        let s = polyglot_proto::status_with_detail(tonic::Code::InvalidArgument, "x", &detail);
        let f = status_failure(&s);
        assert_eq!(f.kind, "remote");
        assert_eq!(attr(&f, "code"), Some(&Value::from("INVALID_PARAMS")));
        assert_eq!(attr(&f, "message"), Some(&Value::from("bad key")));
        assert_eq!(
            attr(&f, "data").and_then(|d| d.get("param")),
            Some(&Value::from("key"))
        );
    }

    #[test]
    fn call_errors_keep_their_kind_and_fallback_cause() {
        let inner = CallError::Remote {
            module: "b".into(),
            method: "m".into(),
            code: "X".into(),
            message: "y".into(),
            data: None,
        };
        let f = Failure::from(CallError::FallbackFailed {
            module: "a".into(),
            method: "m".into(),
            causes: vec![Cause {
                implementation: "a".into(),
                reason: "is down".into(),
            }],
            served_by: "b".into(),
            error: Box::new(inner),
        });
        assert_eq!(f.kind, "fallback_failed");
        assert_eq!(f.cause.as_ref().map(|c| c.kind.as_str()), Some("remote"));
        assert_eq!(attr(&f, "served_by"), Some(&Value::from("b")));
    }
}
