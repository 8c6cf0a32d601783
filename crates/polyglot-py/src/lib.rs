//! The Python package `polyglot`, built with pyo3 and maturin: the polyglot runtime
//! embedded in a Python process (`polyglot.Runtime`), a client of a running host with the
//! same interface (`polyglot.connect`), and the native functions (`polyglot.blake3`,
//! `encrypt`, `decrypt`, `compress`, `decompress`) called directly at Rust speed.
//!
//! The extension is `polyglot._polyglot`; `python/polyglot` is the package around it:
//! the exception classes (`_errors.py`), the future awaitables return (`_futures.py`),
//! re-exports, type stubs and `py.typed`.
//!
//! # Layout
//! - `bridge`: the process's tokio runtime; blocking waits that release the GIL and
//!   answer Ctrl-C.
//! - `asyncio`: awaitables for tokio tasks, started and completed in batches per event
//!   loop.
//! - `api`: `Api`, the methods `Runtime` and `Client` share, and `Reply`.
//! - `runtime`: `Runtime`, the embedded runtime with the native builtins.
//! - `client`: `Client` and `connect`, a host over gRPC.
//! - `backend`: the operations behind both, embedded or remote.
//! - `model`: modules, deployments, versions and events as the API's messages, then dicts.
//! - `strategy`: deployment strategies from Python arguments.
//! - `events`: `EventStream`, events as an iterator of dicts.
//! - `native`: BLAKE3, AES-256-GCM and zstd from `polyglot-native`.
//! - `bytes`: bytes-like arguments, read in place when that is sound.
//! - `convert`: Python values to and from the protocol's `Value`.
//! - `errors`: `Failure`, every error on its way to a Python exception.
//!
//! No `unsafe` here: pyo3's macros generate what they need inside pyo3's own items, and
//! buffers are read through safe APIs (see `bytes`).
#![forbid(unsafe_code)]

mod api;
mod asyncio;
mod backend;
mod bridge;
mod bytes;
mod client;
mod convert;
mod errors;
mod events;
mod model;
mod native;
mod runtime;
mod strategy;

use pyo3::prelude::*;

/// The extension module `polyglot._polyglot`. Import `polyglot` instead.
#[pymodule]
fn _polyglot(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<api::Api>()?;
    m.add_class::<api::Reply>()?;
    m.add_class::<runtime::Runtime>()?;
    m.add_class::<client::Client>()?;
    m.add_class::<events::EventStream>()?;
    m.add_function(wrap_pyfunction!(client::connect, m)?)?;
    native::register(m)?;
    Ok(())
}
