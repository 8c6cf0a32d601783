//! The `dsp` handler: `fir`, `lowpassTaps`, `resample` and `describe`. Params and results
//! are described in the crate README.

use polyglot_worker::{Map, MethodError, MethodResult, Value, Worker};

use crate::blocking;
use crate::error::Error;
use crate::ffi;
use crate::filter::{fir, lowpass_taps, Window};
use crate::params::{invalid, Params};
use crate::resample::resample;
use crate::samples::{to_value, Form, Signal};

/// The module name [`handler()`] serves under.
pub const MODULE: &str = "dsp";

/// How many calls the handler takes at once. The work is CPU-bound and the larger calls
/// run on tokio's blocking pool, so calls beyond the core count mostly queue; a few more
/// than a large machine's cores keep every core busy while other calls' params are read
/// and their answers written.
pub const MAX_CONCURRENCY: u32 = 16;

/// Multiply-adds the resampler spends per input sample at the usual ratios (its filter
/// keeps 32 zero crossings each side), for deciding where a call runs.
const RESAMPLE_WORK_PER_SAMPLE: usize = 64;

/// Multiply-adds' worth of work per designed tap (a sine, a cosine or two, a division).
const DESIGN_WORK_PER_TAP: usize = 32;

/// The `dsp` handler, for a host to mount in-process (`Runtime::mount`) or to serve.
///
/// ```
/// use polyglot_worker::{Context, Handler, Value};
///
/// let dsp = polyglot_dsp::handler();
/// let params = Value::Array(vec![
///     Value::Array(vec![Value::from(1.0), Value::from(0.0), Value::from(0.0)]),
///     Value::Array(vec![Value::from(0.5), Value::from(0.25)]),
/// ]);
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let out = runtime.block_on(dsp.call("fir", params, Context::detached("fir"))).unwrap();
/// assert_eq!(out.to_string(), "[0.5,0.25,0.0]");
/// ```
pub fn handler() -> Worker {
    worker(MODULE)
}

/// The `dsp` handler under another module name (a worker process serves under its
/// manifest's name).
pub fn worker(module: impl Into<String>) -> Worker {
    Worker::new(module, env!("CARGO_PKG_VERSION"))
        .max_concurrency(MAX_CONCURRENCY)
        .method("fir", |p: Value, _| fir_method(p))
        .method("lowpassTaps", |p: Value, _| lowpass_taps_method(p))
        .method("resample", |p: Value, _| resample_method(p))
        .method("describe", |_: Value, _| async { Ok(describe()) })
}

async fn fir_method(params: Value) -> MethodResult {
    let mut p = Params::new("fir", &["samples", "taps"], params)?;
    let samples = Signal::from_value(p.method(), "samples", p.required("samples")?)?;
    let taps = Signal::from_value(p.method(), "taps", p.required("taps")?)?;
    let cost = samples.len().saturating_mul(taps.len());
    blocking::run(cost, move || {
        let out = fir(&samples.as_f32(), &taps.as_f32()).map_err(method_error)?;
        Ok(to_value(&out, samples.form()))
    })
    .await?
}

async fn lowpass_taps_method(params: Value) -> MethodResult {
    let mut p = Params::new(
        "lowpassTaps",
        &["cutoffHz", "sampleRateHz", "numTaps", "window"],
        params,
    )?;
    let cutoff_hz = p.f64("cutoffHz")?;
    let sample_rate_hz = p.f64("sampleRateHz")?;
    let num_taps = p.usize("numTaps")?;
    let window = match p.opt_text("window")?.as_deref() {
        None | Some("blackman") => Window::Blackman,
        Some("hamming") => Window::Hamming,
        Some(other) => {
            return Err(invalid(
                p.method(),
                "window",
                format!("must be \"blackman\" or \"hamming\", not {other:?}"),
            ))
        }
    };
    let cost = num_taps.saturating_mul(DESIGN_WORK_PER_TAP);
    blocking::run(cost, move || {
        let taps =
            lowpass_taps(cutoff_hz, sample_rate_hz, num_taps, window).map_err(method_error)?;
        Ok(to_value(&taps, Form::Numbers))
    })
    .await?
}

async fn resample_method(params: Value) -> MethodResult {
    let mut p = Params::new("resample", &["samples", "fromRate", "toRate"], params)?;
    let samples = Signal::from_value(p.method(), "samples", p.required("samples")?)?;
    let from_rate = p.i64("fromRate")?;
    let to_rate = p.i64("toRate")?;
    let cost = samples.len().saturating_mul(RESAMPLE_WORK_PER_SAMPLE);
    blocking::run(cost, move || {
        let out = resample(&samples.as_f32(), from_rate, to_rate).map_err(method_error)?;
        Ok(to_value(&out, samples.form()))
    })
    .await?
}

/// The limits and choices a caller may want to know before calling. The limits are
/// read from the C++ side, which enforces them.
fn describe() -> Value {
    let mut limits = Map::new();
    limits.insert(
        "maxOutputSamples".into(),
        Value::from(ffi::max_output_samples()),
    );
    limits.insert("maxTaps".into(), Value::from(ffi::max_taps()));
    limits.insert("maxRatioTerm".into(), Value::from(ffi::max_ratio_term()));
    let mut d = Map::new();
    d.insert("limits".into(), Value::Map(limits));
    d.insert(
        "windows".into(),
        Value::Array(vec![Value::from("blackman"), Value::from("hamming")]),
    );
    d.insert("defaultWindow".into(), Value::from("blackman"));
    d.insert(
        "sampleForms".into(),
        Value::Array(vec![Value::from("numbers"), Value::from("f32le bytes")]),
    );
    Value::Map(d)
}

/// An [`Error`] as the handler answers it: `INVALID_PARAMS` with the C++ message and
/// `data.param` naming the param as the caller spelled it; `INTERNAL` for a failure no
/// argument explains.
fn method_error(e: Error) -> MethodError {
    match &e {
        Error::InvalidArgument { param, .. } => {
            let mut data = Map::new();
            data.insert("param".into(), Value::from(wire_name(param)));
            MethodError::invalid_params(e.message()).with_data(Value::Map(data))
        }
        _ => MethodError::internal(format!("{e}: {}", e.message())),
    }
}

/// The handler's name for a param of the Rust and C++ functions.
fn wire_name(param: &str) -> &str {
    match param {
        "cutoff_hz" => "cutoffHz",
        "sample_rate_hz" => "sampleRateHz",
        "num_taps" => "numTaps",
        "from_rate" => "fromRate",
        "to_rate" => "toRate",
        other => other,
    }
}
