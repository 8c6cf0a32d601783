//! Python values to and from the protocol's [`Value`]: `None`, `bool`, `int` (64 bits),
//! `float`, `str`, `bytes` (and `bytearray`, `memoryview`), `list`/`tuple` and `dict`
//! with `str` keys. Anything else is refused with a `TypeError` naming its type; an
//! integer beyond 64 bits with an `OverflowError` naming it; never a silent conversion.

use polyglot_core::Value;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::bytes::read_bytes;

/// How deeply lists and dicts may nest in a value sent to a worker. Conversion recurses,
/// and a self-containing list would otherwise recurse until the stack runs out; 256
/// levels is twice the nesting the JSON decoders of the Rust and Go workers accept
/// (128), so no value a worker can read is refused.
pub const MAX_DEPTH: usize = 256;

/// The largest integer, in bits, whose digits an `OverflowError` quotes; a longer one is
/// described by its size (Python refuses to print integers of more than 4300 digits).
const QUOTED_INT_BITS: u64 = 512;

/// `obj` as a protocol value.
///
/// # Errors
/// `TypeError` for an unsupported type or a dict key that is not a `str`,
/// `OverflowError` for an integer outside -2**63 .. 2**64-1, `ValueError` for nesting
/// deeper than [`MAX_DEPTH`].
pub fn from_python(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    convert(obj, 0)
}

fn convert(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: `True` is an `int` too.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return int(i);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if obj.is_instance_of::<PyByteArray>() || obj.is_instance_of::<PyMemoryView>() {
        return Ok(Value::Bytes(read_bytes(obj, "value")?.as_slice().to_vec()));
    }
    if depth >= MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "the value nests lists and dicts deeper than {MAX_DEPTH} levels (does it \
             contain itself?)"
        )));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let mut items = Vec::with_capacity(l.len());
        for item in l.iter() {
            items.push(convert(&item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        let mut items = Vec::with_capacity(t.len());
        for item in t.iter() {
            items.push(convert(&item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries = std::collections::BTreeMap::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "dict keys must be str to be sent to a worker, not {} (the key {})",
                    type_name(&k),
                    short_repr(&k)
                )));
            };
            entries.insert(key.to_str()?.to_owned(), convert(&v, depth + 1)?);
        }
        return Ok(Value::Map(entries));
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a value of type {} to a worker (polyglot values are None, bool, int, \
         float, str, bytes, bytearray, memoryview, list, tuple and dict with str keys)",
        type_name(obj)
    )))
}

fn int(i: &Bound<'_, PyInt>) -> PyResult<Value> {
    if let Ok(v) = i.extract::<u64>() {
        return Ok(Value::Uint(v));
    }
    if let Ok(v) = i.extract::<i64>() {
        return Ok(Value::Int(v));
    }
    let bits: u64 = i.call_method0("bit_length")?.extract()?;
    let shown = if bits <= QUOTED_INT_BITS {
        format!("the integer {}", i.str()?.to_str()?)
    } else {
        format!("an integer of {bits} bits")
    };
    Err(PyOverflowError::new_err(format!(
        "{shown} does not fit in 64 bits: polyglot integers run from -2**63 to 2**64-1 \
         (send a larger one as a str, or as bytes)"
    )))
}

/// The Python name of `obj`'s type, quoted: `'set'`.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| format!("'{n}'"))
        .unwrap_or_else(|_| "an unknown type".into())
}

/// `repr(obj)`, cut to 60 characters.
fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    if r.chars().count() > 60 {
        format!("{}...", r.chars().take(57).collect::<String>())
    } else {
        r
    }
}

/// `v` as a Python object: `bytes` for bytes, `list` for arrays, `dict` for maps.
///
/// # Errors
/// Only when Python cannot allocate.
pub fn to_python<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Uint(u) => u.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, item) in entries {
                dict.set_item(k, to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// [`to_python`], unbound: for results handed across threads.
///
/// # Errors
/// As [`to_python`].
pub fn into_python(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    to_python(py, &v).map(Bound::unbind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyAny> {
        let code = std::ffi::CString::new(code).unwrap();
        py.eval(&code, None, None).unwrap()
    }

    #[test]
    fn values_round_trip_through_python() {
        Python::initialize();
        Python::attach(|py| {
            let obj = eval(
                py,
                r#"{"a": [1, -2, 2**64 - 1, 1.5, None, True], "b": b"\x00", "c": "é"}"#,
            );
            let v = from_python(&obj).unwrap();
            assert_eq!(v.get("b"), Some(&Value::Bytes(vec![0])));
            assert_eq!(
                v.get("a").and_then(|a| a.as_array()).map(|a| a[2].as_u64()),
                Some(Some(u64::MAX))
            );
            let back = to_python(py, &v).unwrap();
            assert!(back.eq(&obj).unwrap());
            // Tuples and bytearrays arrive as lists and bytes.
            let v = from_python(&eval(py, r#"(1, bytearray(b"xy"))"#)).unwrap();
            assert_eq!(
                v,
                Value::Array(vec![Value::Uint(1), Value::Bytes(b"xy".to_vec())])
            );
        });
    }

    #[test]
    fn what_cannot_be_sent_is_refused_naming_it() {
        Python::initialize();
        Python::attach(|py| {
            let e = from_python(&eval(py, "2**64")).unwrap_err();
            assert!(e.is_instance_of::<PyOverflowError>(py));
            assert!(e.to_string().contains("18446744073709551616"), "{e}");
            let e = from_python(&eval(py, "{1: 2}")).unwrap_err();
            assert!(
                e.is_instance_of::<PyTypeError>(py) && e.to_string().contains("'int'"),
                "{e}"
            );
            let e = from_python(&eval(py, "{1, 2}")).unwrap_err();
            assert!(e.to_string().contains("'set'"), "{e}");
            let cyclic = eval(py, "(lambda l: (l.append(l), l)[1])([])");
            let e = from_python(&cyclic).unwrap_err();
            assert!(e.to_string().contains("deeper than 256"), "{e}");
        });
    }
}
