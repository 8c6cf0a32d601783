//! The bundled modules as a newcomer runs them: built by their own build steps, the Rust
//! and the Python implementation give identical answers, and each is the other's fallback.

#[path = "../../polyglot-core/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use polyglot_core::{CallError, InstanceState, Runtime, RuntimeConfig, Value};
use serde_json::json;

/// Every bundled module, built by its own build step, loaded and ready.
async fn bundled() -> Runtime {
    let dir = support::repo().join("polyglot-modules");
    let rt = Runtime::new(RuntimeConfig::default());
    let report = rt.load_dir(&dir).await;
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("module.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    // File fallbacks are ready under their own label: crypto-rust's TypeScript one.
    let (mut ready, fallbacks): (Vec<String>, Vec<String>) = report
        .ready
        .iter()
        .cloned()
        .partition(|r| !r.contains(" (fallback "));
    ready.sort();
    assert_eq!(ready, folders, "every bundled module is ready");
    assert_eq!(fallbacks, ["crypto-rust (fallback fallback/index.ts)"]);
    rt
}

#[tokio::test]
async fn the_go_and_cpp_modules_serve_through_the_host() {
    let rt = bundled().await;
    let r = rt
        .call("signal-cpp", "rms", Value::from(json!([[3, 4]])))
        .await
        .unwrap();
    assert!(
        (r.value.as_f64().unwrap() - 12.5f64.sqrt()).abs() < 1e-6,
        "{:?}",
        r.value
    );
    let samples = Value::from(json!([[1, 2, 3, 4], 2]));
    let r = rt
        .call("signal-cpp", "movingAverage", samples)
        .await
        .unwrap();
    assert_eq!(r.value, Value::from(json!([1.0, 1.5, 2.5, 3.5])));
    let r = rt
        .call(
            "text-go",
            "wordCount",
            Value::from(json!([["a b", "c", ""]])),
        )
        .await
        .unwrap();
    assert_eq!(r.value, Value::from(json!([2, 1, 0])));
    rt.shutdown().await;
}

#[tokio::test]
async fn rust_and_python_text_modules_give_identical_answers() {
    let rt = bundled().await;
    let texts = [
        "",
        "The cat and the hat.\nThe END",
        "Héllo wörld, ÇA VA? 42 times 42\r\n",
        "हिन्दी भाषा — İstanbul ⓐ ½ x²",
        "  --  ",
        "tab\tseparated\u{00a0}words\n\n",
    ];
    let mut calls = Vec::new();
    for t in texts {
        calls.push(("stats", json!([t])));
        calls.push(("slugify", json!([t])));
        calls.push(("wordFrequencies", json!([t])));
        calls.push(("wordFrequencies", json!([t, 2])));
        calls.push(("echo", json!([t])));
    }
    calls.push((
        "echo",
        json!([{"nested": [1, -2, 1.5, null, {"$bytes": "AAEC"}]}]),
    ));
    for bad in [
        json!([42]),
        json!([]),
        json!(["x", -1]),
        json!(["x", "3"]),
        json!([1, 2]),
    ] {
        calls.push(("wordFrequencies", bad.clone()));
        calls.push(("echo", bad));
    }
    for (method, params) in calls {
        let p = Value::from(params.clone());
        let r = rt.call("text-rust", method, p.clone()).await;
        let py = rt.call("text-python", method, p).await;
        match (r, py) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.value, b.value, "{method}({params})");
                assert_eq!(
                    (a.served_by.as_str(), b.served_by.as_str()),
                    ("text-rust", "text-python")
                );
            }
            (Err(CallError::Remote { code: a, .. }), Err(CallError::Remote { code: b, .. })) => {
                assert_eq!(a, b, "{method}({params})");
            }
            (a, b) => panic!("{method}({params}): rust {a:?} vs python {b:?}"),
        }
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn killing_the_rust_workers_sends_calls_to_python_until_they_are_back() {
    let rt = bundled().await;
    let params = || Value::from(json!(["Fall Back Now"]));
    assert_eq!(
        rt.call("text-rust", "slugify", params())
            .await
            .unwrap()
            .served_by,
        "text-rust"
    );
    let pids: Vec<u32> = rt
        .module("text-rust")
        .unwrap()
        .instances
        .iter()
        .filter_map(|i| i.pid)
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in &pids {
        kill9(*pid);
    }
    support::eventually(Duration::from_secs(5), "the host noticed", || {
        rt.module("text-rust")
            .unwrap()
            .instances
            .iter()
            .all(|i| i.state != InstanceState::Healthy)
    })
    .await;
    let r = rt.call("text-rust", "slugify", params()).await.unwrap();
    assert_eq!(
        (r.value, r.served_by.as_str(), r.fallback),
        (Value::from("fall-back-now"), "text-python", true)
    );
    support::eventually(Duration::from_secs(10), "text-rust is back", || {
        rt.module("text-rust")
            .unwrap()
            .instances
            .iter()
            .all(|i| i.state == InstanceState::Healthy)
    })
    .await;
    let r = rt.call("text-rust", "slugify", params()).await.unwrap();
    assert_eq!((r.served_by.as_str(), r.fallback), ("text-rust", false));
    rt.shutdown().await;
}

