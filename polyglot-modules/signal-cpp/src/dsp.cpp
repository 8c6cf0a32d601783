// signal-cpp's signal processing (see dsp.hpp and README.md).
#include "dsp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace signal_cpp {

namespace {

void check(const Checkpoint& checkpoint, std::size_t n) {
    if (checkpoint && n % kCheckEvery == 0) checkpoint();
}

}  // namespace

float to_float(double v) noexcept {
    constexpr double kMax = std::numeric_limits<float>::max();
    if (v > kMax) return std::numeric_limits<float>::infinity();
    if (v < -kMax) return -std::numeric_limits<float>::infinity();
    return static_cast<float>(v);  // in range, or NaN: defined
}

std::vector<float> fir(const std::vector<float>& x, const std::vector<float>& taps,
                       const Checkpoint& checkpoint) {
    if (taps.empty()) throw std::invalid_argument("fir needs at least one tap");
    std::vector<float> y(x.size());
    for (std::size_t n = 0; n < x.size(); ++n) {
        check(checkpoint, n);
        const std::size_t k_end = std::min(taps.size(), n + 1);
        double acc = 0.0;
        for (std::size_t k = 0; k < k_end; ++k) {
            acc += static_cast<double>(taps[k]) * static_cast<double>(x[n - k]);
        }
        y[n] = to_float(acc);
    }
    return y;
}

std::vector<float> moving_average(const std::vector<float>& x, std::size_t window,
                                  const Checkpoint& checkpoint) {
    if (window == 0) throw std::invalid_argument("the moving average window is at least 1");
    const std::size_t n_total = x.size();
    window = std::min(window, std::max<std::size_t>(n_total, 1));
    std::vector<float> y(n_total);
    // Blocks of `window` samples. A full window ending at n is either the block of n up to
    // n (a prefix sum) or the tail of the previous block plus that prefix: every sum is
    // taken over samples inside the window only. (A running sum that adds the newest and
    // subtracts the oldest would keep the rounding error of large values long gone, and
    // an infinity that left the window would still poison it.)
    std::vector<double> tail;  // tail[i]: sum of the previous block from its i-th sample on
    for (std::size_t start = 0; start < n_total; start += window) {
        const std::size_t end = std::min(start + window, n_total);
        double prefix = 0.0;
        for (std::size_t n = start; n < end; ++n) {
            check(checkpoint, n);
            prefix += static_cast<double>(x[n]);
            if (start == 0) {  // the first outputs average the samples there are
                y[n] = to_float(prefix / static_cast<double>(n + 1));
                continue;
            }
            const std::size_t first = n + 1 - window;  // in the previous block, or `start`
            const double sum = first == start ? prefix : tail[first - (start - window)] + prefix;
            y[n] = to_float(sum / static_cast<double>(window));
        }
        tail.assign(end - start, 0.0);
        double acc = 0.0;
        for (std::size_t i = end; i > start; --i) {
            acc += static_cast<double>(x[i - 1]);
            tail[i - 1 - start] = acc;
        }
    }
    return y;
}

double rms(const std::vector<float>& x) {
    if (x.empty()) return 0.0;
    double acc = 0.0;  // float32 squares (at most ~1.2e77) cannot overflow a double sum
    for (const float v : x) acc += static_cast<double>(v) * static_cast<double>(v);
    return std::sqrt(acc / static_cast<double>(x.size()));
}

std::optional<std::size_t> resampled_length(std::size_t n, std::uint64_t from_rate,
                                            std::uint64_t to_rate) noexcept {
    if (from_rate == 0 || to_rate == 0 || from_rate > kMaxRate || to_rate > kMaxRate) {
        return std::nullopt;
    }
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(n), to_rate, &product)) {
        return std::nullopt;
    }
    const std::uint64_t m = product / from_rate + (product % from_rate != 0 ? 1 : 0);
    if (m > kMaxOutputSamples) return std::nullopt;
    return static_cast<std::size_t>(m);
}

std::vector<float> resample(const std::vector<float>& x, std::uint64_t from_rate,
                            std::uint64_t to_rate, const Checkpoint& checkpoint) {
    const auto length = resampled_length(x.size(), from_rate, to_rate);
    if (!length) throw std::invalid_argument("the resampled signal would be too long");
    std::vector<float> y(*length);
    for (std::size_t m = 0; m < y.size(); ++m) {
        check(checkpoint, m);
        // t = m * from / to, exactly: m * from <= kMaxOutputSamples * kMaxRate < 2^64.
        const std::uint64_t num = static_cast<std::uint64_t>(m) * from_rate;
        const auto i = static_cast<std::size_t>(num / to_rate);  // < x.size(), as m < n*to/from
        const std::uint64_t rem = num % to_rate;
        if (rem == 0 || i + 1 >= x.size()) {
            y[m] = x[i];
            continue;
        }
        const double frac = static_cast<double>(rem) / static_cast<double>(to_rate);
        y[m] = to_float((1.0 - frac) * static_cast<double>(x[i]) +
                        frac * static_cast<double>(x[i + 1]));
    }
    return y;
}

}  // namespace signal_cpp
