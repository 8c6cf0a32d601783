//! The native functions: BLAKE3, AES-256-GCM and zstd from `polyglot-native`, called
//! directly, with no worker. Inputs are read as `bytes.rs` says; the work runs with the
//! GIL released, so other Python threads run meanwhile.

use polyglot_native::{compress as zstd_native, crypto};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bytes::read_bytes;
use crate::errors::native_failure;

/// Inputs from this many bytes are processed with the GIL released. Below it, releasing
/// and taking back the GIL costs more than the work; `hashlib` draws the same line
/// (`HASHLIB_GIL_MINSIZE`, 2048 bytes).
pub const GIL_RELEASE_THRESHOLD: usize = 2048;

/// Runs `work` with the GIL released when `len` is worth it. A panic (a bug) becomes a
/// `PolyglotError`, not a `PanicException` that `except Exception` would miss.
fn run<T: Send>(py: Python<'_>, len: usize, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    let work = std::panic::AssertUnwindSafe(work);
    let caught = if len >= GIL_RELEASE_THRESHOLD {
        py.detach(|| std::panic::catch_unwind(work))
    } else {
        std::panic::catch_unwind(work)
    };
    caught.map_err(|p| crate::errors::Failure::from_panic(p.as_ref()).into_pyerr(py))
}

fn to_err(e: polyglot_native::Error) -> PyErr {
    native_failure(&e).into()
}

/// BLAKE3 digest of ``data`` as ``bytes``.
///
/// ``data`` is any bytes-like object (``bytes``, ``bytearray``, ``memoryview``, ...).
/// ``key`` (32 bytes) selects keyed mode (a MAC), ``context`` (a ``str``) the
/// derive-key mode; they are exclusive. ``length`` is the digest length in bytes,
/// 1 to 1 MiB (BLAKE3 is an extendable-output function; shorter outputs are prefixes
/// of longer ones). Inputs from 256 KiB are hashed on every core.
///
/// >>> polyglot.blake3(b"abc").hex()[:16]
/// '6437b3ac38465133'
///
/// Raises ``InvalidArgument`` (a ``ValueError``) for a key that is not 32 bytes, both
/// ``key`` and ``context``, or a length out of range; ``TypeError`` for data that is
/// not bytes-like.
#[pyfunction]
#[pyo3(signature = (data, /, *, key=None, context=None, length=32))]
pub fn blake3<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    context: Option<&str>,
    length: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let digest = digest(py, data, key, context, length)?;
    Ok(PyBytes::new(py, &digest))
}

/// BLAKE3 digest of ``data`` as lowercase hexadecimal; the arguments are those of
/// :func:`blake3`.
///
/// >>> polyglot.blake3_hex(b"abc")[:16]
/// '6437b3ac38465133'
#[pyfunction]
#[pyo3(signature = (data, /, *, key=None, context=None, length=32))]
pub fn blake3_hex<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    context: Option<&str>,
    length: i64,
) -> PyResult<String> {
    let digest = digest(py, data, key, context, length)?;
    Ok(crypto::to_hex(&digest))
}

fn digest(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    key: Option<&Bound<'_, PyAny>>,
    context: Option<&str>,
    length: i64,
) -> PyResult<Vec<u8>> {
    let max = crypto::MAX_HASH_LENGTH;
    let length = match u64::try_from(length) {
        Ok(n) if (1..=max).contains(&n) => n as usize,
        _ => {
            return Err(invalid(format!(
                "length must be between 1 and {max} bytes, got {length}"
            )))
        }
    };
    let mut hasher = match (key, context) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "key and context are exclusive: key selects the keyed mode, context the \
                 derive-key mode"
                    .into(),
            ))
        }
        (Some(k), None) => {
            crypto::Blake3::keyed(read_bytes(k, "key")?.as_slice()).map_err(to_err)?
        }
        (None, Some(c)) => crypto::Blake3::derive_key(c),
        (None, None) => crypto::Blake3::new(),
    };
    let input = read_bytes(data, "data")?;
    let bytes = input.as_slice();
    run(py, bytes.len(), || {
        hasher.update(bytes);
        if length == 32 {
            hasher.finalize().to_vec()
        } else {
            hasher.finalize_xof(length)
        }
    })
}

fn invalid(message: String) -> PyErr {
    crate::errors::Failure::new("invalid_argument", message).into()
}

/// Encrypts ``data`` with AES-256-GCM under the 32-byte ``key``.
///
/// Returns ``nonce(12) || ciphertext || tag(16)``: a fresh random nonce for every
/// message, the same format as the ``crypto`` module's ``encrypt`` and as Python's
/// ``cryptography`` (``nonce + AESGCM(key).encrypt(nonce, data, aad)``). ``aad``,
/// associated data, is authenticated but not stored: :func:`decrypt` needs the same.
///
/// Raises ``InvalidArgument`` (a ``ValueError``) for a key that is not 32 bytes.
#[pyfunction]
#[pyo3(signature = (data, key, aad=None))]
pub fn encrypt<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
    aad: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = crypto::AesKey::new(read_bytes(key, "key")?.as_slice()).map_err(to_err)?;
    let aad = aad.map(|a| read_bytes(a, "aad")).transpose()?;
    let input = read_bytes(data, "data")?;
    let (plain, aad) = (
        input.as_slice(),
        aad.as_ref().map_or(&[][..], |a| a.as_slice()),
    );
    let sealed = run(py, plain.len(), || key.encrypt(plain, aad))?.map_err(to_err)?;
    Ok(PyBytes::new(py, &sealed))
}

