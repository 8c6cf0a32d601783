//! The `cxx` bridge to the C++ routines in `cpp/dsp.h`, and the one Rust function the C++
//! side calls back: [`zeroed_samples`], which allocates each output buffer.
//!
//! `cxx` checks both halves against each other: the C++ it generates from this module
//! declares every function with the signature written here and `static_assert`s the
//! `Window` enum against the one in `dsp.h`, so a mismatch fails the build instead of
//! corrupting memory. Each function declared with `Result` is called inside a C++
//! `try`; a `std::exception` it throws comes back as `Err(cxx::Exception)` carrying the
//! exception's `what()`, and never unwinds into Rust.

pub(crate) use bridge::{
    fir, lowpass_taps, max_output_samples, max_ratio_term, max_taps, resample, Window,
};

// The bridge macro expands into FFI glue that is `unsafe` by nature: `extern "C"`
// declarations of the C++ shims and calls through them. The allowance is scoped to this
// module so that the rest of the crate stays under the workspace's `unsafe_code = "deny"`;
// the only `unsafe` written by hand is the `extern "C++"` block's promise below.
#[allow(unsafe_code)]
#[cxx::bridge(namespace = "polyglot::dsp")]
mod bridge {
    /// The window of a low-pass design; `Window` in `dsp.h`.
    #[repr(u8)]
    enum Window {
        Hamming = 0,
        Blackman = 1,
    }

    extern "Rust" {
        fn zeroed_samples(len: usize) -> Vec<f32>;
    }

    // SAFETY: these declarations match `cpp/dsp.h` (the generated C++ would not compile
    // against it otherwise). The functions only read their slices, within their
    // lengths, during the call, keep no pointer to them afterwards, and are safe to call
    // from any thread at once: they share no state.
    unsafe extern "C++" {
        include!("polyglot-dsp/cpp/dsp.h");

        type Window;

        fn fir(samples: &[f32], taps: &[f32]) -> Result<Vec<f32>>;
        fn lowpass_taps(
            cutoff_hz: f64,
            sample_rate_hz: f64,
            num_taps: usize,
            window: Window,
        ) -> Result<Vec<f32>>;
        fn resample(samples: &[f32], from_rate: i64, to_rate: i64) -> Result<Vec<f32>>;

        fn max_output_samples() -> usize;
        fn max_taps() -> usize;
        fn max_ratio_term() -> i64;
    }
}

/// A buffer of `len` zeros, allocated once at its final length by the Rust allocator so
/// that the C++ side can fill it in place and hand it back as a `Vec<f32>` with no copy.
///
/// C++ calls it only after checking `len` against the limits in `dsp.h` (or when `len`
/// is the length of a slice that already exists), so it cannot be asked for an absurd
/// allocation. Zeroed rather than uninitialised: a `Vec` must not expose uninitialised
/// floats, and large zeroed allocations come from the OS already zero.
fn zeroed_samples(len: usize) -> Vec<f32> {
    vec![0.0; len]
}
