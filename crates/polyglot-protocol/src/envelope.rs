//! The messages of `docs/protocol.md`, section 4: requests, responses, progress and logs,
//! with their encoders (a whole frame appended to a buffer) and validating decoders.

use std::fmt;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};

use crate::codec::Codec;
use crate::error::DecodeError;
use crate::id::Id;
use crate::value::Value;

/// A request from the host to a worker. Without an `id` it is a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The call's id; `None` for a notification, which is never answered.
    pub id: Option<Id>,
    /// The method to run; names starting with `$` are reserved.
    pub method: String,
    /// The arguments (`Value::Null` when absent).
    pub params: Value,
    /// When the host sent it, milliseconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// How long the host will wait for this call, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// The error object of a response: `{code, message, data?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    /// A code from [`crate::code`] or a method's own `UPPER_SNAKE` code.
    pub code: String,
    /// For people.
    pub message: String,
    /// Details for programs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with a code and a message and no data.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorObject {
        ErrorObject {
            code: code.into(),
            message: message.into(),
            data: None,
        }
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A worker's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request's id, echoed verbatim.
    pub id: Id,
    /// The result, or the error.
    pub outcome: Result<Value, ErrorObject>,
    /// When the worker sent it, milliseconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// Time spent in the method, in microseconds.
    pub execution_time_us: Option<u64>,
}

/// The level of a worker's log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the worker handled.
    Warn,
    /// Something failed.
    Error,
}

/// A log message a worker sends instead of a stderr line, keeping level and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The level.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// Structured fields, if any.
    pub fields: Option<Value>,
}

/// Anything a worker sends after its handshake.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerMessage {
    /// The answer to a request.
    Response(Response),
    /// A progress notification for a running call.
    Progress {
        /// The call's id.
        id: Id,
        /// Any value.
        progress: Value,
    },
    /// A log message.
    Log(LogRecord),
}

// ------------------------------------------------------------------------- encoding

/// Appends one whole frame holding `msg` to `buf`: a JSON line, or a length-prefixed
/// MessagePack map.
fn encode_frame<T: Serialize>(codec: Codec, buf: &mut Vec<u8>, msg: &T) {
    match codec {
        Codec::Json => {
            // Serializing our own types into a Vec cannot fail: every map key is a string.
            serde_json::to_writer(&mut *buf, msg).expect("JSON encoding of an envelope");
            buf.push(b'\n');
        }
        Codec::Msgpack => {
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            rmp_serde::encode::write_named(buf, msg).expect("MessagePack encoding of an envelope");
            let len = (buf.len() - at - 4) as u32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// The payload size of the frame that starts at `at` in `buf` (without `\n` or prefix).
pub fn frame_payload_len(codec: Codec, buf: &[u8], at: usize) -> usize {
    match codec {
        Codec::Json => buf.len() - at - 1,
        Codec::Msgpack => buf.len() - at - 4,
    }
}

#[derive(Serialize)]
struct RequestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Id>,
    method: &'a str,
    params: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(rename = "timeoutMs", skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
}

impl Request {
    /// A request with an id and params, without timestamp or timeout.
    pub fn new(id: impl Into<Id>, method: impl Into<String>, params: Value) -> Request {
        Request {
            id: Some(id.into()),
            method: method.into(),
            params,
            timestamp: None,
            timeout_ms: None,
        }
    }

    /// A notification: a request without id, never answered.
    pub fn notification(method: impl Into<String>, params: Value) -> Request {
        Request {
            id: None,
            method: method.into(),
            params,
            timestamp: None,
            timeout_ms: None,
        }
    }

    /// Appends this request as one frame to `buf`.
    pub fn encode(&self, codec: Codec, buf: &mut Vec<u8>) {
        encode_request(
            codec,
            buf,
            self.id.as_ref(),
            &self.method,
            &self.params,
            self.timestamp,
            self.timeout_ms,
        );
    }

    /// Decodes and validates one request frame.
    ///
    /// # Errors
    /// When the frame does not decode, is not an object, or breaks a rule of the
    /// envelope; the error names the field.
    pub fn decode(codec: Codec, frame: &[u8]) -> Result<Request, DecodeError> {
        let raw: RawRequest = decode_object(codec, frame)?;
        let method = raw
            .method
            .ok_or_else(|| DecodeError::invalid("a request needs a `method`"))?;
        Ok(Request {
            id: raw.id,
            method,
            params: raw.params.unwrap_or(Value::Null),
            timestamp: raw.timestamp,
            timeout_ms: raw.timeout_ms,
        })
    }

    /// Whether this is a notification (no id, never answered).
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }
}

/// Appends one request frame built from borrowed parts to `buf` (the host's hot path:
/// no `Request` is built).
pub fn encode_request(
    codec: Codec,
    buf: &mut Vec<u8>,
    id: Option<&Id>,
    method: &str,
    params: &Value,
    timestamp: Option<u64>,
    timeout_ms: Option<u64>,
) {
    let msg = RequestOut {
        id,
        method,
        params,
        timestamp,
        timeout_ms,
    };
    encode_frame(codec, buf, &msg);
}

/// Reads the `id` of a request frame that failed to decode, so that it can still be
/// answered with `INVALID_REQUEST`.
pub fn salvage_id(codec: Codec, frame: &[u8]) -> Option<Id> {
    #[derive(Deserialize)]
    struct OnlyId {
        #[serde(default, deserialize_with = "present")]
        id: Option<Id>,
    }
    decode_object::<OnlyId>(codec, frame).ok()?.id
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    id: &'a Id,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<u64>,
    #[serde(rename = "executionTime", skip_serializing_if = "Option::is_none")]
    execution_time: Option<u64>,
}

#[derive(Serialize)]
struct ProgressOut<'a> {
    id: &'a Id,
    progress: &'a Value,
}

#[derive(Serialize)]
struct LogOut<'a> {
    log: LogBody<'a>,
}

