// signal-cpp's signal processing over float32 samples: pure functions, no protocol. The
// exact definitions are in the module's README.md. Sums are taken in double precision and
// each output is rounded to float32 once (a value beyond float32's range becomes
// +/-infinity, never undefined behaviour).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace signal_cpp {

/// Called every kCheckEvery outputs of a long computation; it may throw to stop it (the
/// worker throws when the host cancelled the call).
using Checkpoint = std::function<void()>;

/// How many outputs are computed between two checkpoints: often enough that a cancelled
/// call stops within milliseconds, rarely enough to cost nothing.
inline constexpr std::size_t kCheckEvery = 1 << 16;

/// The most samples resample() returns: 16 Mi float32 samples are 64 MiB, the default
/// frame limit, so a larger result could not be sent anyway.
inline constexpr std::size_t kMaxOutputSamples = std::size_t{1} << 24;

/// The largest sample rate resample() takes, which keeps its index arithmetic in 64 bits.
inline constexpr std::uint64_t kMaxRate = 1'000'000'000;

/// Rounds a double to float32: beyond float32's range it is +/-infinity.
float to_float(double v) noexcept;

/// Direct-form FIR filter: y[n] = sum over k < taps.size() of taps[k] * x[n-k], with
/// x[m] = 0 for m < 0. The output has as many samples as the input. `taps` is not empty.
std::vector<float> fir(const std::vector<float>& x, const std::vector<float>& taps,
                       const Checkpoint& checkpoint = {});

/// Trailing moving average: y[n] = mean of x[n-m+1..n] with m = min(n+1, window), so the
/// first outputs average the samples there are. `window` >= 1.
std::vector<float> moving_average(const std::vector<float>& x, std::size_t window,
                                  const Checkpoint& checkpoint = {});

/// Root mean square: sqrt(sum of x[n]^2 / N); 0 for no samples.
double rms(const std::vector<float>& x);

/// How many samples resample() returns for `n` samples: ceil(n * to_rate / from_rate),
/// or nothing when that is more than kMaxOutputSamples. Rates are in 1..kMaxRate.
std::optional<std::size_t> resampled_length(std::size_t n, std::uint64_t from_rate,
                                            std::uint64_t to_rate) noexcept;

/// Linear-interpolation resampling: y[m] = x(m * from_rate / to_rate), where x(t) between
/// two samples is the straight line through them, and t past the last sample holds the
/// last sample. Output length: resampled_length(). Rates are in 1..kMaxRate and the output
/// length must be within kMaxOutputSamples (callers check with resampled_length()).
std::vector<float> resample(const std::vector<float>& x, std::uint64_t from_rate,
                            std::uint64_t to_rate, const Checkpoint& checkpoint = {});

}  // namespace signal_cpp
