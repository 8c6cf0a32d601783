//! crypto-rust's TypeScript fallback (`polyglot-modules/crypto-rust/fallback/index.ts`,
//! compiled by the runtime and run by Node) against the native module: the same BLAKE3
//! bytes on the official vectors, the GCM specification's messages opened alike, each
//! side opening what the other sealed, the same error codes; in the real chain it serves
//! while the native worker cannot, and sends `deriveKey` on to crypto-python. And the
//! `polyglot-host` binary leaves no Node process behind when it stops or is killed.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyglot_core::{CallError, Reply, Runtime, RuntimeConfig, Value};
use polyglot_native::crypto;
use serde_json::json;
use support::{alive, Modules};

const METHODS: [&str; 4] = ["blake3", "encrypt", "decrypt", "deriveKey"];

/// The bundled crypto-rust folder.
fn crypto_rust() -> PathBuf {
    support::repo().join("polyglot-modules/crypto-rust")
}

/// Copies the TypeScript fallback into module folder `dir` (as `fallback/index.ts`), with
/// the npm packages it imports (crypto-rust's `node_modules`, linked: `npm ci` there, as
/// the test command does).
fn add_fallback(dir: &Path) {
    support::typescript_sdk();
    let src = crypto_rust();
    assert!(
        src.join("node_modules/@noble/hashes").is_dir(),
        "crypto-rust's npm packages are not installed: run `npm ci` in {}",
        src.display()
    );
    std::fs::create_dir_all(dir.join("fallback")).unwrap();
    std::fs::copy(src.join("fallback/index.ts"), dir.join("fallback/index.ts")).unwrap();
    std::fs::copy(src.join("package.json"), dir.join("package.json")).unwrap();
    std::os::unix::fs::symlink(src.join("node_modules"), dir.join("node_modules")).unwrap();
}

/// A modules folder with the native side (`crypto-rust`, the builtin in this process)
/// and the TypeScript fallback as a module of its own (`crypto-ts`, its primary).
async fn both_sides() -> (Runtime, Modules) {
    let mods = Modules::new();
    mods.add_raw(
        "crypto-rust",
        &json!({"name": "crypto-rust", "language": "rust", "version": "1.0.0",
                "builtin": "crypto", "capabilities": METHODS, "codec": "msgpack"})
        .to_string(),
    );
    let ts = mods.add_raw(
        "crypto-ts",
        &json!({"name": "crypto-ts", "language": "typescript", "version": "1.0.0",
                "path": "fallback/index.ts", "capabilities": METHODS, "codec": "msgpack",
                "timeoutMs": 60000})
        .to_string(),
    );
    add_fallback(&ts);
    let rt = Runtime::new(RuntimeConfig::default());
    rt.register_builtin(crypto::MODULE, Arc::new(crypto::handler()));
    let report = rt.load_dir(mods.dir()).await;
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    (rt, mods)
}

/// Calls `method` on both sides: the native module and the TypeScript one.
async fn call_both(
    rt: &Runtime,
    method: &str,
    params: &Value,
) -> (Result<Reply, CallError>, Result<Reply, CallError>) {
    (
        rt.call("crypto-rust", method, params.clone()).await,
        rt.call("crypto-ts", method, params.clone()).await,
    )
}

/// Both sides' value, which must be equal.
async fn same(rt: &Runtime, method: &str, params: Value) -> Value {
    match call_both(rt, method, &params).await {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.value, b.value, "{method}({})", show(&params));
            assert_eq!(b.served_by, "crypto-ts");
            a.value
        }
        (a, b) => panic!("{method}({}): rust {a:?}, typescript {b:?}", show(&params)),
    }
}

/// Both sides' error code (and data, when `data` is true), which must be equal.
async fn same_error(rt: &Runtime, method: &str, params: Value, data: bool) -> String {
    match call_both(rt, method, &params).await {
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
            "{method}({}): expected errors, got rust {a:?}, typescript {b:?}",
            show(&params)
        ),
    }
}

