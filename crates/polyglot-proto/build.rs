//! Compiles `proto/polyglot/v1/*.proto` with protox (pure Rust: no system `protoc`),
//! generates the tonic/prost code, and keeps the descriptor set for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["polyglot/v1/runtime.proto", "polyglot/v1/worker.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("polyglot_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A session's chunks pass through without a copy.
        .bytes(".polyglot.v1.Chunk.data")
        .compile_fds(fds)?;
    Ok(())
}
