//! Replays every case of `tests/vectors/` (except `sessions.json`, which the worker SDK
//! replays) through this crate's real decoders, encoders and frame reader.

use std::path::PathBuf;

use polyglot_protocol::{
    Codec, Expected, Frame, FrameReader, Handshake, Id, LogLevel, Request, Value, WorkerMessage,
};
use serde_json::Value as Json;

fn load(name: &str) -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().expect("cases").clone();
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frame_bytes(case: &Json) -> (Codec, Vec<u8>) {
    let codec: Codec = case["codec"].as_str().unwrap().parse().unwrap();
    let frame = case["frame"].as_str().unwrap();
    let bytes = match codec {
        Codec::Json => frame.as_bytes().to_vec(),
        Codec::Msgpack => hex(frame),
    };
    (codec, bytes)
}

fn value(json: &Json) -> Value {
    Value::from(json.clone())
}

fn id_of(json: &Json) -> Id {
    serde_json::from_value(json.clone()).unwrap()
}

fn assert_mentions(name: &str, err: &dyn std::fmt::Display, case: &Json) {
    let want = case["errorMentions"].as_str().unwrap().to_lowercase();
    let got = err.to_string();
    assert!(
        got.to_lowercase().contains(&want),
        "{name}: error {got:?} should mention {want:?}"
    );
}

