//! Signal processing written in C++ and called from Rust through `cxx`: a FIR filter, a
//! windowed-sinc low-pass design and a rational resampler, on `f32` samples.
//!
//! Usable two ways:
//! - as a plain Rust API ([`fir`], [`lowpass_taps`], [`resample`]), whose errors name
//!   the function and the argument the C++ routine refused;
//! - as a [`polyglot_worker::Handler`], [`handler()`], that a host mounts in-process
//!   with `Runtime::mount`: no worker process, the C++ runs in the host's own process.
//!
//! ```
//! use polyglot_dsp::{fir, lowpass_taps, resample, Window};
//!
//! let taps = lowpass_taps(4_000.0, 48_000.0, 101, Window::Blackman)?;
//! let noisy: Vec<f32> = (0..4_800).map(|i| (i as f32 * 0.05).sin()).collect();
//! let smooth = fir(&noisy, &taps)?;
//! let cd_rate = resample(&smooth, 48_000, 44_100)?;
//! assert_eq!(cd_rate.len(), 4_410);
//!
//! let err = resample(&noisy, 48_000, 0).unwrap_err();
//! assert_eq!(err.to_string(), "resample: invalid `to_rate`");
//! assert_eq!(err.message(), "to_rate must be a positive whole number of Hz, got 0");
//! # Ok::<(), polyglot_dsp::Error>(())
//! ```
//!
//! # Layout
//! - `ffi`: the `cxx` bridge to `cpp/dsp.h`, the only module allowed `unsafe` code.
//! - `filter`: [`fir`], [`lowpass_taps`], [`Window`], [`MAX_TAPS`].
//! - `resample`: [`resample`], [`MAX_OUTPUT_SAMPLES`], [`MAX_RATIO_TERM`].
//! - `error`: [`Error`], a C++ exception read into the function and argument at fault.
//! - `handler`: [`handler()`], the methods `fir`, `lowpassTaps`, `resample`, `describe`.
//! - `params`: reading a handler's params, named or positional.
//! - `samples`: a signal's two wire forms, numbers or little-endian `f32` bytes.
//! - `blocking`: running the heavier calls off the async runtime.

mod blocking;
mod error;
mod ffi;
mod filter;
mod handler;
mod params;
mod resample;
mod samples;

pub use error::Error;
pub use filter::{fir, lowpass_taps, Window, MAX_TAPS};
pub use handler::{handler, worker, MAX_CONCURRENCY, MODULE};
pub use resample::{resample, MAX_OUTPUT_SAMPLES, MAX_RATIO_TERM};

/// The README's Rust example, run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
