//! [`Error`], the one error type of this crate, and the wire codes it maps to.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error codes a native handler answers with, one per [`Error`] kind.
pub mod code {
    /// A param is missing, of the wrong type, or out of range (`data.param` names it).
    pub const INVALID_PARAMS: &str = polyglot_protocol::code::INVALID_PARAMS;
    /// Decryption failed: wrong key, wrong associated data, or an altered message.
    pub const AUTHENTICATION_FAILED: &str = "AUTHENTICATION_FAILED";
    /// An input or output would exceed a limit (`data.limit`, `data.actual` when known).
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// Compressed data is not valid zstd.
    pub const CORRUPT_DATA: &str = "CORRUPT_DATA";
    /// The text is not valid JSON (`data.line`, `data.column`, 1-based).
    pub const BAD_JSON: &str = "BAD_JSON";
    /// The regex does not compile: bad syntax, or too large once compiled (`data.reason`).
    pub const BAD_PATTERN: &str = "BAD_PATTERN";
    /// Reading or writing a stream failed.
    pub const INTERNAL: &str = polyglot_protocol::code::INTERNAL;
}

/// Why a pattern was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternProblem {
    /// The pattern is not valid regex syntax.
    Syntax,
    /// The pattern is valid but compiles past the size limit.
    TooLarge,
}

impl PatternProblem {
    /// `"syntax"` or `"too_large"`, as in the `reason` of a `BAD_PATTERN` error.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternProblem::Syntax => "syntax",
            PatternProblem::TooLarge => "too_large",
        }
    }
}

/// Everything that can go wrong in this crate. Each variant names what was wrong: the
/// param, the expected and actual length, the limit, the line and column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key of the wrong length.
    #[error("`{param}` must be {expected} bytes, got {actual}")]
    KeyLength {
        /// The param that holds the key.
        param: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it had.
        actual: usize,
    },
    /// Decryption failed: the key or the associated data differ from encryption's, or
    /// the message was altered. Which of these is deliberately unknowable.
    #[error("authentication failed: wrong key, wrong associated data, or the message was altered")]
    AuthenticationFailed,
    /// An encrypted message too short to hold a nonce and a tag.
    #[error(
        "`{param}` is {actual} bytes, shorter than the {minimum} bytes of an encrypted \
         message's nonce and tag"
    )]
    MessageTooShort {
        /// The param that holds the message.
        param: &'static str,
        /// The shortest valid message.
        minimum: usize,
        /// The length it had.
        actual: usize,
    },
    /// A param out of its range or of the wrong form.
    #[error("invalid `{param}`: {problem}")]
    InvalidParam {
        /// The param.
        param: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An input or output over a limit.
    #[error("{what} is over the limit of {limit} bytes{}", actual.map(|a| format!(" ({a} bytes)")).unwrap_or_default())]
    TooLarge {
        /// What was too large ("decompressed data", "hash length", ...).
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
        /// The size, when it is known before the work is done.
        actual: Option<u64>,
    },
    /// Compressed data that is not valid zstd.
    #[error("compressed data is not valid zstd: {source}")]
    CorruptData {
        /// What the decoder reported.
        #[source]
        source: std::io::Error,
    },
    /// Text that is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    BadJson {
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column of the error, in bytes.
        column: usize,
        /// What is wrong there.
        message: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A regex that does not compile.
    #[error("bad pattern {pattern:?}: {detail}")]
    BadPattern {
        /// Syntax, or too large once compiled.
        problem: PatternProblem,
        /// The pattern, cut to its first 200 characters.
        pattern: String,
        /// What the compiler reported.
        detail: String,
        /// The compiler's error.
        #[source]
        source: regex::Error,
    },
    /// Reading or writing a stream failed.
    #[error("stream: {0}")]
    Io(#[source] std::io::Error),
}

impl Error {
    /// The wire code of this error (see [`code`]).
    pub fn code(&self) -> &'static str {
        match self {
            Error::KeyLength { .. }
            | Error::MessageTooShort { .. }
            | Error::InvalidParam { .. } => code::INVALID_PARAMS,
            Error::AuthenticationFailed => code::AUTHENTICATION_FAILED,
            Error::TooLarge { .. } => code::TOO_LARGE,
            Error::CorruptData { .. } => code::CORRUPT_DATA,
            Error::BadJson { .. } => code::BAD_JSON,
            Error::BadPattern { .. } => code::BAD_PATTERN,
            Error::Io(_) => code::INTERNAL,
        }
    }

    pub(crate) fn invalid(param: &'static str, problem: impl Into<String>) -> Error {
        Error::InvalidParam {
            param,
            problem: problem.into(),
        }
    }

    /// Wraps an I/O error from a stream, unwrapping an [`Error`] a reader or writer of
    /// this crate carried through `std::io`.
    pub(crate) fn from_io(e: std::io::Error) -> Error {
        if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Error::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => *ours,
            Some(Err(other)) => Error::Io(std::io::Error::new(kind, other)),
            None => Error::Io(kind.into()),
        }
    }

    /// This error as an `std::io::Error`, for `Read` and `Write` implementations; undone
    /// by [`Error::from_io`].
    pub(crate) fn into_io(self) -> std::io::Error {
        match self {
            Error::Io(e) => e,
            other => std::io::Error::other(other),
        }
    }
}

