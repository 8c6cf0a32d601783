//! The `polyglot-native` binary started as a real process, as the host starts it, and
//! called over stdio in both codecs.

mod support;

use std::process::Command;

use polyglot_native::crypto;
use polyglot_protocol::Codec;
use polyglot_worker::Value;
use support::{field, named, WorkerProcess};

#[test]
fn the_crypto_worker_answers_over_msgpack_with_bytes() {
    let mut w = WorkerProcess::start("crypto", Codec::Msgpack, &[]);
    assert_eq!(w.handshake.module, "crypto");
    assert_eq!(w.handshake.codec, Codec::Msgpack);
    assert_eq!(
        w.handshake.methods,
        ["blake3", "decrypt", "deriveKey", "encrypt"]
    );

    let data = Value::Bytes((0..1025u32).map(|i| (i % 251) as u8).collect());
    let r = w.call("blake3", named(vec![("data", data)]));
    // The official vector for 1025 bytes.
    assert_eq!(
        r.outcome.unwrap(),
        Value::from("d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444")
    );

    let key = Value::Bytes(vec![4; 32]);
    let sealed = w
        .call(
            "encrypt",
            named(vec![
                ("data", Value::Bytes(b"over the wire".to_vec())),
                ("key", key.clone()),
            ]),
        )
        .outcome
        .unwrap();
    let Value::Bytes(sealed_bytes) = &sealed else {
        panic!("encrypt answers bytes, got {}", sealed.type_name())
    };
    assert_eq!(
        crypto::decrypt(&[4; 32], sealed_bytes, b"").unwrap(),
        b"over the wire"
    );
    let opened = w
        .call("decrypt", named(vec![("data", sealed), ("key", key)]))
        .outcome
        .unwrap();
    assert_eq!(opened, Value::Bytes(b"over the wire".to_vec()));

    let e = w
        .call(
            "decrypt",
            named(vec![
                ("data", Value::Bytes(vec![0; 40])),
                ("key", Value::Bytes(vec![4; 32])),
            ]),
        )
        .outcome
        .unwrap_err();
    assert_eq!(e.code, "AUTHENTICATION_FAILED");
    assert!(
        w.finish().success(),
        "the worker ends cleanly when its input closes"
    );
}

#[test]
fn the_text_worker_answers_over_json_under_the_manifest_name() {
    let mut w = WorkerProcess::start("text", Codec::Json, &[("POLYGLOT_MODULE", "text-native")]);
    assert_eq!(w.handshake.module, "text-native");
    let r = w.call(
        "jsonFormat",
        Value::Array(vec![Value::from(r#"{"b": [1, 2], "a": null}"#)]),
    );
    assert_eq!(r.outcome.unwrap(), Value::from(r#"{"a":null,"b":[1,2]}"#));
    let e = w
        .call(
            "jsonFormat",
            Value::Array(vec![Value::from("{\n  \"a\": }")]),
        )
        .outcome
        .unwrap_err();
    assert_eq!(e.code, "BAD_JSON");
    let data = e.data.unwrap();
    assert_eq!(
        (field(&data, "line"), field(&data, "column")),
        (&Value::from(2), &Value::from(8))
    );
    // Bytes in the JSON codec travel as {"$bytes": base64}.
    let r = w.call(
        "regexCount",
        named(vec![
            ("pattern", Value::from("o")),
            ("text", Value::Bytes(b"foo boo".to_vec())),
        ]),
    );
    assert_eq!(r.outcome.unwrap(), Value::from(4));
    assert!(w.finish().success());
}

#[test]
fn the_compress_worker_round_trips_over_json() {
    let mut w = WorkerProcess::start("compress", Codec::Json, &[]);
    let text = "compressible ".repeat(1000);
    let packed = w.call(
        "compress",
        named(vec![
            ("data", Value::from(text.clone())),
            ("level", 19.into()),
        ]),
    );
    let packed = packed.outcome.unwrap();
    let back = w
        .call("decompress", named(vec![("data", packed)]))
        .outcome
        .unwrap();
    assert_eq!(back, Value::Bytes(text.into_bytes()));
    assert!(w.finish().success());
}

#[test]
fn run_by_hand_it_explains_itself() {
    let bin = env!("CARGO_BIN_EXE_polyglot-native");
    let out = Command::new(bin)
        .env_remove("POLYGLOT_PROTOCOL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("usage: polyglot-native <crypto|compress|text>"));
    let out = Command::new(bin)
        .arg("hashes")
        .env_remove("POLYGLOT_PROTOCOL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown module \"hashes\""));
    let out = Command::new(bin)
        .arg("crypto")
        .env_remove("POLYGLOT_PROTOCOL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is started by polyglot-host"));
}
