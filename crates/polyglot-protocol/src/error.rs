//! The errors of decoding frames, envelopes and handshakes.

/// A frame that does not hold a valid message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The frame is not valid MessagePack.
    #[error("invalid MessagePack: {0}")]
    Msgpack(#[source] rmp_serde::decode::Error),
    /// The frame decodes but breaks a rule of the envelope.
    #[error("{0}")]
    Invalid(String),
}

impl DecodeError {
    pub(crate) fn invalid(message: impl Into<String>) -> DecodeError {
        DecodeError::Invalid(message.into())
    }
}

/// A handshake the host refuses. Each variant says which rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The line is not a well-formed handshake.
    #[error("malformed handshake: {0}")]
    Malformed(String),
    /// The worker speaks another protocol version.
    #[error(
        "the worker speaks protocol version {worker}, this host speaks protocol version {host}"
    )]
    UnsupportedVersion {
        /// What the worker said.
        worker: u64,
        /// What the host speaks.
        host: u32,
    },
    /// The worker serves another module (a wrong binary, most likely).
    #[error("the worker serves module {worker:?} but the manifest names module {expected:?}")]
    ModuleMismatch {
        /// The manifest's name.
        expected: String,
        /// What the worker said.
        worker: String,
    },
    /// The worker speaks another codec than the manifest's.
    #[error("the worker speaks codec {worker} but the manifest's codec is {expected}")]
    CodecMismatch {
        /// The manifest's codec.
        expected: crate::Codec,
        /// What the worker said.
        worker: crate::Codec,
    },
    /// Methods the manifest's `capabilities` lists that the worker does not serve.
    #[error("the worker does not serve {} listed in the manifest's capabilities: {}",
            if .missing.len() == 1 { "a method" } else { "methods" }, .missing.join(", "))]
    MissingMethods {
        /// The missing method names.
        missing: Vec<String>,
    },
}

/// The reader reached the end of its stream inside a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stream ended inside a frame ({buffered} bytes of an unfinished frame)")]
pub struct Truncated {
    /// How many bytes of the unfinished frame had arrived.
    pub buffered: u64,
}
