//! Reading the bytes-like arguments of the native functions and of values: `bytes` and
//! read-only views of `bytes` without a copy, anything else with the buffer protocol
//! through one copy.
//!
//! Why not read every buffer in place: the native functions work with the GIL released,
//! and a `bytearray` (or any writable buffer) can be resized or written by another
//! thread meanwhile. Reading memory another thread writes is a data race, and a resize
//! frees it. A `bytes` object cannot change, and the reference held here keeps it alive,
//! so its memory is read where it is; a writable buffer is copied first (one `memcpy`,
//! about a tenth of what hashing or encrypting it costs).

use std::ops::Range;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::convert::type_name;

/// The bytes of a bytes-like argument.
pub enum Input<'py> {
    /// A range of an immutable `bytes` object, read in place.
    Shared(Bound<'py, PyBytes>, Range<usize>),
    /// A copy of a buffer that could change while it is read.
    Copied(Vec<u8>),
}

impl Input<'_> {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Input::Shared(b, range) => &b.as_bytes()[range.clone()],
            Input::Copied(v) => v,
        }
    }
}

/// The bytes of `obj`, the argument `param`: `bytes`, `bytearray`, `memoryview` or any
/// object with the buffer protocol (`array.array`, a NumPy array, `mmap`), read as bytes
/// in C order.
///
/// # Errors
/// `TypeError` naming `param` and the type when `obj` has no buffer (a `str` among
/// them: text must be encoded first).
pub fn read_bytes<'py>(obj: &Bound<'py, PyAny>, param: &str) -> PyResult<Input<'py>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let len = b.as_bytes().len();
        return Ok(Input::Shared(b.clone(), 0..len));
    }
    if let Ok(a) = obj.cast::<PyByteArray>() {
        return Ok(Input::Copied(a.to_vec()));
    }
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{param} must be bytes-like (bytes, bytearray, memoryview), not 'str': encode \
             text first, e.g. {param}.encode()"
        )));
    }
    let buffer = match PyBuffer::<u8>::get(obj) {
        Ok(b) => b,
        // A buffer of wider items (array('I'), a float array): its bytes, as a view.
        Err(_) if has_buffer(obj) => {
            let view = PyMemoryView::from(obj)?.call_method1("cast", ("B",))?;
            PyBuffer::<u8>::get(&view)?
        }
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "{param} must be bytes-like (bytes, bytearray, memoryview, or an object \
                 with the buffer protocol), not {}",
                type_name(obj)
            )))
        }
    };
    if let Some(shared) = view_of_bytes(obj, &buffer)? {
        return Ok(shared);
    }
    Ok(Input::Copied(buffer.to_vec(obj.py())?))
}

fn has_buffer(obj: &Bound<'_, PyAny>) -> bool {
    PyMemoryView::from(obj).is_ok()
}

/// When `obj` is a contiguous, read-only `memoryview` over a `bytes` object, the range
/// of that `bytes` it shows. The range is found by comparing addresses (no pointer is
/// dereferenced) and used only when it lies inside the `bytes`.
fn view_of_bytes<'py>(
    obj: &Bound<'py, PyAny>,
    buffer: &PyBuffer<u8>,
) -> PyResult<Option<Input<'py>>> {
    if !obj.is_instance_of::<PyMemoryView>() || !buffer.readonly() || !buffer.is_c_contiguous() {
        return Ok(None);
    }
    let base = obj.getattr("obj")?;
    let Ok(bytes) = base.cast_into::<PyBytes>() else {
        return Ok(None);
    };
    let whole = bytes.as_bytes();
    let start_addr = whole.as_ptr() as usize;
    let view_addr = buffer.buf_ptr() as usize;
    let len = buffer.len_bytes();
    let Some(start) = view_addr.checked_sub(start_addr) else {
        return Ok(None);
    };
    match start.checked_add(len) {
        Some(end) if end <= whole.len() => Ok(Some(Input::Shared(bytes, start..end))),
        _ => Ok(None),
    }
}