#[derive(Serialize)]
struct LogBody<'a> {
    level: LogLevel,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a Value>,
}

impl Response {
    /// Appends this response as one frame to `buf`.
    pub fn encode(&self, codec: Codec, buf: &mut Vec<u8>) {
        let (result, error) = match &self.outcome {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        let msg = ResponseOut {
            id: &self.id,
            result,
            error,
            timestamp: self.timestamp,
            execution_time: self.execution_time_us,
        };
        encode_frame(codec, buf, &msg);
    }
}

impl WorkerMessage {
    /// Appends this message as one frame to `buf`.
    pub fn encode(&self, codec: Codec, buf: &mut Vec<u8>) {
        match self {
            WorkerMessage::Response(r) => r.encode(codec, buf),
            WorkerMessage::Progress { id, progress } => {
                encode_frame(codec, buf, &ProgressOut { id, progress })
            }
            WorkerMessage::Log(l) => encode_frame(
                codec,
                buf,
                &LogOut {
                    log: LogBody {
                        level: l.level,
                        message: &l.message,
                        fields: l.fields.as_ref(),
                    },
                },
            ),
        }
    }

    /// Decodes and validates one frame a worker sent after its handshake.
    ///
    /// # Errors
    /// When the frame does not decode, is not an object, or breaks a rule of the
    /// envelope; the error names the field.
    pub fn decode(codec: Codec, frame: &[u8]) -> Result<WorkerMessage, DecodeError> {
        let raw: RawMessage = decode_object(codec, frame)?;
        if let Some(log) = raw.log {
            return parse_log(log).map(WorkerMessage::Log);
        }
        let Some(id) = raw.id else {
            return Err(DecodeError::invalid(
                "a response needs an `id` (a message without one must be a `log`)",
            ));
        };
        let outcome = match (raw.result, raw.error, raw.progress) {
            (Some(_), Some(_), _) => {
                return Err(DecodeError::invalid(
                    "a response has either `result` or `error`, not both",
                ))
            }
            (Some(v), None, None) => Ok(v),
            (None, Some(e), None) => Err(parse_error_object(e)?),
            (None, None, Some(progress)) => return Ok(WorkerMessage::Progress { id, progress }),
            (None, None, None) => {
                return Err(DecodeError::invalid(
                    "a message with an `id` needs `result`, `error` or `progress`",
                ))
            }
            (_, _, Some(_)) => {
                return Err(DecodeError::invalid(
                    "a progress message carries no `result` or `error`",
                ))
            }
        };
        Ok(WorkerMessage::Response(Response {
            id,
            outcome,
            timestamp: raw.timestamp,
            execution_time_us: raw.execution_time,
        }))
    }
}

// ------------------------------------------------------------------------- decoding

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default, deserialize_with = "present")]
    id: Option<Id>,
    #[serde(default, deserialize_with = "method_field")]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "timestamp_field")]
    timestamp: Option<u64>,
    #[serde(default, rename = "timeoutMs", deserialize_with = "timeout_field")]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default, deserialize_with = "present")]
    id: Option<Id>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    progress: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    log: Option<Value>,
    #[serde(default, deserialize_with = "timestamp_field")]
    timestamp: Option<u64>,
    #[serde(
        default,
        rename = "executionTime",
        deserialize_with = "execution_time_field"
    )]
    execution_time: Option<u64>,
}

