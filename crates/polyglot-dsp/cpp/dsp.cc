#include "polyglot-dsp/cpp/dsp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// The generated half of the bridge: declares zeroed_samples, implemented in Rust.
#include "polyglot-dsp/src/ffi.rs.h"

namespace polyglot {
namespace dsp {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Outputs computed per pass of fir()'s tap loop: 4 KiB of output plus 4 KiB of input
// (and the taps) stay in L1 while every tap sweeps the block.
constexpr std::size_t kFirBlock = 1024;

// Renders a number for a message: up to 15 significant digits, so any decimal a person
// typed with no more digits than that reads back exactly ("24000.0001", not "24000").
template <typename T>
std::string show(T value) {
  std::ostringstream out;
  out.precision(std::numeric_limits<double>::digits10);
  out << value;
  return out.str();
}

[[noreturn]] void invalid(const std::string& message) {
  throw std::invalid_argument(message);
}

// Window weight of tap i of n (n >= 1); see Window in dsp.h.
double window_weight(Window window, std::size_t i, std::size_t n) {
  if (n == 1) {
    return 1.0;
  }
  switch (window) {
    case Window::Hamming:
      return 0.54 - 0.46 * std::cos(2.0 * kPi * static_cast<double>(i) /
                                    static_cast<double>(n - 1));
    case Window::Blackman: {
      const double x = static_cast<double>(i + 1) / static_cast<double>(n + 1);
      return 0.42 - 0.5 * std::cos(2.0 * kPi * x) + 0.08 * std::cos(4.0 * kPi * x);
    }
  }
  return 1.0;  // Unreachable: callers check the window first.
}

// The windowed-sinc low-pass of n taps at fc cycles per sample (0 < fc < 0.5), scaled
// to unity DC gain. Returns an empty vector when the taps sum to nothing (fc so small
// that 2 fc underflows), for the caller to report.
std::vector<double> design_lowpass(double fc, std::size_t n, Window window) {
  std::vector<double> taps(n);
  const double centre = static_cast<double>(n - 1) / 2.0;
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) - centre;
    const double ideal = t == 0.0 ? 2.0 * fc : std::sin(2.0 * kPi * fc * t) / (kPi * t);
    taps[i] = ideal * window_weight(window, i, n);
    sum += taps[i];
  }
  if (!(sum > 0.0) || !std::isfinite(sum)) {
    return {};
  }
  for (double& tap : taps) {
    tap /= sum;
  }
  return taps;
}

bool is_window(Window window) {
  return window == Window::Hamming || window == Window::Blackman;
}

void check_rate(const char* name, std::int64_t rate) {
  if (rate <= 0) {
    invalid(std::string(name) + " must be a positive whole number of Hz, got " + show(rate));
  }
}

// ceil(n * up / down), or kMaxOutputSamples + 1 when that is larger; never overflows.
std::size_t output_length(std::size_t n, std::size_t up, std::size_t down) {
  const std::size_t whole = n / down;
  const std::size_t rest = n % down;
  if (whole > kMaxOutputSamples / up) {
    return kMaxOutputSamples + 1;
  }
  // rest * up < down * up <= kMaxRatioTerm^2: no overflow.
  const std::size_t length = whole * up + (rest * up + down - 1) / down;
  return std::min(length, kMaxOutputSamples + 1);
}

}  // namespace

rust::Vec<float> fir(rust::Slice<const float> samples, rust::Slice<const float> taps) {
  if (taps.empty()) {
    invalid("taps must hold at least one coefficient, got none");
  }
  const std::size_t n = samples.size();
  const std::size_t num_taps = taps.size();
  rust::Vec<float> out = zeroed_samples(n);
  if (n == 0) {
    return out;
  }
  const float* x = samples.data();
  const float* h = taps.data();
  float* y = out.data();
  // The direct-form sums, a block of outputs at a time: for each tap k, y[i] +=
  // h[k] * x[i - k] across the block. Each y[i] still adds its terms in order of k from
  // zero, exactly as the textbook loop over k would, but the inner loop runs over i,
  // where the compiler can use vector instructions without reordering any sum.
  for (std::size_t start = 0; start < n; start += kFirBlock) {
    const std::size_t end = std::min(n, start + kFirBlock);
    for (std::size_t k = 0; k < num_taps && k < end; ++k) {
      const float hk = h[k];
      for (std::size_t i = std::max(start, k); i < end; ++i) {
        y[i] += hk * x[i - k];
      }
    }
  }
  return out;
}

