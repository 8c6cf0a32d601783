//! The `crypto` handler: `blake3`, `encrypt`, `decrypt`, `deriveKey`. Params and
//! results are described in the crate README.

use polyglot_worker::{Map, MethodResult, Value, Worker};

use super::{derive_key_from_password, to_hex, AesKey, Blake3, KdfParams};
use crate::blocking;
use crate::error::Error;
use crate::params::Params;

/// The module name [`handler()`] serves under.
pub const MODULE: &str = "crypto";

/// The longest BLAKE3 output the `blake3` method gives: 1 MiB. Longer output is a
/// keystream, not a hash, and would make a hex answer of more than 2 MiB.
pub const MAX_HASH_LENGTH: u64 = 1 << 20;

/// The `crypto` handler under the module name `crypto`, for a host to mount in-process
/// (`runtime.mount(Arc::new(polyglot_native::crypto::handler()))`) or to serve.
pub fn handler() -> Worker {
    worker(MODULE)
}

/// The `crypto` handler under another module name (a worker serves under the name its
/// manifest gives).
pub fn worker(module: impl Into<String>) -> Worker {
    Worker::new(module, env!("CARGO_PKG_VERSION"))
        .max_concurrency(crate::MAX_CONCURRENCY)
        .method("blake3", |p: Value, _| blake3(p))
        .method("encrypt", |p: Value, _| encrypt(p))
        .method("decrypt", |p: Value, _| decrypt(p))
        .method("deriveKey", |p: Value, _| derive_key(p))
}

async fn blake3(params: Value) -> MethodResult {
    let mut p = Params::new(
        "blake3",
        &["data", "key", "context", "length", "raw"],
        params,
    )?;
    let data = p.bytes_or_text("data")?;
    let key = p.opt_bytes("key")?;
    let context = p.opt_text("context")?;
    let length = p.opt_u64("length")?.unwrap_or(32);
    let raw = p.opt_bool("raw")?.unwrap_or(false);
    if length == 0 {
        return Err(p.error("length", "must be at least 1"));
    }
    if length > MAX_HASH_LENGTH {
        return Err(Error::TooLarge {
            what: "hash length",
            limit: MAX_HASH_LENGTH,
            actual: Some(length),
        }
        .into());
    }
    let mut hasher = match (key, context) {
        (Some(_), Some(_)) => {
            return Err(p.error(
                "context",
                "cannot be combined with `key`: keyed hashing and key derivation are \
                 different modes",
            ))
        }
        (Some(key), None) => Blake3::keyed(&key)?,
        (None, Some(context)) => Blake3::derive_key(&context),
        (None, None) => Blake3::new(),
    };
    // The output counts too: a long one is computed on one thread.
    let out = blocking::run_fast(data.len() + length as usize, move || {
        hasher.update(&data);
        blocking::free(data);
        hasher.finalize_xof(length as usize)
    })
    .await?;
    Ok(if raw {
        Value::Bytes(out)
    } else {
        Value::from(to_hex(&out))
    })
}

const SEAL_PARAMS: &[&str] = &["data", "key", "aad"];

async fn encrypt(params: Value) -> MethodResult {
    let mut p = Params::new("encrypt", SEAL_PARAMS, params)?;
    let data = p.bytes_or_text("data")?;
    let key = AesKey::new(&p.bytes("key")?)?;
    let aad = p.opt_bytes_or_text("aad")?.unwrap_or_default();
    let sealed = blocking::run_fast(data.len(), move || key.encrypt_owned(data, &aad)).await??;
    Ok(Value::Bytes(sealed))
}

async fn decrypt(params: Value) -> MethodResult {
    let mut p = Params::new("decrypt", SEAL_PARAMS, params)?;
    let data = p.bytes("data")?;
    let key = AesKey::new(&p.bytes("key")?)?;
    let aad = p.opt_bytes_or_text("aad")?.unwrap_or_default();
    let opened = blocking::run_fast(data.len(), move || key.decrypt_owned(data, &aad)).await??;
    Ok(Value::Bytes(opened))
}

async fn derive_key(params: Value) -> MethodResult {
    let mut p = Params::new(
        "deriveKey",
        &[
            "password",
            "salt",
            "length",
            "memoryKib",
            "iterations",
            "parallelism",
        ],
        params,
    )?;
    let password = p.bytes_or_text("password")?;
    let salt = p.opt_bytes("salt")?;
    let defaults = KdfParams::default();
    let mut u32_param = |name: &'static str, default: u32| -> Result<u32, _> {
        match p.opt_u64(name)? {
            None => Ok(default),
            Some(v) => u32::try_from(v).map_err(|_| p.error(name, format!("{v} is out of range"))),
        }
    };
    let params = KdfParams {
        memory_kib: u32_param("memoryKib", defaults.memory_kib)?,
        iterations: u32_param("iterations", defaults.iterations)?,
        parallelism: u32_param("parallelism", defaults.parallelism)?,
        length: u32_param("length", defaults.length as u32)? as usize,
    };
    // Argon2 is slow by design (tens of milliseconds at the defaults): always off the
    // async runtime.
    let derived = blocking::run(usize::MAX, move || {
        derive_key_from_password(&password, salt.as_deref(), &params)
    })
    .await??;
    let mut out = Map::new();
    out.insert("key".into(), Value::Bytes(derived.key));
    out.insert("salt".into(), Value::Bytes(derived.salt));
    out.insert("algorithm".into(), Value::from("argon2id"));
    out.insert("version".into(), Value::from(0x13));
    out.insert("memoryKib".into(), Value::from(params.memory_kib));
    out.insert("iterations".into(), Value::from(params.iterations));
    out.insert("parallelism".into(), Value::from(params.parallelism));
    Ok(Value::Map(out))
}