fn show(params: &Value) -> String {
    let text = params.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

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

/// Reproducible bytes (xorshift).
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

#[tokio::test]
async fn blake3_official_vectors_give_the_same_bytes_as_the_native_module() {
    let (rt, _mods) = both_sides().await;
    let doc = vectors("blake3.json");
    let key = doc["key"].as_str().unwrap().as_bytes().to_vec();
    let context = doc["context_string"].as_str().unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let len = case["input_len"].as_u64().unwrap() as usize;
        let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for (extra, want) in [
            (None, &case["hash"]),
            (Some(("key", bytes(&key))), &case["keyed_hash"]),
            (Some(("context", Value::from(context))), &case["derive_key"]),
        ] {
            let want = want.as_str().unwrap();
            for length in [Some(want.len() / 2), None] {
                let mut params = vec![("data", bytes(&input))];
                params.extend(extra.clone());
                if let Some(n) = length {
                    params.push(("length", Value::from(n)));
                }
                let got = same(&rt, "blake3", named(params)).await;
                let expected = &want[..length.map_or(64, |n| n * 2)];
                assert_eq!(got.as_str(), Some(expected), "{len} bytes");
            }
        }
    }
    // Raw output, text taken as its UTF-8, positional and lone params, and an input of
    // several megabytes (hashed in pieces on the TypeScript side).
    for params in [
        named(vec![
            ("data", Value::from("héllo")),
            ("raw", Value::from(true)),
        ]),
        Value::Array(vec![
            Value::from("abc"),
            Value::Null,
            Value::Null,
            Value::from(7),
        ]),
        Value::from("abc"),
        named(vec![("data", bytes(&noise(3 << 20, 11)))]),
    ] {
        same(&rt, "blake3", params).await;
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn aes_gcm_specification_vectors_open_alike() {
    let (rt, _mods) = both_sides().await;
    let doc = vectors("aes_gcm.json");
    let mut opened = 0;
    for case in doc["cases"].as_array().unwrap() {
        let field = |k: &str| unhex(case[k].as_str().unwrap());
        let iv = field("iv");
        if iv.len() != 12 {
            continue; // sealed messages carry GCM's standard 96-bit nonce
        }
        let mut message = iv;
        message.extend(field("ciphertext"));
        message.extend(field("tag"));
        let params = named(vec![
            ("data", bytes(&message)),
            ("key", bytes(&field("key"))),
            ("aad", bytes(&field("aad"))),
        ]);
        let plain = same(&rt, "decrypt", params).await;
        assert_eq!(plain.as_bytes(), Some(field("plaintext").as_slice()));
        opened += 1;
    }
    assert_eq!(opened, 4, "test cases 13 to 16 have 96-bit IVs");
    rt.shutdown().await;
}

#[tokio::test]
async fn each_side_opens_what_the_other_sealed_and_refuses_tampering_alike() {
    let (rt, _mods) = both_sides().await;
    let key = noise(32, 1);
    let other_key = noise(32, 2);
    for plain in [Vec::new(), b"attack at dawn".to_vec(), noise(1 << 20, 3)] {
        for aad in [
            None,
            Some(bytes(b"header v1")),
            Some(Value::from("text aad")),
        ] {
            for (sealer, opener) in [("crypto-rust", "crypto-ts"), ("crypto-ts", "crypto-rust")] {
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
                let mut tampered = Vec::new();
                for at in [0, 12, sealed.len() / 2, sealed.len() - 1] {
                    let mut t = sealed.clone();
                    t[at] ^= 0x01;
                    tampered.push(open(t, &key, aad.clone()));
                }
                tampered.push(open(sealed.clone(), &other_key, aad.clone()));
                tampered.push(open(sealed.clone(), &key, Some(Value::from("other"))));
                for params in tampered {
                    let code = same_error(&rt, "decrypt", params, true).await;
                    assert_eq!(code, "AUTHENTICATION_FAILED");
                }
            }
        }
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn errors_have_the_same_codes_and_derive_key_is_sent_on() {
    let (rt, _mods) = both_sides().await;
    let key = noise(32, 1);
    let x = || ("data", Value::from("x"));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("blake3", named(vec![]), "INVALID_PARAMS"),
        (
            "blake3",
            named(vec![x(), ("key", bytes(&key[..16]))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![x(), ("key", Value::from("k"))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![
                x(),
                ("key", bytes(&key)),
                ("context", Value::from("c")),
            ]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![x(), ("length", Value::from(0))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![x(), ("length", Value::from(1.5))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![x(), ("raw", Value::from(1))]),
            "INVALID_PARAMS",
        ),
        (
            "blake3",
            named(vec![x(), ("length", Value::from((1u64 << 20) + 1))]),
            "TOO_LARGE",
        ),
        (
            "blake3",
            named(vec![x(), ("lenght", Value::from(3))]),
            "INVALID_PARAMS",
        ),
        ("blake3", Value::from(42), "INVALID_PARAMS"),
        (
            "encrypt",
            named(vec![x(), ("key", bytes(&key[..31]))]),
            "INVALID_PARAMS",
        ),
        ("encrypt", named(vec![x()]), "INVALID_PARAMS"),
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
    ];
    for (method, params, want) in cases {
        let code = same_error(&rt, method, params.clone(), false).await;
        assert_eq!(code, want, "{method}({})", show(&params));
    }
    // The key-length error carries the same details on both sides.
    same_error(
        &rt,
        "encrypt",
        named(vec![x(), ("key", bytes(&key[..5]))]),
        true,
    )
    .await;
    // Alone, the TypeScript module cannot take deriveKey, and says why.
    match rt
        .call(
            "crypto-ts",
            "deriveKey",
            named(vec![("password", Value::from("pw"))]),
        )
        .await
    {
        Err(CallError::Unavailable { causes, .. }) => {
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert!(
                causes[0]
                    .reason
                    .contains("does not support method \"deriveKey\""),
                "{}",
                causes[0]
            );
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await;
}

/// The bundled chain: crypto-rust's worker program missing and no builtin registered, so
/// its TypeScript fallback serves, and crypto-python takes what that one does not support.
#[tokio::test]
async fn in_the_chain_the_typescript_fallback_serves_and_sends_derive_key_to_python() {
    let mods = Modules::new();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crypto_rust().join("module.json")).unwrap())
            .unwrap();
    manifest["command"] = json!("bin/no-such-worker");
    manifest.as_object_mut().unwrap().remove("build");
    manifest.as_object_mut().unwrap().remove("builtin");
    assert_eq!(
        manifest["fallback"],
        json!(["./fallback/index.ts", "crypto-python"])
    );
    let dir = mods.add_raw("crypto-rust", &manifest.to_string());
    add_fallback(&dir);
    std::os::unix::fs::symlink(
        support::repo().join("polyglot-modules/crypto-python"),
        mods.dir().join("crypto-python"),
    )
    .unwrap();
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(mods.dir()).await;
    let mut ready = report.ready.clone();
    ready.sort();
    assert_eq!(
        ready,
        ["crypto-python", "crypto-rust (fallback fallback/index.ts)"],
        "{:#?}",
        report.errors
    );
    let fallback = "crypto-rust (fallback fallback/index.ts)";
    let r = rt
        .call("crypto-rust", "blake3", Value::from(""))
        .await
        .unwrap();
    assert_eq!(
        r.value,
        Value::from("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
    );
    assert_eq!((r.served_by.as_str(), r.fallback), (fallback, true));
    let key = noise(32, 5);
    let sealed = rt
        .call(
            "crypto-rust",
            "encrypt",
            named(vec![("data", Value::from("chain")), ("key", bytes(&key))]),
        )
        .await
        .unwrap();
    assert_eq!(sealed.served_by, fallback);
    // crypto-python opens what the TypeScript fallback sealed.
    let opened = rt
        .call(
            "crypto-python",
            "decrypt",
            named(vec![("data", sealed.value), ("key", bytes(&key))]),
        )
        .await
        .unwrap();
    assert_eq!(opened.value, bytes(b"chain"));
    let derived = rt
        .call(
            "crypto-rust",
            "deriveKey",
            named(vec![
                ("password", Value::from("password")),
                ("salt", bytes(b"somesalt")),
                ("memoryKib", Value::from(256)),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        (derived.served_by.as_str(), derived.fallback),
        ("crypto-python", true)
    );
    assert_eq!(
        derived.value.get("key").and_then(Value::as_bytes),
        Some(unhex("9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe").as_slice())
    );
    rt.shutdown().await;
}

// ---------------------------------------------------------------- the host binary

/// A modules folder with a TypeScript module of two workers and a Rust module whose
/// fallback is a TypeScript file: four worker processes, three of them Node.
fn node_modules_fixture() -> Modules {
    let mods = Modules::new();
    let ts = mods.add_raw(
        "ts",
        &json!({"name": "ts", "language": "typescript", "version": "1.0.0",
                "path": "worker.ts", "instances": 2})
        .to_string(),
    );
    support::add_typescript_worker(&ts, "worker.ts");
    let p = mods.add(
        "p",
        support::Lang::Rust,
        json!({"fallback": "./fallback/worker.ts", "env": {"TEST_TS_HEALTH_FILE": ""}}),
    );
    support::add_typescript_worker(&p, "fallback/worker.ts");
    mods
}

/// Starts `polyglot-host serve` and returns it once it serves.
fn serve(mods: &Modules) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_polyglot-host"))
        .arg("--modules")
        .arg(mods.dir())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        if line.unwrap().contains("Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the host exited before serving: {status:?}");
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// The pids whose parent is `pid`, with their command names.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let name = stat
                .split_once('(')
                .and_then(|(_, r)| r.rsplit_once(')'))
                .map(|(n, _)| n.to_owned())
                .unwrap_or_default();
            let after = stat.rsplit(')').next().unwrap_or("");
            let ppid: u32 = after
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if ppid == pid {
                out.push((p, name));
            }
        }
    }
    out
}

fn wait_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "{what}: workers still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[allow(unsafe_code)]
fn kill(pid: u32, sig: i32) {
    // SAFETY: kill takes plain integers and touches no memory.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The host's Node workers, once all three run.
fn node_workers(host: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kids = children(host);
        let node: Vec<u32> = kids
            .iter()
            .filter(|(_, n)| n == "node")
            .map(|(p, _)| *p)
            .collect();
        if node.len() == 3 && kids.len() == 4 {
            return node;
        }
        assert!(Instant::now() < deadline, "workers of the host: {kids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_node_worker_outlives_a_host_killed_with_sigkill() {
    let mods = node_modules_fixture();
    let mut child = serve(&mods);
    let workers: Vec<u32> = children(child.id()).into_iter().map(|(p, _)| p).collect();
    let node = node_workers(child.id());
    child.kill().unwrap(); // SIGKILL: the host cannot clean up
    child.wait().unwrap();
    wait_gone(&node, "after SIGKILL of the host");
    wait_gone(&workers, "after SIGKILL of the host");
}

#[test]
fn serve_stops_its_node_workers_on_sigterm() {
    let mods = node_modules_fixture();
    let mut child = serve(&mods);
    let node = node_workers(child.id());
    kill(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    wait_gone(&node, "after SIGTERM");
}
