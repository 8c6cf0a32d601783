//! The native builtins (`crypto`, `compress`, `text`, served in the host's process) and
//! their Python fallbacks (`crypto-python`, `compress-python`, `text-python`, the real
//! module folders, built by their own build steps) answer alike: the same bytes on shared
//! vectors, each reads what the other wrote, the same error codes, and the fallback
//! serves when the native module cannot.
//!
//! What is compared byte for byte: BLAKE3 hashes, Argon2id keys, zstd frames, JSON
//! output, regex results. What is compared by round trip only: AES-GCM messages, whose
//! nonces are random on both sides (each must open the other's, and both open the
//! specification's vectors).

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use polyglot_core::{CallError, Reply, Runtime, RuntimeConfig, Value};
use polyglot_native::{compress, crypto, text};
use serde_json::json;

/// The Rust side of each pair: a manifest naming the builtin, its methods and its
/// Python fallback.
const PAIRS: [(&str, &str, &str, &[&str]); 3] = [
    (
        "crypto-rust",
        "crypto",
        "crypto-python",
        &["blake3", "encrypt", "decrypt", "deriveKey"],
    ),
    (
        "compress-rust",
        "compress",
        "compress-python",
        &["compress", "decompress"],
    ),
    (
        "text-rust",
        "text",
        "text-python",
        &[
            "jsonFormat",
            "jsonValidate",
            "regexFindAll",
            "regexCount",
            "regexReplace",
        ],
    ),
];

/// A modules folder holding the real Python modules (linked, so their build steps run
/// in place and their venvs are shared with the bundled modules) and a manifest for each
/// Rust side. `command` is the Rust side's worker program: `None` when the builtin
/// serves it.
fn modules(command: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bundled = support::repo().join("polyglot-modules");
    for (rust, builtin, python, methods) in PAIRS {
        std::os::unix::fs::symlink(bundled.join(python), dir.path().join(python)).unwrap();
        let mut manifest = json!({
            "name": rust,
            "language": "rust",
            "version": "1.0.0",
            "builtin": builtin,
            "capabilities": methods,
            "fallback": python,
            "codec": "msgpack",
            "timeoutMs": 60000,
        });
        if let Some(c) = command {
            manifest["command"] = json!(c);
        }
        let folder = dir.path().join(rust);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(
            folder.join("module.json"),
            serde_json::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();
    }
    dir
}

/// A runtime with the three builtins registered, serving both sides of every pair.
async fn both_sides() -> (Runtime, tempfile::TempDir) {
    let dir = modules(None);
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register_builtin(crypto::MODULE, Arc::new(crypto::handler()));
    rt.register_builtin(compress::MODULE, Arc::new(compress::handler()));
    rt.register_builtin(text::MODULE, Arc::new(text::handler()));
    let report = rt.load_dir(dir.path()).await;
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(report.ready.len(), 6, "{:?}", report.ready);
    (rt, dir)
}

/// The Python module that mirrors `rust`.
fn python_of(rust: &str) -> &'static str {
    PAIRS
        .iter()
        .find(|p| p.0 == rust)
        .map(|p| p.2)
        .expect("a known pair")
}

/// Calls `method` on both sides of the pair `rust`.
async fn call_both(
    rt: &Runtime,
    rust: &str,
    method: &str,
    params: &Value,
) -> (Result<Reply, CallError>, Result<Reply, CallError>) {
    let python = python_of(rust);
    let r = rt.call(rust, method, params.clone()).await;
    let p = rt.call(python, method, params.clone()).await;
    if let Ok(reply) = &r {
        assert_eq!(
            (reply.served_by.as_str(), reply.fallback),
            (rust, false),
            "{method}"
        );
    }
    if let Ok(reply) = &p {
        assert_eq!(
            (reply.served_by.as_str(), reply.fallback),
            (python, false),
            "{method}"
        );
    }
    (r, p)
}

