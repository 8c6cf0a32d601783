//! FIR filtering and low-pass design: [`fir`], [`lowpass_taps`], [`Window`].

use crate::error::Error;
use crate::ffi;

/// The most taps [`lowpass_taps`] designs: 1 Mi (4 MiB). Far beyond any useful FIR; it
/// only bounds the allocation one call can ask for. (`kMaxTaps` in `cpp/dsp.h`.)
pub const MAX_TAPS: usize = 1 << 20;

/// The window that tapers a low-pass filter's truncated sinc (`N` taps, tap `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// `0.54 - 0.46 cos(2πi / (N - 1))`: the narrower transition band (about `3.3 / N`
    /// of the sample rate), stop band below about -53 dB.
    Hamming,
    /// `0.42 - 0.5 cos(2πx) + 0.08 cos(4πx)`, `x = (i + 1) / (N + 1)`: the symmetric
    /// Blackman window with its zero end points just outside the filter. Wider
    /// transition band (about `5.5 / N`), stop band below about -74 dB.
    #[default]
    Blackman,
}

impl Window {
    fn to_ffi(self) -> ffi::Window {
        match self {
            Window::Hamming => ffi::Window::Hamming,
            Window::Blackman => ffi::Window::Blackman,
        }
    }
}

/// Filters `samples` with the FIR `taps`: `y[n] = Σ taps[k] · samples[n - k]`, direct
/// form, samples before the first taken as zero. The output has the input's length.
///
/// ```
/// let smoothed = polyglot_dsp::fir(&[1.0, 0.0, 0.0, 3.0], &[0.5, 0.5])?;
/// assert_eq!(smoothed, [0.5, 0.5, 0.0, 1.5]);
/// # Ok::<(), polyglot_dsp::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for `taps` when it is empty.
pub fn fir(samples: &[f32], taps: &[f32]) -> Result<Vec<f32>, Error> {
    ffi::fir(samples, taps).map_err(|e| Error::from_cxx("fir", &["samples", "taps"], e))
}

/// A linear-phase low-pass FIR of `num_taps` taps with its cutoff (the -6 dB point) at
/// `cutoff_hz`: a sinc truncated to `num_taps` taps, tapered by `window`, scaled so the
/// taps sum to 1 (unity gain at DC).
///
/// ```
/// use polyglot_dsp::{lowpass_taps, Window};
///
/// let taps = lowpass_taps(1_000.0, 48_000.0, 63, Window::Blackman)?;
/// assert_eq!(taps.len(), 63);
/// assert!((taps.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// # Ok::<(), polyglot_dsp::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for `sample_rate_hz` when it is not positive and finite,
/// for `cutoff_hz` when it is not positive or not below `sample_rate_hz / 2`, and for
/// `num_taps` when it is 0 or above [`MAX_TAPS`].
pub fn lowpass_taps(
    cutoff_hz: f64,
    sample_rate_hz: f64,
    num_taps: usize,
    window: Window,
) -> Result<Vec<f32>, Error> {
    ffi::lowpass_taps(cutoff_hz, sample_rate_hz, num_taps, window.to_ffi()).map_err(|e| {
        Error::from_cxx(
            "lowpass_taps",
            &["cutoff_hz", "sample_rate_hz", "num_taps", "window"],
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_matches_the_cpp_one() {
        assert_eq!(MAX_TAPS, ffi::max_taps());
        assert!(lowpass_taps(10.0, 100.0, MAX_TAPS + 1, Window::Hamming).is_err());
    }

    #[test]
    fn errors_name_the_function_and_the_argument() {
        let e = lowpass_taps(10.0, 100.0, 0, Window::Hamming).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    function: "lowpass_taps",
                    param: "num_taps",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "lowpass_taps: invalid `num_taps`");
        assert_eq!(e.message(), "num_taps must be at least 1, got 0");
        let source = std::error::Error::source(&e).expect("the C++ exception");
        assert_eq!(source.to_string(), e.message());
    }
}
