//! The `compress` handler: `compress` and `decompress`. Params and results are
//! described in the crate README.

use polyglot_worker::{MethodResult, Value, Worker};

use super::{compress, decompress, DEFAULT_LEVEL, DEFAULT_MAX_SIZE, MAX_MAX_SIZE};
use crate::blocking;
use crate::params::Params;

/// The module name [`handler()`] serves under.
pub const MODULE: &str = "compress";

/// The `compress` handler under the module name `compress`, for a host to mount
/// in-process or to serve.
pub fn handler() -> Worker {
    worker(MODULE)
}

/// The `compress` handler under another module name.
pub fn worker(module: impl Into<String>) -> Worker {
    Worker::new(module, env!("CARGO_PKG_VERSION"))
        .max_concurrency(crate::MAX_CONCURRENCY)
        .method("compress", |p: Value, _| compress_method(p))
        .method("decompress", |p: Value, _| decompress_method(p))
}

async fn compress_method(params: Value) -> MethodResult {
    let mut p = Params::new("compress", &["data", "level"], params)?;
    let data = p.bytes_or_text("data")?;
    let level = match p.opt_i64("level")? {
        None => DEFAULT_LEVEL,
        Some(l) => {
            i32::try_from(l).map_err(|_| p.error("level", format!("{l} is out of range")))?
        }
    };
    let packed = blocking::run(data.len(), move || compress(&data, level)).await??;
    Ok(Value::Bytes(packed))
}

async fn decompress_method(params: Value) -> MethodResult {
    let mut p = Params::new("decompress", &["data", "maxSize"], params)?;
    let data = p.bytes("data")?;
    let max_size = p.opt_u64("maxSize")?.unwrap_or(DEFAULT_MAX_SIZE);
    if max_size > MAX_MAX_SIZE {
        return Err(p.error(
            "maxSize",
            format!("must be at most {MAX_MAX_SIZE} bytes, got {max_size}"),
        ));
    }
    // The output can be far larger than the input: judge by a typical ratio.
    let work = data.len().saturating_mul(4);
    let out = blocking::run(work, move || decompress(&data, max_size)).await??;
    Ok(Value::Bytes(out))
}
