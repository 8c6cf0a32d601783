//! [`Params`]: reading a method's params by name, whether the caller sent them named
//! (`{"data": ..., "key": ...}`), positional (`[data, key]`) or as the first param alone,
//! each taken out of the params without copying; and errors that name the param.

use crate::{Map, MethodError, Value};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use polyglot_protocol::BYTES_KEY;

/// The params of one call, with the names of the method's params in positional order.
///
/// ```
/// use polyglot_worker::{Params, Value};
///
/// let v: Value = serde_json::from_str(r#"{"text": "hi", "times": 2}"#).unwrap();
/// let mut p = Params::new("repeat", &["text", "times"], v).unwrap();
/// assert_eq!(p.text("text").unwrap(), "hi");
/// assert_eq!(p.opt_u64("times").unwrap(), Some(2));
/// // An unknown name is refused, naming it and the params the method takes.
/// let v: Value = serde_json::from_str(r#"{"txt": "hi"}"#).unwrap();
/// let e = Params::new("repeat", &["text", "times"], v).err().unwrap();
/// assert!(e.message.contains("unknown param `txt`"));
/// ```
pub struct Params {
    method: &'static str,
    names: &'static [&'static str],
    value: Value,
}

/// An `INVALID_PARAMS` error about `param` of `method`: `method: \`param\` problem`, with
/// `data.param` naming it for programs.
pub fn invalid_param(method: &str, param: &str, problem: impl std::fmt::Display) -> MethodError {
    let mut data = Map::new();
    data.insert("param".into(), Value::from(param));
    MethodError::invalid_params(format!("{method}: `{param}` {problem}"))
        .with_data(Value::Map(data))
}

