//! Rational resampling: [`resample`] and its limits.

use crate::error::Error;
use crate::ffi;

/// The longest output [`resample`] produces: 64 Mi samples (256 MiB of `f32`). Bounds the
/// memory one call can ask for; a longer signal is resampled in pieces.
/// (`kMaxOutputSamples` in `cpp/dsp.h`.)
pub const MAX_OUTPUT_SAMPLES: usize = 64 * 1024 * 1024;

/// The largest term of `to_rate / from_rate` in lowest terms. The anti-aliasing filter
/// has `64 · max(up, down) + 1` taps, so a ratio like 48001 / 44100 would need millions;
/// 4096 admits every ratio between the usual audio rates (48000 / 44100 = 160 / 147,
/// 44100 / 8000 = 441 / 80) with a filter of at most 1 MiB. (`kMaxRatioTerm` in
/// `cpp/dsp.h`.)
pub const MAX_RATIO_TERM: i64 = 4096;

/// Resamples `samples` from `from_rate` to `to_rate` (Hz) with a polyphase FIR whose
/// low-pass (Blackman window, cutoff at 0.9 of the lower Nyquist frequency) keeps
/// anything above the new Nyquist frequency from aliasing.
///
/// The output has `⌈n · to_rate / from_rate⌉` samples, one for each instant of the new
/// clock within the input's duration; output sample `j` sits at input time
/// `j · from_rate / to_rate` (the filter's delay is compensated). Samples beyond either
/// end of the input count as zero, so the first and last few outputs fade. Equal rates
/// return the samples unchanged.
///
/// The rates are `i64` so that every check, including "not positive", is made in one
/// place, the C++ routine, and reads the same from Rust, from a handler call and from
/// C++.
///
/// ```
/// let tone: Vec<f32> = (0..480).map(|i| (i as f32 * 0.1).sin()).collect();
/// let out = polyglot_dsp::resample(&tone, 48_000, 44_100)?;
/// assert_eq!(out.len(), 441);
/// # Ok::<(), polyglot_dsp::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for `from_rate` or `to_rate` when it is not positive, or
/// when their ratio in lowest terms has a term above [`MAX_RATIO_TERM`]; for `samples`
/// when the output would be longer than [`MAX_OUTPUT_SAMPLES`].
pub fn resample(samples: &[f32], from_rate: i64, to_rate: i64) -> Result<Vec<f32>, Error> {
    ffi::resample(samples, from_rate, to_rate)
        .map_err(|e| Error::from_cxx("resample", &["samples", "from_rate", "to_rate"], e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_match_the_cpp_ones() {
        assert_eq!(MAX_OUTPUT_SAMPLES, ffi::max_output_samples());
        assert_eq!(MAX_RATIO_TERM, ffi::max_ratio_term());
    }
}
