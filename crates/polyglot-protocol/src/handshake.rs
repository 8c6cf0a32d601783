//! [`Handshake`]: the first line a worker sends, always JSON (`docs/protocol.md`, section 2).

use serde::Serialize;

use crate::codec::Codec;
use crate::error::HandshakeError;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The environment variables the host sets for a worker (`docs/protocol.md`, section 1).
pub mod env {
    /// The protocol version the host speaks.
    pub const PROTOCOL: &str = "POLYGLOT_PROTOCOL";
    /// The module name from the manifest.
    pub const MODULE: &str = "POLYGLOT_MODULE";
    /// The module version from the manifest.
    pub const VERSION: &str = "POLYGLOT_VERSION";
    /// `json` or `msgpack`.
    pub const CODEC: &str = "POLYGLOT_CODEC";
    /// `stdio`, `socket` or `grpc`.
    pub const TRANSPORT: &str = "POLYGLOT_TRANSPORT";
    /// A remote gRPC worker's listen address (`host:port` or `unix:/path`); set by its
    /// operator, never by the host.
    pub const GRPC_LISTEN: &str = "POLYGLOT_GRPC_LISTEN";
    /// With the socket transport: the local socket name to connect to.
    pub const SOCKET: &str = "POLYGLOT_SOCKET";
    /// The frame size limit in bytes.
    pub const MAX_FRAME: &str = "POLYGLOT_MAX_FRAME";
    /// The instance number inside the module's pool.
    pub const INSTANCE: &str = "POLYGLOT_INSTANCE";
}

/// A worker's handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handshake {
    /// The protocol version the worker speaks.
    #[serde(rename = "polyglot")]
    pub protocol: u64,
    /// The module it serves.
    pub module: String,
    /// Its own version.
    pub version: String,
    /// Its language, for display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The codec of every later frame.
    pub codec: Codec,
    /// The methods it serves (not the `$` ones).
    pub methods: Vec<String>,
    /// How many calls it takes at once (at least 1).
    #[serde(rename = "maxConcurrency")]
    pub max_concurrency: u32,
    /// Its process id, for display and diagnostics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `grpc` when the worker serves gRPC (`docs/protocol.md`, section 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// With `grpc`: where it listens, `unix:/path` or `host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// What the host expects of a handshake, from the module's manifest.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The manifest's `name`.
    pub module: &'a str,
    /// The manifest's `codec`.
    pub codec: Codec,
    /// The manifest's `capabilities`: methods the worker must serve.
    pub capabilities: &'a [String],
}

impl Handshake {
    /// Whether `line` is meant as a handshake: a JSON object with a `polyglot` field.
    /// Lines that are not are skipped (and reported) before the handshake.
    pub fn is_candidate(line: &[u8]) -> bool {
        let trimmed = line.trim_ascii_start();
        trimmed.starts_with(b"{")
            && matches!(
                serde_json::from_slice::<serde_json::Value>(line),
                Ok(serde_json::Value::Object(ref m)) if m.contains_key("polyglot")
            )
    }

    /// Parses a handshake line, filling in defaults.
    ///
    /// # Errors
    /// A [`HandshakeError`] naming the field that is missing or wrong, or the protocol
    /// version the host does not speak.
    pub fn parse(line: &[u8]) -> Result<Handshake, HandshakeError> {
        let malformed = |m: String| HandshakeError::Malformed(m);
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
        let serde_json::Value::Object(m) = value else {
            return Err(malformed("a handshake is a JSON object".into()));
        };
        let protocol = match m.get("polyglot") {
            None => {
                return Err(malformed(
                    "no `polyglot` field (the protocol version the worker speaks)".into(),
                ))
            }
            Some(v) => v.as_u64().ok_or_else(|| {
                malformed(format!(
                    "`polyglot` must be a protocol version number, not {v}"
                ))
            })?,
        };
        if protocol != u64::from(PROTOCOL_VERSION) {
            return Err(HandshakeError::UnsupportedVersion {
                worker: protocol,
                host: PROTOCOL_VERSION,
            });
        }
        let string = |key: &str| -> Result<String, HandshakeError> {
            match m.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(malformed(format!("`{key}` must be a string, not {v}"))),
                None => Err(malformed(format!("no `{key}` field"))),
            }
        };
        let module = string("module")?;
        let version = string("version")?;
        let language = m
            .get("language")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let codec = match m.get("codec") {
            None => Codec::Json,
            Some(serde_json::Value::String(s)) => s.parse().map_err(|_| {
                malformed(format!(
                    "`codec` must be \"json\" or \"msgpack\", not {s:?}"
                ))
            })?,
            Some(v) => return Err(malformed(format!("`codec` must be a string, not {v}"))),
        };
        let methods = match m.get("methods") {
            None => {
                return Err(malformed(
                    "no `methods` list (the methods it serves)".into(),
                ))
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| malformed(format!("`methods` must list strings, not {v}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => return Err(malformed(format!("`methods` must be an array, not {v}"))),
        };
        let max_concurrency = match m.get("maxConcurrency") {
            None => 1,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => u32::try_from(n).unwrap_or(u32::MAX),
                _ => {
                    return Err(malformed(format!(
                        "`maxConcurrency` must be an integer of at least 1, not {v}"
                    )))
                }
            },
        };
        let pid = m
            .get("pid")
            .and_then(|v| v.as_u64())
            .and_then(|p| u32::try_from(p).ok());
        let optional_string = |key: &str| -> Result<Option<String>, HandshakeError> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(malformed(format!("`{key}` must be a string, not {v}"))),
            }
        };
        let transport = optional_string("transport")?;
        let address = optional_string("address")?;
        if transport.as_deref() == Some("grpc") && address.as_deref().is_none_or(str::is_empty) {
            return Err(malformed(
                "`transport` is \"grpc\" but there is no `address` (where the worker listens)"
                    .into(),
            ));
        }
        Ok(Handshake {
            protocol,
            module,
            version,
            language,
            codec,
            methods,
            max_concurrency,
            pid,
            transport,
            address,
        })
    }

    /// Checks the handshake against the manifest.
    ///
    /// # Errors
    /// A [`HandshakeError`] for another module, another codec, or capabilities the worker
    /// does not serve (all of them named).
    pub fn check(&self, expected: &Expected<'_>) -> Result<(), HandshakeError> {
        if self.module != expected.module {
            return Err(HandshakeError::ModuleMismatch {
                expected: expected.module.to_owned(),
                worker: self.module.clone(),
            });
        }
        if self.codec != expected.codec {
            return Err(HandshakeError::CodecMismatch {
                expected: expected.codec,
                worker: self.codec,
            });
        }
        let missing: Vec<String> = expected
            .capabilities
            .iter()
            .filter(|c| !self.methods.iter().any(|m| m == *c))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(HandshakeError::MissingMethods { missing });
        }
        Ok(())
    }

    /// The handshake as the line a worker writes, with its `\n`.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a handshake always encodes");
        s.push('\n');
        s
    }
}
