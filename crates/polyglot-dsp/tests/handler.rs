//! The `dsp` handler called as a host calls it in-process: both forms of samples
//! (numbers and little-endian f32 bytes), named and positional params, and errors as
//! `INVALID_PARAMS` carrying the C++ message. The last test mounts it in a real runtime.

use polyglot_worker::{Context, Handler, Map, MethodError, Value};

async fn call(method: &str, params: Value) -> Result<Value, MethodError> {
    polyglot_dsp::handler()
        .call(method, params, Context::detached(method))
        .await
}

fn named(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map>(),
    )
}

fn numbers(xs: &[f32]) -> Value {
    Value::Array(xs.iter().map(|&x| Value::from(f64::from(x))).collect())
}

fn le_bytes(xs: &[f32]) -> Value {
    Value::Bytes(xs.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn from_numbers(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {}", v.type_name()))
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn from_le_bytes(v: &Value) -> Vec<f32> {
    v.as_bytes()
        .unwrap_or_else(|| panic!("expected bytes, got {}", v.type_name()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn signal(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect()
}

fn param_of(e: &MethodError) -> Option<&str> {
    e.data.as_ref()?.get("param")?.as_str()
}

#[tokio::test]
async fn fir_answers_in_the_form_the_samples_came_in() {
    let x = signal(3_000, 1);
    let h = signal(33, 2);
    let want = polyglot_dsp::fir(&x, &h).unwrap();

    let out = call(
        "fir",
        named(vec![("samples", numbers(&x)), ("taps", numbers(&h))]),
    )
    .await
    .unwrap();
    assert_eq!(from_numbers(&out), want);

    // Bytes in, bytes out, whatever form the taps take.
    for taps in [le_bytes(&h), numbers(&h)] {
        let out = call("fir", Value::Array(vec![le_bytes(&x), taps]))
            .await
            .unwrap();
        assert_eq!(out, le_bytes(&want));
        assert_eq!(from_le_bytes(&out), want);
    }
}

#[tokio::test]
async fn resample_answers_in_both_forms() {
    let x = signal(4_800, 3);
    let want = polyglot_dsp::resample(&x, 48_000, 44_100).unwrap();
    let positional = call(
        "resample",
        Value::Array(vec![numbers(&x), Value::from(48_000), Value::from(44_100)]),
    )
    .await
    .unwrap();
    assert_eq!(from_numbers(&positional), want);
    let named_bytes = call(
        "resample",
        named(vec![
            ("samples", le_bytes(&x)),
            ("fromRate", Value::from(48_000.0)),
            ("toRate", Value::from(44_100)),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(from_le_bytes(&named_bytes), want);
}

#[tokio::test]
async fn empty_samples_give_empty_results_in_their_form() {
    let out = call("fir", Value::Array(vec![le_bytes(&[]), numbers(&[1.0])]))
        .await
        .unwrap();
    assert_eq!(out, Value::Bytes(vec![]));
    let out = call(
        "resample",
        Value::Array(vec![numbers(&[]), Value::from(8_000), Value::from(16_000)]),
    )
    .await
    .unwrap();
    assert_eq!(out, Value::Array(vec![]));
}

#[tokio::test]
async fn lowpass_taps_come_as_numbers_with_the_window_asked_for() {
    for (window, w) in [
        (None, polyglot_dsp::Window::Blackman),
        (Some("blackman"), polyglot_dsp::Window::Blackman),
        (Some("hamming"), polyglot_dsp::Window::Hamming),
    ] {
        let mut params = vec![
            ("cutoffHz", Value::from(1_000)),
            ("sampleRateHz", Value::from(16_000)),
            ("numTaps", Value::from(21)),
        ];
        if let Some(name) = window {
            params.push(("window", Value::from(name)));
        }
        let out = call("lowpassTaps", named(params)).await.unwrap();
        let want = polyglot_dsp::lowpass_taps(1_000.0, 16_000.0, 21, w).unwrap();
        assert_eq!(from_numbers(&out), want, "{window:?}");
    }
    let e = call(
        "lowpassTaps",
        named(vec![
            ("cutoffHz", Value::from(1_000)),
            ("sampleRateHz", Value::from(16_000)),
            ("numTaps", Value::from(21)),
            ("window", Value::from("kaiser")),
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert_eq!(param_of(&e), Some("window"));
}

#[tokio::test]
async fn cpp_refusals_are_invalid_params_with_the_cpp_message() {
    let cases = [
        (
            "resample",
            Value::Array(vec![numbers(&[1.0]), Value::from(48_000), Value::from(0)]),
            "toRate",
            "to_rate must be a positive whole number of Hz, got 0",
        ),
        (
            "resample",
            Value::Array(vec![le_bytes(&[1.0]), Value::from(-1), Value::from(8_000)]),
            "fromRate",
            "from_rate must be a positive whole number of Hz, got -1",
        ),
        (
            "lowpassTaps",
            Value::Array(vec![Value::from(100), Value::from(8_000), Value::from(0)]),
            "numTaps",
            "num_taps must be at least 1, got 0",
        ),
        (
            "lowpassTaps",
            Value::Array(vec![
                Value::from(5_000),
                Value::from(8_000),
                Value::from(11),
            ]),
            "cutoffHz",
            "cutoff_hz must be below the Nyquist frequency (sample_rate_hz / 2 = 4000 Hz), \
             got 5000",
        ),
        (
            "fir",
            Value::Array(vec![le_bytes(&[1.0]), Value::Array(vec![])]),
            "taps",
            "taps must hold at least one coefficient, got none",
        ),
    ];
    for (method, params, param, message) in cases {
        let e = call(method, params).await.unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMS", "{method}: {e}");
        assert_eq!(e.message, message);
        assert_eq!(param_of(&e), Some(param), "{method}: {message}");
    }
}

#[tokio::test]
async fn a_huge_output_is_refused_through_the_handler_too() {
    let x = vec![0.0f32; 16_385];
    let e = call(
        "resample",
        Value::Array(vec![le_bytes(&x), Value::from(1), Value::from(4_096)]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "INVALID_PARAMS");
    assert_eq!(param_of(&e), Some("samples"));
    assert!(
        e.message
            .starts_with("samples is too long: 16385 samples resampled from 1 Hz"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn malformed_params_are_invalid_params_naming_the_param() {
    let cases = [
        (
            "fir",
            Value::Array(vec![Value::Bytes(vec![0; 6]), numbers(&[1.0])]),
            "fir: `samples` holds 6 bytes, not a whole number of 4-byte little-endian f32 \
             samples",
        ),
        (
            "fir",
            Value::Array(vec![Value::from("abc"), numbers(&[1.0])]),
            "fir: `samples` must be an array of numbers or bytes of little-endian f32, not \
             string",
        ),
        (
            "fir",
            Value::Array(vec![numbers(&[1.0])]),
            "fir: `taps` is required",
        ),
        (
            "resample",
            Value::Array(vec![numbers(&[1.0]), Value::from(44_100.5), Value::from(1)]),
            "resample: `fromRate` must be an integer, not float",
        ),
        (
            "resample",
            named(vec![("samples", numbers(&[1.0])), ("rate", Value::from(1))]),
            "resample: unknown param `rate` (it takes `samples`, `fromRate`, `toRate`)",
        ),
        (
            "lowpassTaps",
            Value::Array(vec![Value::from(1), Value::from(8), Value::from(-3)]),
            "lowpassTaps: `numTaps` must be an integer >= 0, not integer",
        ),
    ];
    for (method, params, message) in cases {
        let e = call(method, params).await.unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMS", "{message}");
        assert_eq!(e.message, message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_call_runs_on_the_blocking_pool_with_the_same_result() {
    let x = signal(200_000, 4);
    let h = signal(64, 5);
    let out = call("fir", Value::Array(vec![le_bytes(&x), le_bytes(&h)]))
        .await
        .unwrap();
    assert_eq!(from_le_bytes(&out), polyglot_dsp::fir(&x, &h).unwrap());
}

#[tokio::test]
async fn describe_reports_the_limits_the_cpp_side_enforces() {
    let d = call("describe", Value::Null).await.unwrap();
    let limits = d.get("limits").unwrap();
    assert_eq!(
        limits.get("maxOutputSamples"),
        Some(&Value::from(polyglot_dsp::MAX_OUTPUT_SAMPLES))
    );
    assert_eq!(
        limits.get("maxTaps"),
        Some(&Value::from(polyglot_dsp::MAX_TAPS))
    );
    assert_eq!(
        limits.get("maxRatioTerm"),
        Some(&Value::from(polyglot_dsp::MAX_RATIO_TERM))
    );
    let h = polyglot_dsp::handler();
    assert_eq!(h.module(), "dsp");
    assert_eq!(h.methods(), ["describe", "fir", "lowpassTaps", "resample"]);
}

/// The handler mounted in a host's runtime answers like any module, in the host's
/// process.
#[tokio::test]
async fn the_handler_mounts_in_a_runtime() {
    let rt = polyglot_core::Runtime::default();
    rt.mount(std::sync::Arc::new(polyglot_dsp::handler()));
    let x = signal(1_000, 6);
    let reply = rt
        .call(
            "dsp",
            "fir",
            Value::Array(vec![le_bytes(&x), numbers(&[0.5, 0.5])]),
        )
        .await
        .unwrap();
    assert_eq!(
        from_le_bytes(&reply.value),
        polyglot_dsp::fir(&x, &[0.5, 0.5]).unwrap()
    );
    match rt
        .call(
            "dsp",
            "resample",
            Value::Array(vec![le_bytes(&x), Value::from(0), Value::from(1)]),
        )
        .await
    {
        Err(polyglot_core::CallError::Remote { code, message, .. }) => {
            assert_eq!(code, "INVALID_PARAMS");
            assert_eq!(
                message,
                "from_rate must be a positive whole number of Hz, got 0"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(rt.module("dsp").unwrap().in_process);
    rt.shutdown().await;
}
