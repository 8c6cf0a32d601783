//! Rust code generated from `proto/`: the host's `Runtime` API (for clients in any
//! language) and the `Worker` service gRPC workers implement. Built by `build.rs` with
//! protox, so building needs no system `protoc`.
//!
//! # Layout
//! - [`v1`]: the `polyglot.v1` package: messages, `runtime_server`/`runtime_client`,
//!   `worker_server`/`worker_client`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.
//! - [`status_with_detail`], [`error_detail`]: a [`v1::ErrorDetail`] in a status's details,
//!   the standard way (a `google.rpc.Status` holding an `Any`), so every gRPC library
//!   reads it.
#![forbid(unsafe_code)]

/// The `polyglot.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("polyglot.v1");
}

/// The encoded `FileDescriptorSet` of `proto/polyglot/v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/polyglot_descriptor.bin"));

/// The request metadata of a worker `Session` that names its codec (`json` or `msgpack`);
/// `docs/protocol.md`, section 10.
pub const SESSION_CODEC_METADATA: &str = "polyglot-codec";

/// The most data a sender puts in one `Chunk` of a `Session` (section 10).
pub const MAX_CHUNK_BYTES: usize = 1 << 20;

/// The `Any` type URL of [`v1::ErrorDetail`].
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/polyglot.v1.ErrorDetail";

/// A status whose `grpc-status-details-bin` is a `google.rpc.Status` carrying `detail`.
pub fn status_with_detail(
    code: tonic::Code,
    message: impl Into<String>,
    detail: &v1::ErrorDetail,
) -> tonic::Status {
    use prost::Message as _;
    let message = message.into();
    let status = tonic_types::pb::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
            value: detail.encode_to_vec(),
        }],
    };
    tonic::Status::with_details(code, message, status.encode_to_vec().into())
}

/// The [`v1::ErrorDetail`] in a status's details, if it has one.
pub fn error_detail(status: &tonic::Status) -> Option<v1::ErrorDetail> {
    use prost::Message as _;
    let s = tonic_types::pb::Status::decode(status.details()).ok()?;
    s.details
        .iter()
        .find(|a| a.type_url == ERROR_DETAIL_TYPE_URL)
        .and_then(|a| v1::ErrorDetail::decode(a.value.as_slice()).ok())
}
