//! Fixtures shared by the integration tests: calling a handler with params, params in
//! the two binary forms, generated inputs, and a worker started as a real process.
#![allow(dead_code)] // Each test target uses part of it.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use polyglot_protocol::{Codec, Frame, FrameReader, Handshake, Request, Response, WorkerMessage};
use polyglot_worker::{Context, Handler, Map, MethodError, Value, Worker};

/// Calls `method` on `handler` as the host does in-process.
pub async fn call(handler: &Worker, method: &str, params: Value) -> Result<Value, MethodError> {
    handler
        .call(method, params, Context::detached(method))
        .await
}

/// Params from JSON text, decoded as a worker decodes a JSON frame: binary arrives as
/// `{"$bytes": "<base64>"}` and becomes bytes.
pub fn json(text: &str) -> Value {
    Value::decode(Codec::Json, text.as_bytes()).expect("valid JSON params")
}

/// The base64 of `bytes`, for the JSON form of binary.
pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// An object of named params.
pub fn named(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map>(),
    )
}

/// The bytes of a call's result.
pub fn bytes(v: Value) -> Vec<u8> {
    match v {
        Value::Bytes(b) => b,
        other => panic!("expected bytes, got {}", other.type_name()),
    }
}

/// A field of a map.
pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("no `{key}` in {v}"))
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text that looks like logs: compressible, with an e-mail address in every fourth line.
pub fn log_text(lines: usize) -> String {
    let mut s = String::new();
    for i in 0..lines {
        if i % 4 == 0 {
            s.push_str(&format!("{i:08} INFO mail to user{i}@example.com queued\n"));
        } else {
            s.push_str(&format!(
                "{i:08} DEBUG GET /items/{} 200 {}ms\n",
                i % 977,
                i % 83
            ));
        }
    }
    s
}

/// A worker binary started as the host starts it, spoken to over its stdio.
pub struct WorkerProcess {
    pub child: Child,
    pub handshake: Handshake,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    reader: FrameReader,
    codec: Codec,
    next_id: u64,
}

impl WorkerProcess {
    /// Starts `polyglot-native <module>` with the host's environment.
    pub fn start(module: &str, codec: Codec, env: &[(&str, &str)]) -> WorkerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_polyglot-native"))
            .arg(module)
            .env("POLYGLOT_PROTOCOL", "1")
            .env("POLYGLOT_CODEC", codec.to_string())
            .env("POLYGLOT_TRANSPORT", "stdio")
            .env_remove("POLYGLOT_MODULE")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker binary is built with the tests");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        // The handshake is one JSON line whatever the codec; the codec applies after it.
        let mut reader = FrameReader::new(Codec::Json, 64 << 20);
        let first = next_frame(&mut stdout, &mut reader);
        let handshake = Handshake::parse(&first).expect("a handshake line first");
        reader.set_codec(codec);
        WorkerProcess {
            child,
            handshake,
            stdin,
            stdout,
            reader,
            codec,
            next_id: 1,
        }
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, method: &str, params: Value) -> Response {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = Vec::new();
        Request::new(id, method, params).encode(self.codec, &mut buf);
        let stdin = self.stdin.as_mut().expect("input still open");
        stdin.write_all(&buf).unwrap();
        stdin.flush().unwrap();
        loop {
            let frame = next_frame(&mut self.stdout, &mut self.reader);
            match WorkerMessage::decode(self.codec, &frame).unwrap() {
                WorkerMessage::Response(r) => {
                    assert_eq!(r.id, id.into());
                    return r;
                }
                _ => continue, // progress or logs
            }
        }
    }

    /// Closes the worker's input, which ends it, and returns its exit status.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }
}

fn next_frame(stdout: &mut ChildStdout, reader: &mut FrameReader) -> Vec<u8> {
    loop {
        if let Some(Frame::Data(f)) = reader.next_frame() {
            return f.to_vec();
        }
        let n = stdout.read(reader.read_buf()).unwrap();
        assert!(n > 0, "the worker closed its output");
        reader.filled(n);
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Only if a test failed before `finish`: the process must not outlive it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
