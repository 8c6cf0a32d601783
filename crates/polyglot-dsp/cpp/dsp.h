// Signal processing on f32 samples: a FIR filter, a windowed-sinc low-pass design and a
// rational resampler. Called from Rust through the cxx bridge in src/ffi.rs.
//
// Samples come in as rust::Slice<const float>, a view of the caller's Rust slice (no
// copy). Results go out as rust::Vec<float>: the buffer is allocated once, at its final
// length, by the Rust allocator (zeroed_samples in src/ffi.rs) and filled in place, so
// the Rust caller receives its Vec<f32> without a copy.
//
// Every function checks its arguments before doing any work and throws
// std::invalid_argument when one is unusable. The message begins with the name of the
// argument at fault (`num_taps must be at least 1, got 0`); the Rust side reads that
// name into its error. Invalid arguments are reported whatever the input's length; a
// valid call on empty input returns empty output.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rust/cxx.h"

namespace polyglot {
namespace dsp {

// The window that tapers a low-pass filter's truncated sinc.
enum class Window : std::uint8_t {
  // 0.54 - 0.46 cos(2 pi i / (N - 1)). Narrower transition band (about 3.3 / N of the
  // sample rate), first side lobe at -43 dB, stop band below about -53 dB.
  Hamming = 0,
  // 0.42 - 0.5 cos(2 pi x) + 0.08 cos(4 pi x), x = (i + 1) / (N + 1): the symmetric
  // Blackman window whose zero end points lie just outside the filter, so no tap is
  // wasted on a zero. Wider transition band (about 5.5 / N), stop band below about
  // -74 dB.
  Blackman = 1,
};

// The longest output resample() produces: 64 Mi samples (256 MiB of f32). Bounds the
// memory one call can ask for; a longer signal is resampled in pieces.
constexpr std::size_t kMaxOutputSamples = std::size_t{64} * 1024 * 1024;

// The most taps lowpass_taps() designs: 1 Mi (4 MiB). Far beyond any useful FIR; it only
// bounds the allocation one call can ask for.
constexpr std::size_t kMaxTaps = std::size_t{1} << 20;

// The largest term of a resampling ratio in lowest terms (to_rate / from_rate = up /
// down). The anti-aliasing filter has 2 * kZeroCrossings * max(up, down) + 1 taps, so a
// ratio like 48001 / 44100 would need millions of taps; 4096 admits every ratio between
// the usual audio rates (48000 / 44100 = 160 / 147, 96000 / 44100 = 320 / 147,
// 44100 / 8000 = 441 / 80) with a filter of at most 262145 taps (1 MiB).
constexpr std::int64_t kMaxRatioTerm = 4096;

// Zero crossings of the resampler's sinc kept on each side of its centre. The Blackman
// window's transition band is about 5.5 / N wide; with 32 crossings and kRolloff it
// ends just below the folding frequency, so nothing aliases above about -74 dB, and the
// pass band is flat to about 80% of the lower Nyquist frequency. Each output sample
// costs about 2 * 32 * max(1, down / up) multiply-adds.
constexpr std::size_t kZeroCrossings = 32;

// The resampler's cutoff (the filter's -6 dB point) as a fraction of the lower of the
// two Nyquist frequencies. Below 1 so that the transition band, not the pass band,
// meets the folding frequency.
constexpr double kRolloff = 0.9;

// y[n] = sum over k of taps[k] * samples[n - k], with samples before the first taken as
// zero (zero initial state). The output has the input's length; each sum is formed in
// order of k, in f32.
//
// Throws std::invalid_argument when taps is empty.
rust::Vec<float> fir(rust::Slice<const float> samples, rust::Slice<const float> taps);

// A linear-phase low-pass FIR of num_taps taps: the ideal response
// 2 fc sinc(2 fc (i - (N - 1) / 2)), fc = cutoff_hz / sample_rate_hz, times the
// window, scaled so that the taps sum to 1 (unity gain at DC). Computed in double,
// returned as float.
//
// Throws std::invalid_argument when sample_rate_hz is not positive and finite, when
// cutoff_hz is not positive or not below the Nyquist frequency (sample_rate_hz / 2),
// when num_taps is 0 or above kMaxTaps, or when window is not a Window.
rust::Vec<float> lowpass_taps(double cutoff_hz, double sample_rate_hz, std::size_t num_taps,
                              Window window);

// Resamples from from_rate to to_rate (Hz) with a polyphase FIR: conceptually, insert
// up - 1 zeros between samples, low-pass at kRolloff times the lower Nyquist frequency
// (Blackman window, 2 * kZeroCrossings * max(up, down) + 1 taps, gain up), keep every
// down-th sample; only the products with non-inserted samples are computed. The
// filter's delay is compensated, so output sample j sits at input time j * from / to;
// samples outside the input are taken as zero. Each output is summed in double: a phase
// can hold thousands of taps when down is large.
//
// The output has ceil(n * to_rate / from_rate) samples: one for each instant of the
// output clock within the input's duration. Equal rates return the samples unchanged.
//
// Throws std::invalid_argument when a rate is not positive, when the ratio in lowest
// terms has a term above kMaxRatioTerm, or when the output would be longer than
// kMaxOutputSamples.
rust::Vec<float> resample(rust::Slice<const float> samples, std::int64_t from_rate,
                          std::int64_t to_rate);

// The limits above, for the Rust side to check its copies of them against.
std::size_t max_output_samples() noexcept;
std::size_t max_taps() noexcept;
std::int64_t max_ratio_term() noexcept;

}  // namespace dsp
}  // namespace polyglot
