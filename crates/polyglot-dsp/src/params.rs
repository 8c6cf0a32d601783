//! Reading a handler's params: named (`{"samples": ..., "taps": ...}`) or positional
//! (`[samples, taps]`), each taken out of the params without copying.
//!
//! Only the params' types are checked here; their values (a rate of 0, a cutoff above
//! the Nyquist frequency) are checked once, by the C++ routine, whose message the caller
//! receives.

use polyglot_worker::{Map, MethodError, Value};

/// The params of one call, with the names of the method's params in positional order.
pub(crate) struct Params {
    method: &'static str,
    names: &'static [&'static str],
    value: Value,
}

/// An `INVALID_PARAMS` error about `param`, which `data.param` names for programs.
pub(crate) fn invalid(method: &str, param: &str, problem: impl std::fmt::Display) -> MethodError {
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
        let takes = || {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &value {
            Value::Map(m) => {
                if let Some(unknown) = m.keys().find(|k| !names.contains(&k.as_str())) {
                    return Err(MethodError::invalid_params(format!(
                        "{method}: unknown param `{unknown}` (it takes {})",
                        takes()
                    )));
                }
            }
            Value::Array(a) if a.len() > names.len() => {
                return Err(MethodError::invalid_params(format!(
                    "{method}: {} positional params, but it takes at most {} ({})",
                    a.len(),
                    names.len(),
                    takes()
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

    /// The method these params are for.
    pub(crate) fn method(&self) -> &'static str {
        self.method
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

    /// Takes the required param `name`.
    pub(crate) fn required(&mut self, name: &'static str) -> Result<Value, MethodError> {
        self.take(name)
            .ok_or_else(|| invalid(self.method, name, "is required"))
    }

    /// A required number.
    pub(crate) fn f64(&mut self, name: &'static str) -> Result<f64, MethodError> {
        let v = self.required(name)?;
        v.as_f64()
            .ok_or_else(|| self.wrong_type(name, "a number", &v))
    }

    /// A required integer; a float with no fractional part counts (JSON writers differ
    /// on whether `48000` is written `48000.0`).
    pub(crate) fn i64(&mut self, name: &'static str) -> Result<i64, MethodError> {
        let v = self.required(name)?;
        match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 2f64.powi(63) => Ok(f as i64),
            _ => v
                .as_i64()
                .ok_or_else(|| self.wrong_type(name, "an integer", &v)),
        }
    }

    /// A required integer >= 0.
    pub(crate) fn usize(&mut self, name: &'static str) -> Result<usize, MethodError> {
        let v = self.required(name)?;
        v.as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .ok_or_else(|| self.wrong_type(name, "an integer >= 0", &v))
    }

    /// An optional string.
    pub(crate) fn opt_str(&mut self, name: &'static str) -> Result<Option<String>, MethodError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> MethodError {
        invalid(
            self.method,
            name,
            format!("must be {expected}, not {}", got.type_name()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["samples", "fromRate"];

    #[test]
    fn named_and_positional_params_read_alike() {
        let mut named = Map::new();
        named.insert("fromRate".into(), Value::from(48_000.0));
        let positional = Value::Array(vec![Value::Null, Value::from(48_000)]);
        for v in [Value::Map(named), positional] {
            let mut p = Params::new("m", NAMES, v).unwrap();
            assert_eq!(p.take("samples"), None);
            assert_eq!(p.i64("fromRate").unwrap(), 48_000);
        }
    }

    #[test]
    fn an_unknown_name_or_a_wrong_type_is_refused_naming_the_param() {
        let mut m = Map::new();
        m.insert("fromrate".into(), Value::from(1));
        let e = Params::new("m", NAMES, Value::Map(m)).err().unwrap();
        assert!(
            e.message.contains("unknown param `fromrate`"),
            "{}",
            e.message
        );
        let v = Value::Array(vec![Value::Null, Value::from(44_100.5)]);
        let e = Params::new("m", NAMES, v)
            .unwrap()
            .i64("fromRate")
            .unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMS");
        assert_eq!(e.message, "m: `fromRate` must be an integer, not float");
        assert_eq!(e.data.unwrap().get("param"), Some(&Value::from("fromRate")));
    }
}
