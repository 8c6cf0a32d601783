//! Rust code generated from `proto/`: the host's `Runtime` API (for clients in any
//! language) and the `Worker` service gRPC workers implement. Built by `build.rs` with
//! protox, so building needs no system `protoc`.
//!
//! # Layout
//! - [`v1`]: the `polyglot.v1` package: messages, `runtime_server`/`runtime_client`,
//!   `worker_server`/`worker_client`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.
#![forbid(unsafe_code)]

/// The `polyglot.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("polyglot.v1");
}

/// The encoded `FileDescriptorSet` of `proto/polyglot/v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/polyglot_descriptor.bin"));