/// A field that is present, even as `null` (`Some(Value::Null)`), as opposed to absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn named<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    what: &str,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d)
        .map(Some)
        .map_err(|e| de::Error::custom(format!("{what}: {e}")))
}

fn method_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named(d, "`method` must be a string")
}

fn timestamp_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(
        d,
        "`timestamp` must be a non-negative integer (ms since the epoch)",
    )
}

fn timeout_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(d, "`timeoutMs` must be a non-negative integer")
}

fn execution_time_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(
        d,
        "`executionTime` must be a non-negative integer (microseconds)",
    )
}

/// Decodes a frame that must hold one object/map.
fn decode_object<T: DeserializeOwned>(codec: Codec, frame: &[u8]) -> Result<T, DecodeError> {
    match codec {
        Codec::Json => {
            let first = frame.iter().find(|b| !b.is_ascii_whitespace());
            if first.is_some_and(|&b| b != b'{') && serde_json::from_slice::<Value>(frame).is_ok() {
                return Err(DecodeError::invalid("a message must be a JSON object"));
            }
            serde_json::from_slice(frame).map_err(DecodeError::Json)
        }
        Codec::Msgpack => {
            let is_map = matches!(frame.first(), Some(0x80..=0x8f | 0xde | 0xdf));
            if !is_map {
                return Err(DecodeError::invalid(
                    "a message must be a MessagePack map (an object)",
                ));
            }
            rmp_serde::from_slice(frame).map_err(DecodeError::Msgpack)
        }
    }
}

fn parse_error_object(v: Value) -> Result<ErrorObject, DecodeError> {
    let Value::Map(mut m) = v else {
        return Err(DecodeError::invalid(format!(
            "`error` must be an object {{code, message, data?}}, not {}",
            v.type_name()
        )));
    };
    let code = match m.remove("code") {
        Some(Value::String(s)) => s,
        _ => return Err(DecodeError::invalid("`error` needs a string `code`")),
    };
    let message = match m.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Err(DecodeError::invalid("`error` needs a string `message`")),
    };
    Ok(ErrorObject {
        code,
        message,
        data: m.remove("data"),
    })
}

fn parse_log(v: Value) -> Result<LogRecord, DecodeError> {
    let Value::Map(mut m) = v else {
        return Err(DecodeError::invalid(
            "`log` must be an object {level, message, fields?}",
        ));
    };
    let level = match m.remove("level") {
        Some(Value::String(s)) => match s.as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            other => {
                return Err(DecodeError::invalid(format!(
                    "`log.level` must be trace, debug, info, warn or error, not {other:?}"
                )))
            }
        },
        _ => return Err(DecodeError::invalid("`log` needs a string `level`")),
    };
    let message = match m.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Err(DecodeError::invalid("`log` needs a string `message`")),
    };
    Ok(LogRecord {
        level,
        message,
        fields: m.remove("fields"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_in_both_codecs() {
        let mut req = Request::new(7u64, "upper", Value::from(vec![Value::from("hi")]));
        req.timeout_ms = Some(100);
        for codec in [Codec::Json, Codec::Msgpack] {
            let mut buf = Vec::new();
            req.encode(codec, &mut buf);
            let payload = match codec {
                Codec::Json => &buf[..buf.len() - 1],
                Codec::Msgpack => &buf[4..],
            };
            assert_eq!(frame_payload_len(codec, &buf, 0), payload.len());
            assert_eq!(Request::decode(codec, payload).unwrap(), req);
        }
    }

    #[test]
    fn id_comes_first_so_oversize_frames_can_be_attributed() {
        let mut buf = Vec::new();
        Response {
            id: Id::Uint(3),
            outcome: Ok(Value::Null),
            timestamp: Some(1),
            execution_time_us: Some(2),
        }
        .encode(Codec::Json, &mut buf);
        assert!(buf.starts_with(br#"{"id":3,"result":null"#));
    }
}
