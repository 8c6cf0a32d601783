//! [`MethodError`], what a method returns when it fails, and [`ServeError`].

use polyglot_protocol::{code, ErrorObject, Value};

/// The error a method returns: it becomes the response's `error` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MethodError {
    /// A code from `polyglot_protocol::code` or the method's own `UPPER_SNAKE` code.
    pub code: String,
    /// For people.
    pub message: String,
    /// Details for programs.
    pub data: Option<Value>,
}

impl MethodError {
    /// An error with a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> MethodError {
        MethodError {
            code: code.into(),
            message: message.into(),
            data: None,
        }
    }

    /// `INVALID_PARAMS`: the params do not fit the method.
    pub fn invalid_params(message: impl Into<String>) -> MethodError {
        MethodError::new(code::INVALID_PARAMS, message)
    }

    /// `INTERNAL`: the method failed unexpectedly.
    pub fn internal(message: impl Into<String>) -> MethodError {
        MethodError::new(code::INTERNAL, message)
    }

    /// Adds details for programs.
    pub fn with_data(mut self, data: Value) -> MethodError {
        self.data = Some(data);
        self
    }
}

impl From<MethodError> for ErrorObject {
    fn from(e: MethodError) -> ErrorObject {
        ErrorObject {
            code: e.code,
            message: e.message,
            data: e.data,
        }
    }
}

impl From<ErrorObject> for MethodError {
    fn from(e: ErrorObject) -> MethodError {
        MethodError {
            code: e.code,
            message: e.message,
            data: e.data,
        }
    }
}

/// Why [`crate::Worker::serve`] could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Started without the host's environment (run by hand).
    #[error(
        "this program is a polyglot worker for module {module:?}; it is started by \
         polyglot-host, which speaks to it over stdin/stdout (see docs/protocol.md). \
         Add it to a module.json and run polyglot-host instead."
    )]
    NotStartedByHost {
        /// The module the worker serves.
        module: String,
    },
    /// The host's environment asks for something this SDK cannot do.
    #[error("{variable} is {value:?}: {problem}")]
    Environment {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing the protocol stream failed.
    #[error("protocol stream: {0}")]
    Io(#[from] std::io::Error),
}