#[allow(unsafe_code)]
fn kill9(pid: u32) {
    // SAFETY: kill takes plain integers and touches no memory.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// The bundled native modules (crypto-rust, compress-rust, text-rust, dsp-cpp) answer alike in
/// the host's process (their builtins registered, as `polyglot-host` does) and as worker
/// processes (built from the same crate, as `polyglot-host --no-builtins` runs them); and
/// what one form encrypts or compresses, the other reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_modules_answer_alike_in_process_and_as_workers() {
    let workers = bundled().await;
    let in_process = Runtime::new(RuntimeConfig::default());
    polyglot_core::register_builtins(&in_process);
    let report = in_process
        .load_dir(&support::repo().join("polyglot-modules"))
        .await;
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    for m in ["crypto-rust", "compress-rust", "text-rust", "dsp-cpp"] {
        assert!(in_process.module(m).unwrap().in_process, "{m} in process");
        assert!(!workers.module(m).unwrap().in_process, "{m} as workers");
    }
    let key = json!({"$bytes": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="});
    let salt = json!({"$bytes": "c2FsdHNhbHQ="});
    let calls = [
        ("crypto-rust", "blake3", json!(["abc"])),
        (
            "crypto-rust",
            "blake3",
            json!({"data": "abc", "key": key, "length": 64}),
        ),
        (
            "crypto-rust",
            "blake3",
            json!({"data": "", "context": "polyglot test", "raw": true}),
        ),
        (
            "crypto-rust",
            "deriveKey",
            json!({"password": "hunter2", "salt": salt}),
        ),
        (
            "crypto-rust",
            "decrypt",
            json!({"data": {"$bytes": "AAAA"}, "key": key}),
        ),
        (
            "crypto-rust",
            "encrypt",
            json!({"data": "x", "key": {"$bytes": "AAE="}}),
        ),
        (
            "compress-rust",
            "decompress",
            json!([{"$bytes": "bm90IHpzdGQ="}]),
        ),
        (
            "text-rust",
            "jsonFormat",
            json!({"text": "{\"b\": [1, 2.50, \"\\u00e9\"], \"a\": null}"}),
        ),
        (
            "text-rust",
            "jsonFormat",
            json!({"text": "{\"b\": 1, \"a\": {\"d\": [], \"c\": {}}}", "style": "pretty"}),
        ),
        (
            "text-rust",
            "jsonFormat",
            json!({"text": "{\"a\": \n [1,, 2]}"}),
        ),
        ("text-rust", "jsonValidate", json!(["[1, 2"])),
        (
            "text-rust",
            "regexCount",
            json!(["[a-z]+@[a-z]+\\.com", "a@b.com, c@d.com; x@y.org"]),
        ),
        (
            "text-rust",
            "regexFindAll",
            json!(["(\\w+)@(\\w+)", "me@host you@there"]),
        ),
        (
            "text-rust",
            "regexReplace",
            json!(["(\\w+)@(\\w+)", "me@host", "$2 at $1"]),
        ),
        ("text-rust", "regexCount", json!(["(unclosed", "x"])),
        ("text-rust", "slugify", json!(["Héllo, Wörld!"])),
        (
            "dsp-cpp",
            "fir",
            json!({"samples": [1.0, 0.5, -0.25, 0.0, 2.0], "taps": [0.5, 0.25, 0.125]}),
        ),
        (
            "dsp-cpp",
            "lowpassTaps",
            json!({"cutoffHz": 1000.0, "sampleRateHz": 48000.0, "numTaps": 31}),
        ),
        (
            "dsp-cpp",
            "resample",
            json!({"samples": [0.0, 1.0, 0.0, -1.0, 0.0, 1.0], "fromRate": 48000, "toRate": 32000}),
        ),
        (
            "dsp-cpp",
            "resample",
            json!({"samples": [0.0], "fromRate": 0, "toRate": 32000}),
        ),
    ];
    for (module, method, params) in calls {
        let a = in_process
            .call(module, method, Value::from(params.clone()))
            .await;
        let b = workers
            .call(module, method, Value::from(params.clone()))
            .await;
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a.value, b.value, "{module}.{method}({params})"),
            (Err(CallError::Remote { code: a, .. }), Err(CallError::Remote { code: b, .. })) => {
                assert_eq!(a, b, "{module}.{method}({params})")
            }
            (a, b) => panic!("{module}.{method}({params}): in process {a:?}, worker {b:?}"),
        }
    }
    // Sealed and compressed in one form, opened in the other, both ways.
    let plain = "attack at dawn ".repeat(1000);
    for (seal, open) in [(&in_process, &workers), (&workers, &in_process)] {
        let sealed = seal
            .call(
                "crypto-rust",
                "encrypt",
                Value::from(json!({"data": plain, "key": key, "aad": "v1"})),
            )
            .await
            .unwrap()
            .value;
        let mut params = std::collections::BTreeMap::new();
        params.insert("data".into(), sealed);
        params.insert("key".into(), Value::from(key.clone()));
        params.insert("aad".into(), Value::from("v1"));
        let opened = open
            .call("crypto-rust", "decrypt", Value::Map(params))
            .await
            .unwrap()
            .value;
        assert_eq!(opened, Value::Bytes(plain.clone().into_bytes()));
        let packed = seal
            .call("compress-rust", "compress", Value::from(json!([plain, 19])))
            .await
            .unwrap()
            .value;
        let unpacked = open
            .call("compress-rust", "decompress", Value::Array(vec![packed]))
            .await
            .unwrap()
            .value;
        assert_eq!(unpacked, Value::Bytes(plain.clone().into_bytes()));
    }
    in_process.shutdown().await;
    workers.shutdown().await;
}
