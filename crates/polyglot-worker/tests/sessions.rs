//! Replays `tests/vectors/sessions.json` through the real serve loop, over an in-memory
//! byte stream, with the handlers that file describes.

use std::path::PathBuf;
use std::sync::Arc;

use polyglot_protocol::{Codec, Frame, FrameReader, Handshake, Value, WorkerMessage};
use polyglot_worker::{arg, serve_io, Ended, MethodError, ServeOptions, Worker};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn vectors_worker() -> Worker {
    Worker::new("vectors", "1.0.0")
        .method("echo", |p: Value, _| async move { Ok(p) })
        .method("add", |p: Value, _| async move {
            match (arg(&p, 0, "a")?.as_i64(), arg(&p, 1, "b")?.as_i64()) {
                (Some(a), Some(b)) => Ok(Value::from(a + b)),
                _ => Err(MethodError::invalid_params("add takes two integers")),
            }
        })
        .method("fail", |p: Value, _| async move {
            let code = arg(&p, 0, "code")?.as_str().unwrap_or_default().to_owned();
            let msg = arg(&p, 1, "message")?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Err(MethodError::new(code, msg))
        })
        .method("boom", |_p: Value, _| async move {
            if true {
                panic!("boom");
            }
            Ok(Value::Null)
        })
}

#[tokio::test]
async fn sessions() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/sessions.json");
    let doc: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let codec: Codec = case["codec"].as_str().unwrap().parse().unwrap();
        let (mut host_in, worker_out) = tokio::io::duplex(1 << 20);
        let (worker_in, mut host_out) = tokio::io::duplex(1 << 20);
        let opts = ServeOptions {
            codec,
            max_frame: 1 << 20,
        };
        let serve = tokio::spawn(serve_io(
            Arc::new(vectors_worker()),
            opts,
            worker_in,
            worker_out,
        ));
        for msg in case["send"].as_array().unwrap() {
            let mut buf = Vec::new();
            encode_any(codec, msg, &mut buf);
            host_out.write_all(&buf).await.unwrap();
        }
        // Read every expected answer before ending the input: the end of input stops the
        // worker without waiting for running calls, by design.
        let expected = case["expect"].as_array().unwrap();
        let mut got = Vec::new();
        let mut reader = FrameReader::new(Codec::Json, 1 << 20);
        let mut handshake_seen = false;
        while got.len() < expected.len() {
            let n = host_in.read(reader.read_buf()).await.unwrap();
            assert!(n > 0, "{name}: output ended early");
            reader.filled(n);
            while let Some(Frame::Data(f)) = reader.next_frame() {
                if !handshake_seen {
                    let h = Handshake::parse(f).unwrap();
                    assert_eq!(h.codec, codec, "{name}");
                    handshake_seen = true;
                    reader.set_codec(codec);
                    continue;
                }
                match WorkerMessage::decode(codec, f).unwrap() {
                    WorkerMessage::Response(r) => got.push(r),
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        }
        drop(host_out);
        assert_eq!(serve.await.unwrap().unwrap(), Ended::InputClosed, "{name}");
        let mut rest = Vec::new();
        host_in.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "{name}: answered more than expected (a notification?)"
        );
        for exp in expected {
            let id = serde_json::from_value(exp["id"].clone()).unwrap();
            let r = got
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("{name}: no answer"));
            if let Some(result) = exp.get("result") {
                assert_eq!(
                    r.outcome.as_ref().ok(),
                    Some(&Value::from(result.clone())),
                    "{name}"
                );
            }
            if let Some(err) = exp.get("error") {
                let e = r
                    .outcome
                    .as_ref()
                    .err()
                    .unwrap_or_else(|| panic!("{name}: not an error"));
                assert_eq!(e.code, err["code"].as_str().unwrap(), "{name}");
                if let Some(m) = err.get("message") {
                    assert_eq!(e.message, m.as_str().unwrap(), "{name}");
                }
            }
        }
    }
}

/// Encodes a JSON-form message (which may lack `id` or carry odd types on purpose).
fn encode_any(codec: Codec, msg: &Json, buf: &mut Vec<u8>) {
    let value = Value::from(msg.clone());
    match codec {
        Codec::Json => {
            serde_json::to_writer(&mut *buf, &value).unwrap();
            buf.push(b'\n');
        }
        Codec::Msgpack => {
            let body = rmp_serde::to_vec(&value).unwrap();
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&body);
        }
    }
}
