//! [`Codec`]: which encoding frames use after the handshake.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The encoding of every frame after the handshake (`docs/protocol.md`, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Newline-delimited JSON: one object per line.
    #[default]
    Json,
    /// Length-prefixed MessagePack: a 4-byte big-endian length, then one map.
    Msgpack,
}

impl Codec {
    /// The codec's name on the wire and in manifests: `json` or `msgpack`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::Msgpack => "msgpack",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a codec name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}: expected \"json\" or \"msgpack\"")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Codec, UnknownCodec> {
        match s {
            "json" => Ok(Codec::Json),
            "msgpack" => Ok(Codec::Msgpack),
            other => Err(UnknownCodec(other.to_owned())),
        }
    }
}