impl Params {
    /// Checks the params' shape: an object whose keys are all known, an array no longer
    /// than the param list, or a single value standing for the first param.
    pub fn new(
        method: &'static str,
        names: &'static [&'static str],
        value: Value,
    ) -> Result<Params, MethodError> {
        match &value {
            Value::Map(m) => {
                if let Some(unknown) = m.keys().find(|k| !names.contains(&k.as_str())) {
                    return Err(MethodError::invalid_params(format!(
                        "{method}: unknown param `{unknown}` (it takes {})",
                        list(names)
                    )));
                }
            }
            Value::Array(a) if a.len() > names.len() => {
                return Err(MethodError::invalid_params(format!(
                    "{method}: {} positional params, but it takes at most {} ({})",
                    a.len(),
                    names.len(),
                    list(names)
                )));
            }
            _ => {}
        }
        Ok(Params {
            method,
            names,
            value,
        })
    }

    /// Takes the param `name` out of the params; `None` when absent or `null`.
    pub fn take(&mut self, name: &'static str) -> Option<Value> {
        let index = self.names.iter().position(|n| *n == name)?;
        let taken = match &mut self.value {
            Value::Map(m) => m.remove(name),
            Value::Array(a) => a.get_mut(index).map(std::mem::take),
            Value::Null => None,
            single if index == 0 => Some(std::mem::take(single)),
            _ => None,
        };
        taken.filter(|v| !v.is_null())
    }

    fn missing(&self, name: &str) -> MethodError {
        invalid_param(self.method, name, "is required")
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> MethodError {
        invalid_param(
            self.method,
            name,
            format!("must be {expected}, not {}", got.type_name()),
        )
    }

    /// An error about param `name`, for checks made after reading it.
    pub fn error(&self, name: &str, problem: impl std::fmt::Display) -> MethodError {
        invalid_param(self.method, name, problem)
    }

    /// Binary data: bytes, the JSON form `{"$bytes": base64}`, or a string (its UTF-8).
    pub fn bytes_or_text(&mut self, name: &'static str) -> Result<Vec<u8>, MethodError> {
        let v = self.take(name).ok_or_else(|| self.missing(name))?;
        self.to_bytes(name, v, true)
    }

    /// Optional binary data, strings accepted as their UTF-8.
    pub fn opt_bytes_or_text(
        &mut self,
        name: &'static str,
    ) -> Result<Option<Vec<u8>>, MethodError> {
        self.take(name)
            .map(|v| self.to_bytes(name, v, true))
            .transpose()
    }

    /// Optional binary data that must be bytes (keys, salts): a string is refused, so a
    /// hex or base64 text is never mistaken for the key itself.
    pub fn opt_bytes(&mut self, name: &'static str) -> Result<Option<Vec<u8>>, MethodError> {
        self.take(name)
            .map(|v| self.to_bytes(name, v, false))
            .transpose()
    }

    /// Required binary data that must be bytes.
    pub fn bytes(&mut self, name: &'static str) -> Result<Vec<u8>, MethodError> {
        self.opt_bytes(name)?.ok_or_else(|| self.missing(name))
    }

    fn to_bytes(&self, name: &str, v: Value, text_ok: bool) -> Result<Vec<u8>, MethodError> {
        match v {
            Value::Bytes(b) => Ok(b),
            Value::String(s) if text_ok => Ok(s.into_bytes()),
            // The JSON form of binary, when a value was built without decoding it (the
            // protocol's decoders already turn it into bytes).
            Value::Map(m) if m.len() == 1 && m.contains_key(BYTES_KEY) => {
                match m.get(BYTES_KEY).and_then(Value::as_str) {
                    Some(b64) => BASE64
                        .decode(b64)
                        .map_err(|e| self.error(name, format!("holds invalid base64: {e}"))),
                    None => Err(self.error(name, "`$bytes` must hold a base64 string")),
                }
            }
            other if text_ok => Err(self.wrong_type(name, "bytes or a string", &other)),
            other => {
                Err(self.wrong_type(name, "bytes (in JSON, {\"$bytes\": \"<base64>\"})", &other))
            }
        }
    }

    /// Text: a string, or bytes that are valid UTF-8.
    pub fn text(&mut self, name: &'static str) -> Result<String, MethodError> {
        self.opt_text(name)?.ok_or_else(|| self.missing(name))
    }

    /// Optional text.
    pub fn opt_text(&mut self, name: &'static str) -> Result<Option<String>, MethodError> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        match v {
            Value::String(s) => Ok(Some(s)),
            Value::Bytes(_) | Value::Map(_) => {
                let bytes = self.to_bytes(name, v, true)?;
                String::from_utf8(bytes).map(Some).map_err(|e| {
                    self.error(
                        name,
                        format!(
                            "is not valid UTF-8 (at byte {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                })
            }
            other => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&mut self, name: &'static str) -> Result<Option<u64>, MethodError> {
        self.take(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.wrong_type(name, "an integer >= 0", &v))
            })
            .transpose()
    }

    /// An optional integer.
    pub fn opt_i64(&mut self, name: &'static str) -> Result<Option<i64>, MethodError> {
        self.take(name)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.wrong_type(name, "an integer", &v))
            })
            .transpose()
    }

    /// The method these params are for.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Takes the required param `name`.
    pub fn required(&mut self, name: &'static str) -> Result<Value, MethodError> {
        self.take(name).ok_or_else(|| self.missing(name))
    }

    /// A required number.
    pub fn f64(&mut self, name: &'static str) -> Result<f64, MethodError> {
        let v = self.required(name)?;
        v.as_f64()
            .ok_or_else(|| self.wrong_type(name, "a number", &v))
    }

    /// A required integer; a float with no fractional part counts (JSON writers differ
    /// on whether `48000` is written `48000.0`).
    pub fn i64(&mut self, name: &'static str) -> Result<i64, MethodError> {
        let v = self.required(name)?;
        match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 2f64.powi(63) => Ok(f as i64),
            _ => v
                .as_i64()
                .ok_or_else(|| self.wrong_type(name, "an integer", &v)),
        }
    }

    /// A required integer >= 0.
    pub fn usize(&mut self, name: &'static str) -> Result<usize, MethodError> {
        let v = self.required(name)?;
        v.as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .ok_or_else(|| self.wrong_type(name, "an integer >= 0", &v))
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, MethodError> {
        self.take(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.wrong_type(name, "a boolean", &v))
            })
            .transpose()
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["data", "key"];

    #[test]
    fn named_positional_and_single_forms_read_alike() {
        let named: Value =
            serde_json::from_str(r#"{"data": "hi", "key": {"$bytes": "AAE="}}"#).unwrap();
        let positional = Value::Array(vec![Value::from("hi"), Value::Bytes(vec![0, 1])]);
        for v in [named, positional] {
            let mut p = Params::new("m", NAMES, v).unwrap();
            assert_eq!(p.bytes_or_text("data").unwrap(), b"hi");
            assert_eq!(p.bytes("key").unwrap(), vec![0, 1]);
        }
        let mut single = Params::new("m", NAMES, Value::from("hi")).unwrap();
        assert_eq!(single.bytes_or_text("data").unwrap(), b"hi");
        assert_eq!(single.opt_bytes("key").unwrap(), None);
    }

    #[test]
    fn an_unknown_name_or_a_string_key_is_refused_naming_the_param() {
        let v: Value = serde_json::from_str(r#"{"data": "x", "kye": 1}"#).unwrap();
        let e = Params::new("m", NAMES, v).err().unwrap();
        assert!(e.message.contains("`kye`"), "{}", e.message);
        let v: Value = serde_json::from_str(r#"{"data": "x", "key": "secret"}"#).unwrap();
        let e = Params::new("m", NAMES, v)
            .unwrap()
            .bytes("key")
            .unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMS");
        assert!(e.message.contains("`key` must be bytes"), "{}", e.message);
    }

    #[test]
    fn integers_may_be_written_as_floats_but_not_with_a_fraction() {
        let names: &[&str] = &["samples", "fromRate"];
        let mut named = Map::new();
        named.insert("fromRate".into(), Value::from(48_000.0));
        let mut p = Params::new("m", names, Value::Map(named)).unwrap();
        assert_eq!(p.take("samples"), None);
        assert_eq!(p.i64("fromRate").unwrap(), 48_000);
        let v = Value::Array(vec![Value::Null, Value::from(44_100.5)]);
        let e = Params::new("m", names, v)
            .unwrap()
            .i64("fromRate")
            .unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMS");
        assert_eq!(e.message, "m: `fromRate` must be an integer, not float");
        assert_eq!(e.data.unwrap().get("param"), Some(&Value::from("fromRate")));
    }

    #[test]
    fn the_json_form_of_bytes_is_read_when_it_was_not_decoded() {
        let mut m = Map::new();
        m.insert(BYTES_KEY.into(), Value::from("AAE="));
        let v = Value::Array(vec![Value::Map(m)]);
        let mut p = Params::new("m", NAMES, v).unwrap();
        assert_eq!(p.bytes("data").unwrap(), vec![0, 1]);
    }
}