/// Both sides' value, which must be equal.
async fn same(rt: &Runtime, rust: &str, method: &str, params: Value) -> Value {
    match call_both(rt, rust, method, &params).await {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.value, b.value, "{method}({})", show(&params));
            a.value
        }
        (a, b) => panic!("{method}({}): rust {a:?}, python {b:?}", show(&params)),
    }
}

/// Both sides' error code (and data, when `data` is true), which must be equal.
async fn same_error(rt: &Runtime, rust: &str, method: &str, params: Value, data: bool) -> String {
    match call_both(rt, rust, method, &params).await {
        (
            Err(CallError::Remote {
                code: a, data: da, ..
            }),
            Err(CallError::Remote {
                code: b, data: db, ..
            }),
        ) => {
            assert_eq!(a, b, "{method}({})", show(&params));
            if data {
                assert_eq!(da, db, "{method}({}): error data", show(&params));
            }
            a
        }
        (a, b) => panic!(
            "{method}({}): expected errors, got rust {a:?}, python {b:?}",
            show(&params)
        ),
    }
}

/// Params for messages, cut short: some hold megabytes.
fn show(params: &Value) -> String {
    let text = params.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// Named params.
fn named(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors(name: &str) -> serde_json::Value {
    let path = support::repo()
        .join("crates/polyglot-native/tests/vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Reproducible bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Text-like bytes that compress well but not trivially: words from a small vocabulary
/// in a pseudo-random order, with numbers.
fn prose(len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "polyglot ",
        "worker ",
        "frame ",
        "zstd ",
        "the ",
        "of ",
        "and ",
        "module ",
        "host ",
        "call\n",
        "{\"id\": ",
        "fallback, ",
    ];
    let picks = noise(len / 4 + 16, 7);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(WORDS[usize::from(picks[i % picks.len()]) % WORDS.len()].as_bytes());
        if picks[i % picks.len()].is_multiple_of(5) {
            out.extend_from_slice(format!("{} ", i * 37 % 1009).as_bytes());
        }
        i += 1;
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------- crypto

#[tokio::test]
async fn blake3_official_vectors_give_the_same_bytes_on_both_sides() {
    let (rt, _dir) = both_sides().await;
    let doc = vectors("blake3.json");
    let key = doc["key"].as_str().unwrap().as_bytes().to_vec();
    let context = doc["context_string"].as_str().unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    for case in cases {
        let len = case["input_len"].as_u64().unwrap() as usize;
        let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for (mode, extra, want) in [
            ("hash", None, &case["hash"]),
            (
                "keyed_hash",
                Some(("key", bytes(&key))),
                &case["keyed_hash"],
            ),
            (
                "derive_key",
                Some(("context", Value::from(context))),
                &case["derive_key"],
            ),
        ] {
            let want = want.as_str().unwrap();
            // The extended output, and the default 32 bytes (its prefix).
            for length in [Some(want.len() / 2), None] {
                let mut params = vec![("data", bytes(&input))];
                params.extend(extra.clone());
                if let Some(n) = length {
                    params.push(("length", Value::from(n)));
                }
                let got = same(&rt, "crypto-rust", "blake3", named(params)).await;
                let expected = &want[..length.map_or(64, |n| n * 2)];
                assert_eq!(got.as_str(), Some(expected), "{mode}, {len} bytes");
            }
        }
    }
    // Raw output, and text input taken as its UTF-8.
    let raw = same(
        &rt,
        "crypto-rust",
        "blake3",
        named(vec![
            ("data", Value::from("héllo")),
            ("raw", Value::from(true)),
        ]),
    )
    .await;
    assert_eq!(raw.as_bytes().map(<[u8]>::len), Some(32));
    rt.shutdown().await;
}

#[tokio::test]
async fn aes_gcm_specification_vectors_open_on_both_sides() {
    let (rt, _dir) = both_sides().await;
    let doc = vectors("aes_gcm.json");
    let mut opened = 0;
    for case in doc["cases"].as_array().unwrap() {
        let field = |k: &str| unhex(case[k].as_str().unwrap());
        let iv = field("iv");
        if iv.len() != 12 {
            // Test cases 17 and 18 use 64- and 480-bit IVs; sealed messages carry GCM's
            // standard 96-bit nonce.
            continue;
        }
        let mut message = iv;
        message.extend(field("ciphertext"));
        message.extend(field("tag"));
        let params = named(vec![
            ("data", bytes(&message)),
            ("key", bytes(&field("key"))),
            ("aad", bytes(&field("aad"))),
        ]);
        let plain = same(&rt, "crypto-rust", "decrypt", params).await;
        assert_eq!(
            plain.as_bytes(),
            Some(field("plaintext").as_slice()),
            "{}",
            case["name"]
        );
        opened += 1;
    }
    assert_eq!(opened, 4, "test cases 13 to 16 have 96-bit IVs");
    rt.shutdown().await;
}

#[tokio::test]
async fn each_side_opens_what_the_other_sealed_and_refuses_tampering_alike() {
    let (rt, _dir) = both_sides().await;
    let key = noise(32, 1);
    let other_key = noise(32, 2);
    for plain in [Vec::new(), b"attack at dawn".to_vec(), noise(1 << 20, 3)] {
        for aad in [
            None,
            Some(bytes(b"header v1")),
            Some(Value::from("text aad")),
        ] {
            for (sealer, opener) in [
                ("crypto-rust", "crypto-python"),
                ("crypto-python", "crypto-rust"),
            ] {
                let mut seal = vec![("data", bytes(&plain)), ("key", bytes(&key))];
                seal.extend(aad.clone().map(|a| ("aad", a)));
                let sealed = rt.call(sealer, "encrypt", named(seal)).await.unwrap().value;
                let sealed = sealed.as_bytes().unwrap().to_vec();
                assert_eq!(sealed.len(), plain.len() + 28, "{sealer}");
                let open = |data: Vec<u8>, key: &[u8], aad: Option<Value>| {
                    let mut p = vec![("data", Value::Bytes(data)), ("key", bytes(key))];
                    p.extend(aad.map(|a| ("aad", a)));
                    named(p)
                };
                let got = rt
                    .call(opener, "decrypt", open(sealed.clone(), &key, aad.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{opener} opening {sealer}'s message: {e}"));
                assert_eq!(got.value.as_bytes(), Some(plain.as_slice()));
                // Any altered byte (nonce, body, tag), another key or another aad.
                let mut tampered = Vec::new();
                for at in [0, 12, sealed.len() / 2, sealed.len() - 1] {
                    let mut t = sealed.clone();
                    t[at] ^= 0x01;
                    tampered.push(open(t, &key, aad.clone()));
                }
                tampered.push(open(sealed.clone(), &other_key, aad.clone()));
                tampered.push(open(sealed.clone(), &key, Some(Value::from("other"))));
                for params in tampered {
                    let code = same_error(&rt, "crypto-rust", "decrypt", params, true).await;
                    assert_eq!(code, "AUTHENTICATION_FAILED");
                }
            }
        }
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn derive_key_answers_are_equal() {
    let (rt, _dir) = both_sides().await;
    // Argon2id's reference answers (phc-winner-argon2, `src/test.c`), 1 and 2 lanes.
    for (lanes, want) in [
        (
            1u32,
            "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
        ),
        (
            2,
            "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037",
        ),
    ] {
        let got = same(
            &rt,
            "crypto-rust",
            "deriveKey",
            named(vec![
                ("password", Value::from("password")),
                ("salt", bytes(b"somesalt")),
                ("memoryKib", Value::from(256)),
                ("iterations", Value::from(2)),
                ("parallelism", Value::from(lanes)),
            ]),
        )
        .await;
        assert_eq!(
            got.get("key").and_then(Value::as_bytes),
            Some(unhex(want).as_slice())
        );
        assert_eq!(
            got.get("algorithm").and_then(Value::as_str),
            Some("argon2id")
        );
    }
    let salt = noise(16, 9);
    for params in [
        // The defaults (19 MiB, 2 passes, 1 lane, 32 bytes).
        vec![("password", Value::from("hunter2")), ("salt", bytes(&salt))],
        vec![
            ("password", bytes(&noise(64, 4))),
            ("salt", bytes(&salt[..8])),
            ("memoryKib", Value::from(1024)),
            ("iterations", Value::from(3)),
            ("parallelism", Value::from(4)),
            ("length", Value::from(64)),
        ],
        vec![
            ("password", Value::from("")),
            ("salt", bytes(&salt)),
            ("memoryKib", Value::from(64)),
            ("iterations", Value::from(1)),
            ("length", Value::from(16)),
        ],
    ] {
        same(&rt, "crypto-rust", "deriveKey", named(params)).await;
    }
    // A generated salt: both give 16 fresh bytes, and the other side derives the same
    // key from it.
    let first = rt
        .call(
            "crypto-python",
            "deriveKey",
            named(vec![
                ("password", Value::from("pw")),
                ("memoryKib", Value::from(64)),
            ]),
        )
        .await
        .unwrap()
        .value;
    let salt = first
        .get("salt")
        .and_then(Value::as_bytes)
        .unwrap()
        .to_vec();
    assert_eq!(salt.len(), 16);
    let again = rt
        .call(
            "crypto-rust",
            "deriveKey",
            named(vec![
                ("password", Value::from("pw")),
                ("salt", Value::Bytes(salt)),
                ("memoryKib", Value::from(64)),
            ]),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(first, again);
    rt.shutdown().await;
}

#[tokio::test]
async fn crypto_errors_have_the_same_codes() {
    let (rt, _dir) = both_sides().await;
    let key = noise(32, 1);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("blake3", named(vec![]), "INVALID_PARAMS"),
        (
            "blake3",
            named(vec![("data", Value::from("x")), ("key", bytes(&key[..16]))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![("data", Value::from("x")), ("key", Value::from("k"))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![
                ("data", Value::from("x")),
                ("key", bytes(&key)),
                ("context", Value::from("c")),
            ]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![("data", Value::from("x")), ("length", Value::from(0))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![
                ("data", Value::from("x")),
                ("length", Value::from((1u64 << 20) + 1)),
            ]),
            "TOO_LARGE",
        ),
        (
            "blake3",
            named(vec![("data", Value::from("x")), ("lenght", Value::from(3))]),
            "INVALID_PARAMS",
        ),
        (
            "encrypt",
            named(vec![("data", Value::from("x")), ("key", bytes(&key[..31]))]),
            "INVALID_PARAMS",
        ),
        (
            "decrypt",
            named(vec![("data", bytes(&[0; 27])), ("key", bytes(&key))]),
            "INVALID_PARAMS",
        ),
        (
            "decrypt",
            named(vec![("data", Value::from("text")), ("key", bytes(&key))]),
            "INVALID_PARAMS",
        ),
        (
            "deriveKey",
            named(vec![
                ("password", Value::from("pw")),
                ("salt", bytes(b"short")),
            ]),
            "INVALID_PARAMS",
        ),
        (
            "deriveKey",
            named(vec![
                ("password", Value::from("pw")),
                ("length", Value::from(8)),
            ]),
            "INVALID_PARAMS",
        ),
        (
            "deriveKey",
            named(vec![
                ("password", Value::from("pw")),
                ("memoryKib", Value::from(8)),
                ("parallelism", Value::from(2)),
            ]),
            "INVALID_PARAMS",
        ),
    ];
    for (method, params, want) in cases {
        let code = same_error(&rt, "crypto-rust", method, params, false).await;
        assert_eq!(code, want, "{method}");
    }
    rt.shutdown().await;
}

// ---------------------------------------------------------------- compress

#[tokio::test]
async fn zstd_frames_are_byte_identical_and_each_side_reads_the_others() {
    let (rt, _dir) = both_sides().await;
    let inputs = [
        ("empty", Vec::new()),
        ("small", b"hello hello hello, polyglot".to_vec()),
        ("5 MB of text", prose(5 << 20)),
        ("64 KiB of noise", noise(64 << 10, 5)),
    ];
    for (what, data) in &inputs {
        for level in [None, Some(1), Some(-5), Some(19)] {
            if level == Some(19) && data.len() > 1 << 20 {
                continue; // level 19 on megabytes is slow in a debug build
            }
            let mut params = vec![("data", bytes(data))];
            params.extend(level.map(|l| ("level", Value::from(l))));
            // Both link libzstd 1.5.7 and set the same parameters: the same frame.
            let frame = same(&rt, "compress-rust", "compress", named(params)).await;
            let frame = frame.as_bytes().unwrap().to_vec();
            // And each reads it (so each reads the other's).
            let out = same(
                &rt,
                "compress-rust",
                "decompress",
                named(vec![("data", Value::Bytes(frame))]),
            )
            .await;
            assert_eq!(out.as_bytes(), Some(data.as_slice()), "{what} at {level:?}");
        }
    }
    // Several frames in a row, one of them streamed (no content size in its header).
    let mut frames = compress::compress(b"first frame, ", 3).unwrap();
    let mut streamed = compress::Encoder::new(Vec::new(), 3).unwrap();
    std::io::Write::write_all(&mut streamed, &prose(300_000)).unwrap();
    frames.extend(streamed.finish().unwrap());
    let out = same(
        &rt,
        "compress-rust",
        "decompress",
        named(vec![("data", Value::Bytes(frames))]),
    )
    .await;
    assert_eq!(out.as_bytes().map(<[u8]>::len), Some(13 + 300_000));
    rt.shutdown().await;
}

#[tokio::test]
async fn decompression_bombs_and_corrupt_frames_are_refused_alike() {
    let (rt, _dir) = both_sides().await;
    let limit = 1u64 << 20;
    // A frame that declares 64 MiB: refused before any work, naming the size.
    let declared = compress::compress(&vec![0u8; 64 << 20], 3).unwrap();
    assert!(declared.len() < 4096, "{} bytes", declared.len());
    // The same without a declared size (streamed): stopped at the limit.
    let mut enc = compress::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let undeclared = enc.finish().unwrap();
    for bomb in [declared, undeclared.clone()] {
        let code = same_error(
            &rt,
            "compress-rust",
            "decompress",
            named(vec![
                ("data", Value::Bytes(bomb)),
                ("maxSize", Value::from(limit)),
            ]),
            true,
        )
        .await;
        assert_eq!(code, "TOO_LARGE");
    }
    // Not zstd, cut short, altered.
    let good = compress::compress(&prose(100_000), 3).unwrap();
    let mut altered = good.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x55;
    for (what, data) in [
        ("empty", Vec::new()),
        ("not zstd", b"certainly not a zstd frame".to_vec()),
        ("cut short", good[..good.len() - 7].to_vec()),
        (
            "cut short, streamed",
            undeclared[..undeclared.len() / 2].to_vec(),
        ),
        ("altered", altered),
        ("trailing garbage", [good.clone(), b"xyz".to_vec()].concat()),
    ] {
        let code = same_error(
            &rt,
            "compress-rust",
            "decompress",
            named(vec![("data", Value::Bytes(data))]),
            false,
        )
        .await;
        assert_eq!(code, "CORRUPT_DATA", "{what}");
    }
    for params in [
        named(vec![("data", Value::from("x")), ("level", Value::from(23))]),
        named(vec![
            ("data", Value::Bytes(good)),
            ("maxSize", Value::from((4u64 << 30) + 1)),
        ]),
    ] {
        let method = if params.get("level").is_some() {
            "compress"
        } else {
            "decompress"
        };
        let code = same_error(&rt, "compress-rust", method, params, false).await;
        assert_eq!(code, "INVALID_PARAMS");
    }
    rt.shutdown().await;
}

// ---------------------------------------------------------------- text: JSON

/// Documents whose canonical, compact and pretty forms must be byte-identical: escapes,
/// non-ASCII text, repeated keys, numbers at the edges of `u64`, `i64` and `f64`, numbers
/// with more digits than a double holds, deep nesting.
fn json_documents() -> Vec<Vec<u8>> {
    let mut docs: Vec<Vec<u8>> = [
        r#"{"b": 1, "a": [true, null, false], "c": {"z": "", "y": {}}}"#,
        r#"{"b":1,"a":2,"b":3,"\u0041":"x\ty","a":4}"#,
        r#"{"é": "ü", "e": "\u00e9", "Z": "z", "ä": 1, "a": 2, "\u2028": "\u2029", "😀": "\ud83d\ude00"}"#,
        r#"["\u0000\u001f\u007f", "\b\f\n\r\t", "\/ \\ \"", "控制", "\ud834\udd1e"]"#,
        r#"[0, -0, -0.0, 1, -1, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]"#,
        r#"[1.5, 1.50, 1e2, 1E+2, 2.5e-8, 1e15, 1e16, 1e-5, 1e-6, 0.1, 0.30000000000000004, 123456.789e3]"#,
        r#"[1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 1e-400, 0e999999999999, 123456789012345678901234567890]"#,
        r#"[3.14159265358979323846264338327950288419716939937510, 0.000000000000000000000000000001234, 9007199254740993.0]"#,
        r#"{"deep": [[[[{"a": [[{"b": [1, {"c": [[]]}]}]]}]]]], "empty": [[], {}, ""]}"#,
        "  \"just a string\"\n",
        "null",
        "-12.5e-3",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut deepest = "[".repeat(127);
    deepest.push_str(&"]".repeat(127));
    docs.push(deepest.into_bytes());
    // Many numbers, to catch any digit of difference in reading or writing them.
    let numbers: Vec<String> = noise(8 * 400, 11)
        .chunks(8)
        .map(|c| {
            let bits = u64::from_le_bytes(c.try_into().unwrap());
            let f = f64::from_bits(bits);
            if f.is_finite() {
                format!("{f:e}")
            } else {
                format!("{}", bits >> 11)
            }
        })
        .collect();
    docs.push(format!("[{}]", numbers.join(",")).into_bytes());
    docs
}

#[tokio::test]
async fn json_outputs_are_byte_identical() {
    let (rt, _dir) = both_sides().await;
    for doc in json_documents() {
        for style in [None, Some("canonical"), Some("compact"), Some("pretty")] {
            // The text as bytes and as a string.
            for text in [
                Value::Bytes(doc.clone()),
                Value::from(String::from_utf8(doc.clone()).unwrap()),
            ] {
                let mut params = vec![("text", text)];
                params.extend(style.map(|s| ("style", Value::from(s))));
                let out = same(&rt, "text-rust", "jsonFormat", named(params)).await;
                assert!(out.as_str().is_some());
            }
        }
        let valid = same(
            &rt,
            "text-rust",
            "jsonValidate",
            named(vec![("text", Value::Bytes(doc))]),
        )
        .await;
        assert_eq!(valid.get("valid"), Some(&Value::from(true)));
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn json_errors_have_the_same_message_line_and_column() {
    let (rt, _dir) = both_sides().await;
    let mut bad: Vec<Vec<u8>> = [
        "",
        " ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        "tru",
        "nul",
        "01",
        "1.",
        "1e",
        "-",
        ".5",
        "+1",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e999999999999",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\u12g4\"",
        "\"\\q\"",
        "\"abc",
        "\"a\nb\"",
        "{} {}",
        "[1, 2,, 3]",
        "{\n  \"a\": 1,\n  \"b\": tru\n}",
        "[\n1,\n2\n",
        "{\"a\":\n",
        "[1,\n]",
        "\n\n  x",
        "\u{feff}{}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bad.push(b"[\"ok\", \"\xff\"]".to_vec());
    bad.push(b"{\"\xc3\": 1}".to_vec());
    bad.push(b"[\xff]".to_vec());
    let mut too_deep = "[".repeat(128);
    too_deep.push_str(&"]".repeat(128));
    bad.push(too_deep.into_bytes());
    for doc in bad {
        let params = named(vec![("text", Value::Bytes(doc.clone()))]);
        let code = same_error(&rt, "text-rust", "jsonFormat", params.clone(), true).await;
        assert_eq!(code, "BAD_JSON", "{:?}", String::from_utf8_lossy(&doc));
        let answer = same(&rt, "text-rust", "jsonValidate", params).await;
        assert_eq!(answer.get("valid"), Some(&Value::from(false)));
    }
    let code = same_error(
        &rt,
        "text-rust",
        "jsonFormat",
        named(vec![
            ("text", Value::from("{}")),
            ("style", Value::from("sorted")),
        ]),
        false,
    )
    .await;
    assert_eq!(code, "INVALID_PARAMS");
    rt.shutdown().await;
}

// ---------------------------------------------------------------- text: regex

/// Patterns in the common subset of the Rust `regex` syntax and Python's `re` (see
/// `polyglot-modules/text-python/text_regex.py`).
const PATTERNS: &[&str] = &[
    r"\w+",
    r"\d+",
    r"\s+",
    r"\b\w",
    r"\B",
    r"[a-z]+",
    r"(?i)hello",
    r"(\w+)@(\w+)\.com",
    r"(?P<y>\d{4})-(?<m>\d\d)-(\d\d)?",
    r"x*",
    r"a|",
    "",
    r"(?m)^\w+$",
    r"(?m)^",
    r"$",
    r"\A\w",
    r"\w\z",
    r"(?s).+",
    r".+",
    r"(?U)a+",
    r"a+?",
    r"a{2,3}",
    r"(a)|b",
    r"(?x) \w + \s* # words",
    r"[[:alpha:]]+",
    r"[^\W\d]+",
    r"(?i)ÉCOLE",
    r"[\x{1F600}-\x{1F64F}]+",
    r"\w+(?:\s*,\s*\w+)*",
    r"colou?r",
    r"[-.\w]+",
    r"\$\d+(?:\.\d\d)?",
    r"(\d+)(?:px|em)",
    r"(?i)(?-i:A)a",
    r"[^]a]+",
];

const TEXTS: &[&str] = &[
    "",
    "hello world, Hello WORLD",
    "mail ann@example.com or bob@test.com",
    "2024-01-15 and 1999-12-",
    "abxd aaa aaaa a",
    "line one\nline two\n",
    "Ünïcödé façade — naïve café ½ ² é\u{301} \u{203f} Ⓐ 𝟘 ÉCOLE école",
    "😀😃 emoji 😀",
    "x,  y ,z",
    "$12.50 and $3; 12px 3em 4pt",
    "colour color colr ]]a^",
];

const REPLACEMENTS: &[&str] = &[
    "<$1>",
    "${y}/${m}",
    "$0$0",
    "$$",
    "$",
    "$name",
    "${1}x",
    "$1x",
    "${nope}",
    "x${",
    r"\n\1",
];

#[tokio::test]
async fn regex_outputs_are_identical() {
    let (rt, _dir) = both_sides().await;
    for (i, pattern) in PATTERNS.iter().enumerate() {
        for (j, text) in TEXTS.iter().enumerate() {
            let base = || {
                vec![
                    ("pattern", Value::from(*pattern)),
                    ("text", Value::from(*text)),
                ]
            };
            same(&rt, "text-rust", "regexFindAll", named(base())).await;
            same(&rt, "text-rust", "regexCount", named(base())).await;
            let mut limited = base();
            limited.push(("limit", Value::from(2)));
            same(&rt, "text-rust", "regexFindAll", named(limited)).await;
            let replacement = REPLACEMENTS[(i + j) % REPLACEMENTS.len()];
            for (limit, literal) in [(None, None), (Some(1), None), (None, Some(true))] {
                let mut params = base();
                params.push(("replacement", Value::from(replacement)));
                params.extend(limit.map(|l| ("limit", Value::from(l))));
                params.extend(literal.map(|l| ("literal", Value::from(l))));
                same(&rt, "text-rust", "regexReplace", named(params)).await;
            }
        }
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn patterns_the_rust_syntax_refuses_are_bad_patterns_on_both_sides() {
    let (rt, _dir) = both_sides().await;
    // Look-around, backreferences, atomic groups, `\Z`, bad counts and ranges, unbalanced
    // groups and classes, dangling flags: all features Python's `re` has or reads
    // differently, none of which the Rust crate takes.
    for pattern in [
        r"(?=a)",
        r"(?<=a)b",
        r"(?!a)",
        r"\1",
        r"(?P=n)",
        r"(?>a)",
        r"\Z",
        "a{2,1}",
        "a{,3}",
        "(",
        ")",
        "[a",
        "[z-a]",
        "*a",
        "(?i-)a",
        "(?ii)a",
        r"\e",
        "(?#comment)",
    ] {
        let params = named(vec![
            ("pattern", Value::from(pattern)),
            ("text", Value::from("aaa")),
        ]);
        let code = same_error(&rt, "text-rust", "regexCount", params, false).await;
        assert_eq!(code, "BAD_PATTERN", "{pattern}");
    }
    // Outside the Python side's subset: the Rust side takes them, the Python side refuses
    // them with the same code (reason "unsupported"), never a different answer.
    for pattern in [r"\p{Greek}", "[a-z&&[^aeiou]]", r"(a+)+b", r"(\w+\s?)+$"] {
        let params = named(vec![
            ("pattern", Value::from(pattern)),
            ("text", Value::from("aaa")),
        ]);
        assert!(rt
            .call("text-rust", "regexCount", params.clone())
            .await
            .is_ok());
        match rt.call("text-python", "regexCount", params).await {
            Err(CallError::Remote { code, data, .. }) => {
                assert_eq!(code, "BAD_PATTERN", "{pattern}");
                let reason = data.as_ref().and_then(|d| d.get("reason"));
                assert_eq!(reason, Some(&Value::from("unsupported")), "{pattern}");
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
    rt.shutdown().await;
}

// ---------------------------------------------------------------- fallback

#[tokio::test]
async fn the_python_module_serves_when_the_native_one_cannot_start() {
    // No builtin registered, and the Rust side's worker program does not exist: every
    // call goes to its Python fallback.
    let dir = modules(Some("bin/no-such-worker"));
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(dir.path()).await;
    let mut ready = report.ready.clone();
    ready.sort();
    assert_eq!(
        ready,
        ["compress-python", "crypto-python", "text-python"],
        "{:#?}",
        report.errors
    );
    assert_eq!(report.errors.len(), 3, "{:#?}", report.errors);
    let empty_hash = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    let frame = compress::compress(b"served anyway", 3).unwrap();
    for (module, method, param, check) in [
        (
            "crypto-rust",
            "blake3",
            Value::from(""),
            Value::from(empty_hash),
        ),
        (
            "text-rust",
            "jsonFormat",
            Value::from(r#"{"b": 1, "a": 2}"#),
            Value::from(r#"{"a":2,"b":1}"#),
        ),
        (
            "compress-rust",
            "decompress",
            Value::Bytes(frame),
            Value::Bytes(b"served anyway".to_vec()),
        ),
    ] {
        let reply = rt
            .call(module, method, Value::Array(vec![param]))
            .await
            .unwrap_or_else(|e| panic!("{module}: {e}"));
        assert_eq!(reply.value, check, "{module}");
        assert_eq!(
            (reply.served_by.as_str(), reply.fallback),
            (python_of(module), true)
        );
    }
    rt.shutdown().await;
}
