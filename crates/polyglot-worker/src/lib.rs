//! Write a polyglot worker in Rust: a [`Handler`] (most simply a [`Worker`] built from
//! async functions) plus [`Worker::serve`] as all of `main`.
//!
//! The same handler can be mounted in-process by the host, with no process hop.
//!
//! ```no_run
//! use polyglot_worker::{Value, Worker};
//!
//! fn main() -> std::process::ExitCode {
//!     Worker::new("echo-rust", "1.0.0")
//!         .method("echo", |params: Value, _ctx| async move { Ok(params) })
//!         .serve()
//! }
//! ```
//!
//! # Layout
//! - `handler`: [`Handler`], [`Worker`], and argument helpers ([`arg`], [`arg_str`]).
//! - `params`: [`Params`], reading named or positional params with errors naming them.
//! - `offload`: [`offload`], CPU-heavy method bodies on tokio's blocking pool.
//! - `context`: [`Context`], progress, logs and cancellation for a running call.
//! - `serve`: [`serve_io`], the protocol loop over any byte stream, and [`Worker::serve`].
//! - `output`: the batched writer of the protocol stream.
//! - `stdio`: taking stdout for the protocol; dying with the host.
//! - `grpc` (feature `grpc`, on by default): the gRPC transport, `polyglot.v1.Worker`.
//! - `error`: [`MethodError`], [`ServeError`].
#![allow(unsafe_code)] // stdio.rs only: dup/dup2/prctl, each with a SAFETY comment.

mod context;
mod error;
#[cfg(feature = "grpc")]
mod grpc;
mod handler;
mod offload;
mod output;
mod params;
mod serve;
mod stdio;

pub use context::Context;
pub use error::{MethodError, ServeError};
#[cfg(feature = "grpc")]
pub use grpc::CODEC_METADATA;
pub use handler::{
    arg, arg_str, opt_arg, BoxFuture, Handler, MethodResult, Worker, DEFAULT_MAX_CONCURRENCY,
};
pub use offload::offload;
pub use params::{invalid_param, Params};
pub use polyglot_protocol::{Codec, Id, LogLevel, Map, Value};
pub use serve::{handshake_for, serve_io, Ended, ServeOptions};
