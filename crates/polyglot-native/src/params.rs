//! Reading a handler's params: named (`{"data": ..., "key": ...}`) or positional
//! (`[data, key]`), binary as bytes or as a string's UTF-8, taken out of the params
//! without copying.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use polyglot_protocol::BYTES_KEY;
use polyglot_worker::{Map, MethodError, Value};

/// The params of one call, with the names of the method's params in positional order.
pub(crate) struct Params {
    method: &'static str,
    names: &'static [&'static str],
    value: Value,
}

fn invalid(method: &str, param: &str, problem: impl std::fmt::Display) -> MethodError {
    let mut data = Map::new();
    data.insert("param".into(), Value::from(param));
    MethodError::invalid_params(format!("{method}: `{param}` {problem}"))
        .with_data(Value::Map(data))
}

impl Params {
    /// Checks the params' shape: an object whose keys are all known, an array no longer
    /// than the param list, or a single value standing for the first param.
    pub(crate) fn new(
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
    pub(crate) fn take(&mut self, name: &'static str) -> Option<Value> {
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
        invalid(self.method, name, "is required")
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> MethodError {
        invalid(
            self.method,
            name,
            format!("must be {expected}, not {}", got.type_name()),
        )
    }

    /// An error about param `name`, for checks made after reading it.
    pub(crate) fn error(&self, name: &str, problem: impl std::fmt::Display) -> MethodError {
        invalid(self.method, name, problem)
    }

    /// Binary data: bytes, the JSON form `{"$bytes": base64}`, or a string (its UTF-8).
    pub(crate) fn bytes_or_text(&mut self, name: &'static str) -> Result<Vec<u8>, MethodError> {
        let v = self.take(name).ok_or_else(|| self.missing(name))?;
        self.to_bytes(name, v, true)
    }

    /// Optional binary data, strings accepted as their UTF-8.
    pub(crate) fn opt_bytes_or_text(
        &mut self,
        name: &'static str,
    ) -> Result<Option<Vec<u8>>, MethodError> {
        self.take(name)
            .map(|v| self.to_bytes(name, v, true))
            .transpose()
    }

    /// Optional binary data that must be bytes (keys, salts): a string is refused, so a
    /// hex or base64 text is never mistaken for the key itself.
    pub(crate) fn opt_bytes(&mut self, name: &'static str) -> Result<Option<Vec<u8>>, MethodError> {
        self.take(name)
            .map(|v| self.to_bytes(name, v, false))
            .transpose()
    }

    /// Required binary data that must be bytes.
    pub(crate) fn bytes(&mut self, name: &'static str) -> Result<Vec<u8>, MethodError> {
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
    pub(crate) fn text(&mut self, name: &'static str) -> Result<String, MethodError> {
        self.opt_text(name)?.ok_or_else(|| self.missing(name))
    }

    /// Optional text.
    pub(crate) fn opt_text(&mut self, name: &'static str) -> Result<Option<String>, MethodError> {
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
    pub(crate) fn opt_u64(&mut self, name: &'static str) -> Result<Option<u64>, MethodError> {
        self.take(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.wrong_type(name, "an integer >= 0", &v))
            })
            .transpose()
    }

    /// An optional integer.
    pub(crate) fn opt_i64(&mut self, name: &'static str) -> Result<Option<i64>, MethodError> {
        self.take(name)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.wrong_type(name, "an integer", &v))
            })
            .transpose()
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, MethodError> {
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
    fn the_json_form_of_bytes_is_read_when_it_was_not_decoded() {
        let mut m = Map::new();
        m.insert(BYTES_KEY.into(), Value::from("AAE="));
        let v = Value::Array(vec![Value::Map(m)]);
        let mut p = Params::new("m", NAMES, v).unwrap();
        assert_eq!(p.bytes("data").unwrap(), vec![0, 1]);
    }
}