/// Decrypts a message made by :func:`encrypt` under the same ``key`` and ``aad``.
///
/// Raises ``AuthenticationFailed`` when the key or ``aad`` differ or any byte of the
/// message was changed (never returns altered plaintext); ``InvalidArgument`` (a
/// ``ValueError``) for a key that is not 32 bytes or a message shorter than 28 bytes.
#[pyfunction]
#[pyo3(signature = (data, key, aad=None))]
pub fn decrypt<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
    aad: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = crypto::AesKey::new(read_bytes(key, "key")?.as_slice()).map_err(to_err)?;
    let aad = aad.map(|a| read_bytes(a, "aad")).transpose()?;
    let input = read_bytes(data, "data")?;
    let (message, aad) = (
        input.as_slice(),
        aad.as_ref().map_or(&[][..], |a| a.as_slice()),
    );
    let plain = run(py, message.len(), || key.decrypt(message, aad))?.map_err(to_err)?;
    Ok(PyBytes::new(py, &plain))
}

/// Compresses ``data`` into one zstd frame at ``level`` (-131072 to 22; default 3, zstd's
/// own). The frame records its content size and a checksum, as the ``zstd`` command
/// writes; any zstd decoder reads it.
///
/// Raises ``InvalidArgument`` (a ``ValueError``) for a level out of range.
#[pyfunction]
#[pyo3(signature = (data, level=3))]
pub fn compress<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    level: i32,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = read_bytes(data, "data")?;
    let bytes = input.as_slice();
    let packed = run(py, bytes.len(), || zstd_native::compress(bytes, level))?.map_err(to_err)?;
    Ok(PyBytes::new(py, &packed))
}

/// Decompresses zstd ``data`` (one or more frames), producing at most ``max_size`` bytes
/// (default 256 MiB, at most 4 GiB).
///
/// A frame that declares a larger size is refused before any work; frames that declare
/// none are decoded into a buffer that never grows past the limit, so a decompression
/// bomb raises ``TooLarge`` instead of exhausting memory.
///
/// Raises ``TooLarge`` past ``max_size``, ``CorruptData`` for input that is not valid
/// zstd, ``InvalidArgument`` (a ``ValueError``) for a limit out of range.
#[pyfunction]
#[pyo3(signature = (data, max_size=268_435_456))]
pub fn decompress<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    max_size: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let max_size = match u64::try_from(max_size) {
        Ok(m) if m <= zstd_native::MAX_MAX_SIZE => m,
        _ => {
            return Err(invalid(format!(
                "max_size must be between 0 and {} bytes, got {max_size}",
                zstd_native::MAX_MAX_SIZE
            )))
        }
    };
    let input = read_bytes(data, "data")?;
    let bytes = input.as_slice();
    if let Some(plain) = decompress_in_place(py, bytes, max_size)? {
        return Ok(plain);
    }
    let plain =
        run(py, bytes.len(), || zstd_native::decompress(bytes, max_size))?.map_err(to_err)?;
    Ok(PyBytes::new(py, &plain))
}

/// The common case of :func:`decompress`, one frame that records its size (as
/// :func:`compress` writes), decoded straight into the `bytes` object returned: no
/// second buffer and no copy, which at 64 MB cost a third of the time. The size is checked
/// against `max_size` before anything is allocated, as `polyglot_native` does. `None`
/// for every other input (several frames, no recorded size, an error), which
/// `polyglot_native::compress::decompress` then decodes or refuses with its own error.
fn decompress_in_place<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: u64,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    use zstd::zstd_safe;
    let size = match zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) if size <= max_size => size,
        _ => return Ok(None),
    };
    if zstd_safe::find_frame_compressed_size(data) != Ok(data.len()) {
        return Ok(None);
    }
    let Ok(size) = usize::try_from(size) else {
        return Ok(None);
    };
    let mut decoded = false;
    let out = PyBytes::new_with(py, size, |buf| {
        // The frame's own checks (content size, checksum) refuse output that does not
        // match its header.
        let n = run(py, size.max(data.len()), || {
            zstd::bulk::Decompressor::new().and_then(|mut d| d.decompress_to_buffer(data, buf))
        })?;
        decoded = matches!(n, Ok(n) if n == size);
        Ok(())
    })?;
    Ok(decoded.then_some(out))
}

// The defaults in the signatures above are literals, so that `help()` and type
// checkers see them; they must be polyglot-native's.
const _: () = assert!(zstd_native::DEFAULT_LEVEL == 3);
const _: () = assert!(zstd_native::DEFAULT_MAX_SIZE == 268_435_456);

/// Registers the native functions in the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(blake3, m)?)?;
    m.add_function(wrap_pyfunction!(blake3_hex, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    Ok(())
}
