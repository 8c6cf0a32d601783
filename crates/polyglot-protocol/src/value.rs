//! [`Value`]: the data model of params and results — JSON's, plus binary.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key of the JSON form of binary data: `{"$bytes": "<base64>"}`.
pub const BYTES_KEY: &str = "$bytes";

/// A map of string keys to values, sorted by key.
pub type Map = BTreeMap<String, Value>;

/// A protocol value: the JSON data model plus binary data.
///
/// Binary travels as MessagePack `bin` and, in JSON, as `{"$bytes": "<base64>"}`
/// (`docs/protocol.md`, section 7). Integers keep their sign and width: a non-negative
/// integer is always held as [`Value::Uint`], a negative one as [`Value::Int`], and the two
/// compare equal by numeric value whichever way a value was built.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer (non-negative ones are [`Value::Uint`] when decoded).
    Int(i64),
    /// A non-negative integer.
    Uint(u64),
    /// A double-precision float.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// Binary data.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An object with string keys.
    Map(Map),
}

impl Value {
    /// Encodes this value alone (not a frame) in `codec`: JSON text, or one MessagePack
    /// value. The form of params and results carried as bytes, as in the gRPC API.
    pub fn encode(&self, codec: crate::Codec) -> Vec<u8> {
        match codec {
            // Encoding a `Value` cannot fail: every map key is a string.
            crate::Codec::Json => serde_json::to_vec(self).expect("JSON encoding of a value"),
            crate::Codec::Msgpack => {
                rmp_serde::to_vec(self).expect("MessagePack encoding of a value")
            }
        }
    }

    /// Decodes one value encoded by [`Value::encode`]; empty bytes are `null`.
    ///
    /// # Errors
    /// When the bytes are not one valid value in `codec`.
    pub fn decode(codec: crate::Codec, bytes: &[u8]) -> Result<Value, crate::DecodeError> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        match codec {
            crate::Codec::Json => serde_json::from_slice(bytes).map_err(crate::DecodeError::Json),
            crate::Codec::Msgpack => {
                rmp_serde::from_slice(bytes).map_err(crate::DecodeError::Msgpack)
            }
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Uint(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(u) => Some(u),
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// The number as a float, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::Uint(u) => Some(u as f64),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes, if this is binary data.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is an object.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A short name of this value's type, for error messages ("string", "array", ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Uint(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "object",
        }
    }

    /// Converts to a `serde_json::Value`, with binary in its JSON form `{"$bytes": ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Uint(u) => (*u).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => s.clone().into(),
            Value::Bytes(b) => {
                let mut m = serde_json::Map::new();
                m.insert(BYTES_KEY.to_owned(), BASE64.encode(b).into());
                serde_json::Value::Object(m)
            }
            Value::Array(a) => a.iter().map(Value::to_json).collect(),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Converts from a `serde_json::Value`, reading `{"$bytes": ...}` as binary.
    ///
    /// # Errors
    /// When a `$bytes` object does not hold valid base64.
    pub fn from_json(json: serde_json::Value) -> Result<Value, serde_json::Error> {
        serde_json::from_value(json)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(_) | Uint(_), Int(_) | Uint(_)) => {
                self.as_i64() == other.as_i64() && self.as_u64() == other.as_u64()
            }
            (Float(a), Float(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    /// Writes the JSON form of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::Uint(v as u64) }
        }
    )*};
}
macro_rules! from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                let v = v as i64;
                if v >= 0 { Value::Uint(v as u64) } else { Value::Int(v) }
            }
        }
    )*};
}
from_unsigned!(u8, u16, u32, u64, usize);
from_signed!(i8, i16, i32, i64, isize);

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value::Map(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<serde_json::Value> for Value {
    /// Converts JSON, reading `{"$bytes": "<valid base64>"}` as binary; a `$bytes` object
    /// whose value is not valid base64 stays an object.
    fn from(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Value::Uint(u)
                } else if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(m) => {
                if m.len() == 1 {
                    if let Some(serde_json::Value::String(s)) = m.get(BYTES_KEY) {
                        if let Ok(bytes) = BASE64.decode(s) {
                            return Value::Bytes(bytes);
                        }
                    }
                }
                Value::Map(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Uint(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => {
                if s.is_human_readable() {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry(BYTES_KEY, &BASE64.encode(b))?;
                    m.end()
                } else {
                    s.serialize_bytes(b)
                }
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a protocol value (JSON data or binary)")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            out.insert(key, value);
        }
        if out.len() == 1 {
            if let Some(v) = out.get(BYTES_KEY) {
                let Value::String(text) = v else {
                    return Err(de::Error::custom(format!(
                        "`$bytes` must hold a base64 string, not {}",
                        v.type_name()
                    )));
                };
                let bytes = BASE64.decode(text).map_err(|e| {
                    de::Error::custom(format!("`$bytes` does not hold valid base64: {e}"))
                })?;
                return Ok(Value::Bytes(bytes));
            }
        }
        Ok(Value::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_compare_by_value_whatever_their_variant() {
        assert_eq!(Value::Int(5), Value::Uint(5));
        assert_ne!(Value::Int(-5), Value::Uint(5));
        assert_eq!(Value::from(-1i32), Value::Int(-1));
        assert_eq!(Value::from(3i32), Value::Uint(3));
    }

    #[test]
    fn binary_is_an_object_in_json_and_bin_in_msgpack() {
        let v = Value::Bytes(b"hi".to_vec());
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"$bytes":"aGk="}"#);
        let mp = rmp_serde::to_vec(&v).unwrap();
        assert_eq!(mp, vec![0xc4, 2, b'h', b'i']);
        assert_eq!(rmp_serde::from_slice::<Value>(&mp).unwrap(), v);
    }

    #[test]
    fn json_round_trip_through_serde_json_value() {
        let v: Value =
            serde_json::from_str(r#"{"a":[1,-2,1.5,"x",null,true],"b":{"$bytes":"AAE="}}"#)
                .unwrap();
        assert_eq!(Value::from(v.to_json()), v);
        assert_eq!(v.get("b").and_then(Value::as_bytes), Some(&[0u8, 1][..]));
    }
}