impl From<Error> for polyglot_worker::MethodError {
    /// The error a handler answers with: the code, the message, and in `data` the fields
    /// a program needs (`param`, `expected`, `actual`, `limit`, `line`, `column`, ...).
    fn from(e: Error) -> polyglot_worker::MethodError {
        use polyglot_worker::{Map, Value};
        let mut data = Map::new();
        let mut put = |k: &str, v: Value| {
            data.insert(k.to_owned(), v);
        };
        match &e {
            Error::KeyLength {
                param,
                expected,
                actual,
            } => {
                put("param", Value::from(*param));
                put("expected", Value::from(*expected));
                put("actual", Value::from(*actual));
            }
            Error::MessageTooShort {
                param,
                minimum,
                actual,
            } => {
                put("param", Value::from(*param));
                put("minimum", Value::from(*minimum));
                put("actual", Value::from(*actual));
            }
            Error::InvalidParam { param, .. } => put("param", Value::from(*param)),
            Error::TooLarge {
                what,
                limit,
                actual,
            } => {
                put("what", Value::from(*what));
                put("limit", Value::from(*limit));
                if let Some(a) = actual {
                    put("actual", Value::from(*a));
                }
            }
            Error::BadJson { line, column, .. } => {
                put("line", Value::from(*line));
                put("column", Value::from(*column));
            }
            Error::BadPattern {
                problem, pattern, ..
            } => {
                put("reason", Value::from(problem.as_str()));
                put("pattern", Value::from(pattern.as_str()));
            }
            Error::AuthenticationFailed | Error::CorruptData { .. } | Error::Io(_) => {}
        }
        let err = polyglot_worker::MethodError::new(e.code(), e.to_string());
        if data.is_empty() {
            err
        } else {
            err.with_data(Value::Map(data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_survives_a_trip_through_std_io() {
        let e = Error::TooLarge {
            what: "decompressed data",
            limit: 10,
            actual: None,
        };
        match Error::from_io(e.into_io()) {
            Error::TooLarge { limit: 10, .. } => {}
            other => panic!("lost on the way: {other:?}"),
        }
        let plain = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        assert!(matches!(Error::from_io(plain), Error::Io(_)));
    }

    #[test]
    fn method_errors_carry_the_fields_programs_need() {
        let e: polyglot_worker::MethodError = Error::KeyLength {
            param: "key",
            expected: 32,
            actual: 16,
        }
        .into();
        assert_eq!(e.code, "INVALID_PARAMS");
        assert_eq!(e.message, "`key` must be 32 bytes, got 16");
        let data = e.data.unwrap();
        assert_eq!(
            data.get("expected"),
            Some(&polyglot_worker::Value::from(32))
        );
        assert_eq!(data.get("actual"), Some(&polyglot_worker::Value::from(16)));
    }
}