rust::Vec<float> lowpass_taps(double cutoff_hz, double sample_rate_hz, std::size_t num_taps,
                              Window window) {
  if (!(sample_rate_hz > 0.0) || !std::isfinite(sample_rate_hz)) {
    invalid("sample_rate_hz must be a positive, finite number of Hz, got " +
            show(sample_rate_hz));
  }
  if (!(cutoff_hz > 0.0)) {
    invalid("cutoff_hz must be positive, got " + show(cutoff_hz));
  }
  const double nyquist = sample_rate_hz / 2.0;
  if (!(cutoff_hz < nyquist)) {
    invalid("cutoff_hz must be below the Nyquist frequency (sample_rate_hz / 2 = " +
            show(nyquist) + " Hz), got " + show(cutoff_hz));
  }
  if (num_taps == 0) {
    invalid("num_taps must be at least 1, got 0");
  }
  if (num_taps > kMaxTaps) {
    invalid("num_taps must be at most " + show(kMaxTaps) + ", got " + show(num_taps));
  }
  if (!is_window(window)) {
    invalid("window must be Hamming or Blackman, got the value " +
            show(static_cast<unsigned>(window)));
  }
  const std::vector<double> taps = design_lowpass(cutoff_hz / sample_rate_hz, num_taps, window);
  if (taps.empty()) {
    invalid("cutoff_hz is too small a fraction of sample_rate_hz (" + show(cutoff_hz) +
            " / " + show(sample_rate_hz) + ") to design a filter in double precision");
  }
  rust::Vec<float> out = zeroed_samples(num_taps);
  std::transform(taps.begin(), taps.end(), out.data(),
                 [](double tap) { return static_cast<float>(tap); });
  return out;
}

rust::Vec<float> resample(rust::Slice<const float> samples, std::int64_t from_rate,
                          std::int64_t to_rate) {
  check_rate("from_rate", from_rate);
  check_rate("to_rate", to_rate);
  const std::int64_t divisor = std::gcd(from_rate, to_rate);
  const std::int64_t up64 = to_rate / divisor;
  const std::int64_t down64 = from_rate / divisor;
  if (up64 > kMaxRatioTerm || down64 > kMaxRatioTerm) {
    invalid("from_rate and to_rate reduce to the ratio " + show(up64) + " / " + show(down64) +
            " (to / from in lowest terms); terms above " + show(kMaxRatioTerm) +
            " would need an impractically long filter, so pick rates with a larger "
            "common divisor");
  }
  const auto up = static_cast<std::size_t>(up64);
  const auto down = static_cast<std::size_t>(down64);
  const std::size_t n = samples.size();
  const std::size_t out_len = output_length(n, up, down);
  if (out_len > kMaxOutputSamples) {
    invalid("samples is too long: " + show(n) + " samples resampled from " + show(from_rate) +
            " Hz to " + show(to_rate) + " Hz would give more than " + show(kMaxOutputSamples) +
            " output samples, the limit of one call; resample the signal in pieces");
  }
  rust::Vec<float> out = zeroed_samples(out_len);
  if (out_len == 0) {
    return out;
  }
  const float* x = samples.data();
  float* y = out.data();
  if (up == 1 && down == 1) {
    std::copy(x, x + n, y);
    return out;
  }

  // The anti-aliasing filter at the upsampled rate, split into its up phases: phase p
  // holds taps p, p + up, p + 2 up, ..., the ones that meet real (not inserted) samples
  // when the output instant falls p samples past an input sample.
  const std::size_t num_taps = 2 * kZeroCrossings * std::max(up, down) + 1;
  const double fc = kRolloff / (2.0 * static_cast<double>(std::max(up, down)));
  const std::vector<double> h = design_lowpass(fc, num_taps, Window::Blackman);
  const std::size_t per_phase = (num_taps + up - 1) / up;
  std::vector<float> phases(up * per_phase, 0.0f);
  for (std::size_t k = 0; k < num_taps; ++k) {
    // Times up: inserting up - 1 zeros divides the signal's level by up.
    phases[(k % up) * per_phase + k / up] =
        static_cast<float>(h[k] * static_cast<double>(up));
  }

  // Output j is the filter centred on upsampled instant j * down: t = j * down + delay,
  // where delay = (num_taps - 1) / 2 is the filter's group delay. Tap k meets the
  // upsampled sample t - k, a real one when (t - k) % up == 0, i.e. k = p + m * up with
  // p = t % up, and then it is input sample t / up - m.
  const std::size_t delay = (num_taps - 1) / 2;
  for (std::size_t j = 0; j < out_len; ++j) {
    const std::size_t t = j * down + delay;
    const std::size_t base = t / up;
    const float* phase = phases.data() + (t % up) * per_phase;
    // Valid m: base - m in [0, n), m in [0, per_phase).
    const std::size_t m_first = base >= n ? base - (n - 1) : 0;
    const std::size_t m_end = std::min(per_phase, base + 1);
    // In double: a phase can hold thousands of taps (262145 when down is 4096), more
    // than an f32 sum carries without drifting; each float product is exact in double.
    double acc = 0.0;
    for (std::size_t m = m_first; m < m_end; ++m) {
      acc += static_cast<double>(phase[m]) * static_cast<double>(x[base - m]);
    }
    y[j] = static_cast<float>(acc);
  }
  return out;
}

std::size_t max_output_samples() noexcept { return kMaxOutputSamples; }
std::size_t max_taps() noexcept { return kMaxTaps; }
std::int64_t max_ratio_term() noexcept { return kMaxRatioTerm; }

}  // namespace dsp
}  // namespace polyglot