#[test]
fn values() {
    for case in load("values.json") {
        let name = case["name"].as_str().unwrap();
        let json = case["json"].as_str().unwrap();
        if case["valid"] == Json::Bool(false) {
            assert!(
                serde_json::from_str::<Value>(json).is_err(),
                "{name}: should not decode"
            );
            continue;
        }
        let expect = value(&case["value"]);
        let from_json: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let from_mp: Value = rmp_serde::from_slice(&hex(case["msgpack"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_json, expect, "{name}: json");
        assert_eq!(from_mp, expect, "{name}: msgpack");
        let again: Value = serde_json::from_slice(&serde_json::to_vec(&expect).unwrap()).unwrap();
        assert_eq!(again, expect, "{name}: json round trip");
        let again: Value = rmp_serde::from_slice(&rmp_serde::to_vec(&expect).unwrap()).unwrap();
        assert_eq!(again, expect, "{name}: msgpack round trip");
    }
}

#[test]
fn requests() {
    for case in load("requests.json") {
        let name = case["name"].as_str().unwrap();
        let (codec, bytes) = frame_bytes(&case);
        let got = Request::decode(codec, &bytes);
        if case["valid"] == Json::Bool(false) {
            let err = got
                .err()
                .unwrap_or_else(|| panic!("{name}: should be refused"));
            assert_mentions(name, &err, &case);
            continue;
        }
        let req = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expect"];
        assert_eq!(req.id, exp.get("id").map(id_of), "{name}: id");
        assert_eq!(
            req.method,
            exp["method"].as_str().unwrap(),
            "{name}: method"
        );
        assert_eq!(req.params, value(&exp["params"]), "{name}: params");
        assert_eq!(
            req.timestamp,
            exp.get("timestamp").and_then(Json::as_u64),
            "{name}"
        );
        assert_eq!(
            req.timeout_ms,
            exp.get("timeoutMs").and_then(Json::as_u64),
            "{name}"
        );
        assert_eq!(
            req.is_notification(),
            exp["notification"].as_bool().unwrap(),
            "{name}"
        );
        // What we encode decodes to the same request.
        let mut buf = Vec::new();
        req.encode(codec, &mut buf);
        let mut r = FrameReader::new(codec, 1 << 20);
        r.extend(&buf);
        let Some(Frame::Data(f)) = r.next_frame() else {
            panic!("{name}: no frame")
        };
        assert_eq!(
            Request::decode(codec, f).unwrap(),
            req,
            "{name}: re-encoded"
        );
    }
}

#[test]
fn messages() {
    for case in load("messages.json") {
        let name = case["name"].as_str().unwrap();
        let (codec, bytes) = frame_bytes(&case);
        let got = WorkerMessage::decode(codec, &bytes);
        if case["valid"] == Json::Bool(false) {
            let err = got
                .err()
                .unwrap_or_else(|| panic!("{name}: should be refused"));
            assert_mentions(name, &err, &case);
            continue;
        }
        let msg = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expect"];
        match (&msg, exp["kind"].as_str().unwrap()) {
            (WorkerMessage::Response(r), "response") => {
                assert_eq!(r.id, id_of(&exp["id"]), "{name}");
                match &r.outcome {
                    Ok(v) => assert_eq!(*v, value(&exp["result"]), "{name}"),
                    Err(e) => {
                        assert_eq!(e.code, exp["error"]["code"].as_str().unwrap(), "{name}");
                        assert_eq!(
                            e.message,
                            exp["error"]["message"].as_str().unwrap(),
                            "{name}"
                        );
                        assert_eq!(e.data, exp["error"].get("data").map(value), "{name}");
                    }
                }
                assert_eq!(
                    r.execution_time_us,
                    exp.get("executionTime").and_then(Json::as_u64)
                );
            }
            (WorkerMessage::Progress { id, progress }, "progress") => {
                assert_eq!(*id, id_of(&exp["id"]), "{name}");
                assert_eq!(*progress, value(&exp["progress"]), "{name}");
            }
            (WorkerMessage::Log(l), "log") => {
                let level: LogLevel = serde_json::from_value(exp["level"].clone()).unwrap();
                assert_eq!(l.level, level, "{name}");
                assert_eq!(l.message, exp["message"].as_str().unwrap(), "{name}");
                assert_eq!(l.fields, exp.get("fields").map(value), "{name}");
            }
            (other, kind) => panic!("{name}: decoded {other:?}, expected a {kind}"),
        }
        let mut buf = Vec::new();
        msg.encode(codec, &mut buf);
        let mut r = FrameReader::new(codec, 1 << 20);
        r.extend(&buf);
        let Some(Frame::Data(f)) = r.next_frame() else {
            panic!("{name}: no frame")
        };
        assert_eq!(
            WorkerMessage::decode(codec, f).unwrap(),
            msg,
            "{name}: re-encoded"
        );
    }
}

#[test]
fn handshakes() {
    for case in load("handshakes.json") {
        let name = case["name"].as_str().unwrap();
        let line = case["line"].as_str().unwrap().as_bytes();
        assert!(
            Handshake::is_candidate(line) || case.get("errorMentions").is_some(),
            "{name}"
        );
        let m = &case["manifest"];
        let caps: Vec<String> = serde_json::from_value(m["capabilities"].clone()).unwrap();
        let expected = Expected {
            module: m["name"].as_str().unwrap(),
            codec: m["codec"].as_str().unwrap().parse().unwrap(),
            capabilities: &caps,
        };
        let got = Handshake::parse(line).and_then(|h| h.check(&expected).map(|()| h));
        if case["valid"] == Json::Bool(false) {
            let err = got
                .err()
                .unwrap_or_else(|| panic!("{name}: should be refused"));
            assert_mentions(name, &err, &case);
            continue;
        }
        let h = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expect"];
        assert_eq!(h.protocol, exp["polyglot"].as_u64().unwrap(), "{name}");
        assert_eq!(h.module, exp["module"].as_str().unwrap(), "{name}");
        assert_eq!(h.version, exp["version"].as_str().unwrap(), "{name}");
        assert_eq!(h.codec.as_str(), exp["codec"].as_str().unwrap(), "{name}");
        assert_eq!(
            h.max_concurrency as u64,
            exp["maxConcurrency"].as_u64().unwrap(),
            "{name}"
        );
        let methods: Vec<String> = serde_json::from_value(exp["methods"].clone()).unwrap();
        assert_eq!(h.methods, methods, "{name}");
        assert_eq!(
            Handshake::parse(h.to_line().trim_end().as_bytes()).unwrap(),
            h,
            "{name}"
        );
    }
}

#[test]
fn frames() {
    for case in load("frames.json") {
        let name = case["name"].as_str().unwrap();
        let codec: Codec = case["codec"].as_str().unwrap().parse().unwrap();
        let limit = case["limit"].as_u64().unwrap() as usize;
        let stream = hex(case["stream"].as_str().unwrap());
        let expected = case["frames"].as_array().unwrap();
        // Every read size must give the same frames: one byte at a time, and all at once.
        for chunk in [1, 3, stream.len().max(1)] {
            let mut r = FrameReader::new(codec, limit);
            let mut got: Vec<Json> = Vec::new();
            for piece in stream.chunks(chunk) {
                r.extend(piece);
                while let Some(f) = r.next_frame() {
                    got.push(match f {
                        Frame::Data(d) => serde_json::json!({"frame": hex_of(d)}),
                        Frame::TooLarge { size, id } => {
                            serde_json::json!({"tooLarge": true, "size": size, "id": id})
                        }
                    });
                }
            }
            if r.finish().is_err() {
                got.push(serde_json::json!({"truncated": true}));
            }
            assert_eq!(&got, expected, "{name} (reads of {chunk} bytes)");
        }
    }
}

fn hex_of(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
