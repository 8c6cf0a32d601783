//! The two wire forms of a signal: an array of numbers, or bytes holding little-endian
//! `f32`s. A result takes the form of the `samples` param it came from.

use std::borrow::Cow;

use polyglot_worker::{Map, MethodError, Value};

use crate::params::invalid;

/// Bytes per sample in the bytes form.
const F32_BYTES: usize = std::mem::size_of::<f32>();

/// Which form a signal travelled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// An array of numbers.
    Numbers,
    /// Bytes of little-endian `f32`.
    Bytes,
}

/// A signal as received: numbers already converted, bytes kept as they came so that
/// they can be read in place.
pub(crate) enum Signal {
    /// From an array of numbers.
    Floats(Vec<f32>),
    /// Bytes of little-endian `f32`, a multiple of 4 long.
    LeBytes(Vec<u8>),
}

impl Signal {
    /// Reads param `param` of `method`: bytes (a multiple of 4 long) or an array of
    /// numbers, each within the range of `f32`.
    pub(crate) fn from_value(method: &str, param: &str, v: Value) -> Result<Signal, MethodError> {
        match v {
            Value::Bytes(b) if b.len() % F32_BYTES == 0 => Ok(Signal::LeBytes(b)),
            Value::Bytes(b) => Err(invalid(
                method,
                param,
                format!(
                    "holds {} bytes, not a whole number of 4-byte little-endian f32 samples",
                    b.len()
                ),
            )),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| number(x).ok_or_else(|| bad_number(method, param, i, x)))
                .collect::<Result<Vec<f32>, _>>()
                .map(Signal::Floats),
            other => Err(invalid(
                method,
                param,
                format!(
                    "must be an array of numbers or bytes of little-endian f32, not {}",
                    other.type_name()
                ),
            )),
        }
    }

    /// The form it came in.
    pub(crate) fn form(&self) -> Form {
        match self {
            Signal::Floats(_) => Form::Numbers,
            Signal::LeBytes(_) => Form::Bytes,
        }
    }

    /// How many samples it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Signal::Floats(f) => f.len(),
            Signal::LeBytes(b) => b.len() / F32_BYTES,
        }
    }

    /// The samples, read in place from bytes where possible (see [`read_le`]).
    pub(crate) fn as_f32(&self) -> Cow<'_, [f32]> {
        match self {
            Signal::Floats(f) => Cow::Borrowed(f),
            Signal::LeBytes(b) => read_le(b),
        }
    }
}

/// Little-endian `f32`s (`bytes.len()` a multiple of 4), read in place when the machine
/// is little-endian and the bytes are 4-byte aligned (as an allocator's buffers of this
/// size are), copied otherwise.
fn read_le(bytes: &[u8]) -> Cow<'_, [f32]> {
    #[cfg(target_endian = "little")]
    if let Ok(in_place) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
        return Cow::Borrowed(in_place);
    }
    Cow::Owned(
        bytes
            .chunks_exact(F32_BYTES)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// A number as `f32`; `None` for a non-number, or a finite number beyond `f32`'s range
/// (which `as` would turn into an infinity).
fn number(v: &Value) -> Option<f32> {
    let wide = v.as_f64()?;
    let narrow = wide as f32;
    (narrow.is_finite() || !wide.is_finite()).then_some(narrow)
}

fn bad_number(method: &str, param: &str, index: usize, v: &Value) -> MethodError {
    let problem = match v.as_f64() {
        Some(x) => format!("is {x}, outside the range of f32"),
        None => format!("must be a number, not {}", v.type_name()),
    };
    let mut data = Map::new();
    data.insert("param".into(), Value::from(param));
    data.insert("index".into(), Value::from(index));
    MethodError::invalid_params(format!("{method}: `{param}[{index}]` {problem}"))
        .with_data(Value::Map(data))
}

/// `samples` in `form`: numbers (each `f32` widened exactly to `f64`) or little-endian
/// bytes.
pub(crate) fn to_value(samples: &[f32], form: Form) -> Value {
    match form {
        Form::Numbers => Value::Array(
            samples
                .iter()
                .map(|&x| Value::Float(f64::from(x)))
                .collect(),
        ),
        #[cfg(target_endian = "little")]
        Form::Bytes => Value::Bytes(bytemuck::cast_slice::<f32, u8>(samples).to_vec()),
        #[cfg(not(target_endian = "little"))]
        Form::Bytes => Value::Bytes(samples.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_the_same_samples() {
        let xs = [1.5f32, -0.25, 3.0e-8];
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let from_bytes = Signal::from_value("m", "samples", Value::Bytes(bytes.clone())).unwrap();
        assert_eq!(from_bytes.form(), Form::Bytes);
        assert_eq!(from_bytes.len(), 3);
        assert_eq!(&*from_bytes.as_f32(), &xs);
        let numbers = Value::Array(xs.iter().map(|&x| Value::from(f64::from(x))).collect());
        let from_numbers = Signal::from_value("m", "samples", numbers.clone()).unwrap();
        assert_eq!(&*from_numbers.as_f32(), &xs);
        assert_eq!(to_value(&xs, Form::Bytes), Value::Bytes(bytes));
        assert_eq!(to_value(&xs, Form::Numbers), numbers);
    }

    #[test]
    fn misaligned_bytes_are_copied_not_refused() {
        let xs = [0.5f32, 2.0, -7.0];
        let le: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        // The same bytes at four offsets in one buffer: at least three are misaligned.
        let mut raw = vec![0u8; 3 + le.len()];
        for offset in 0..4 {
            raw[offset..offset + le.len()].copy_from_slice(&le);
            assert_eq!(&*read_le(&raw[offset..offset + le.len()]), &xs);
        }
    }

    #[test]
    fn bad_samples_are_refused_naming_the_element() {
        let e = Signal::from_value("fir", "samples", Value::Bytes(vec![0; 7]))
            .err()
            .unwrap();
        assert!(e.message.contains("7 bytes"), "{}", e.message);
        let v = Value::Array(vec![Value::from(1.0), Value::from("x")]);
        let e = Signal::from_value("fir", "samples", v).err().unwrap();
        assert_eq!(e.message, "fir: `samples[1]` must be a number, not string");
        let v = Value::Array(vec![Value::from(1e300)]);
        let e = Signal::from_value("fir", "samples", v).err().unwrap();
        assert!(
            e.message.contains("outside the range of f32"),
            "{}",
            e.message
        );
    }
}
