//! [`Id`]: a call's id, an integer or a string, echoed verbatim.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A call id. Workers echo it verbatim: same type, same value.
///
/// The host always issues [`Id::Uint`]; workers must accept any of the three forms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A non-negative integer.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// A string.
    Str(String),
}

impl Id {
    /// The integer, if the id is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Id::Uint(u) => Some(u),
            _ => None,
        }
    }
}

impl From<u64> for Id {
    fn from(v: u64) -> Id {
        Id::Uint(v)
    }
}

impl From<&str> for Id {
    fn from(v: &str) -> Id {
        Id::Str(v.to_owned())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Uint(u) => write!(f, "{u}"),
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Uint(u) => s.serialize_u64(*u),
            Id::Int(i) => s.serialize_i64(*i),
            Id::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

const ID_EXPECTED: &str = "`id` must be an integer or a string";

impl<'de> Visitor<'de> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Id, E> {
        Ok(Id::Uint(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Id, E> {
        Ok(if v >= 0 {
            Id::Uint(v as u64)
        } else {
            Id::Int(v)
        })
    }
    fn visit_str<E>(self, v: &str) -> Result<Id, E> {
        Ok(Id::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Id, E> {
        Ok(Id::Str(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
        Err(E::custom(format!("{ID_EXPECTED}, not the float {v}")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
        Err(E::custom(format!("{ID_EXPECTED}, not null")))
    }
    fn visit_none<E: de::Error>(self) -> Result<Id, E> {
        Err(E::custom(format!("{ID_EXPECTED}, not null")))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Id, E> {
        Err(E::custom(format!("{ID_EXPECTED}, not a boolean")))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Id, A::Error> {
        Err(de::Error::custom(format!("{ID_EXPECTED}, not an array")))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Id, A::Error> {
        Err(de::Error::custom(format!("{ID_EXPECTED}, not an object")))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Id, E> {
        Err(E::custom(format!("{ID_EXPECTED}, not binary")))
    }
}
