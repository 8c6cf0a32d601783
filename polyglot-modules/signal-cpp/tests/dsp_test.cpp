// signal-cpp's DSP functions against their definitions in README.md.
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include <gtest/gtest.h>

#include "dsp.hpp"

namespace {

using signal_cpp::fir;
using signal_cpp::moving_average;
using signal_cpp::resample;
using signal_cpp::resampled_length;
using signal_cpp::rms;

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> noise(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(gen);
    return v;
}

TEST(Fir, ImpulseResponseIsTheTaps) {
    const std::vector<float> taps = {0.5f, -0.25f, 0.125f};
    EXPECT_EQ(fir({1, 0, 0, 0, 0}, taps), (std::vector<float>{0.5f, -0.25f, 0.125f, 0, 0}));
}

TEST(Fir, MatchesTheDirectFormDefinition) {
    const auto x = noise(1000, 1);
    const auto taps = noise(31, 2);
    const auto y = fir(x, taps);
    ASSERT_EQ(y.size(), x.size());
    for (std::size_t n = 0; n < x.size(); ++n) {
        double want = 0;
        for (std::size_t k = 0; k < taps.size() && k <= n; ++k) want += double(taps[k]) * x[n - k];
        EXPECT_NEAR(y[n], want, 1e-5) << n;
    }
}

TEST(Fir, EdgeCases) {
    EXPECT_TRUE(fir({}, {1}).empty());
    EXPECT_EQ(fir({1, 2, 3}, {1}), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(fir({1}, {1, 2, 3}), (std::vector<float>{1}));  // more taps than samples
    EXPECT_THROW(fir({1}, {}), std::invalid_argument);
    // Beyond float32's range the output is infinity, not undefined behaviour.
    const float big = std::numeric_limits<float>::max();
    EXPECT_EQ(fir({big, big}, {big})[0], kInf);
}

TEST(MovingAverage, AveragesTheSamplesThereAreAtTheStart) {
    EXPECT_EQ(moving_average({2, 4, 6, 8}, 2), (std::vector<float>{2, 3, 5, 7}));
    EXPECT_EQ(moving_average({3, 6, 9}, 10), (std::vector<float>{3, 4.5f, 6}));
    EXPECT_EQ(moving_average({1, 2, 3}, 1), (std::vector<float>{1, 2, 3}));
    EXPECT_TRUE(moving_average({}, 3).empty());
    EXPECT_THROW(moving_average({1}, 0), std::invalid_argument);
}

TEST(MovingAverage, MatchesTheDefinitionOnLongSignalsOfMixedMagnitude) {
    auto x = noise(20000, 3);
    for (std::size_t i = 0; i < x.size(); i += 997) x[i] = 3e30f;  // would poison a running sum
    for (const std::size_t w : {1u, 7u, 64u, 1000u}) {
        const auto y = moving_average(x, w);
        for (std::size_t n = 0; n < x.size(); ++n) {
            const std::size_t m = std::min(n + 1, w);
            double want = 0;
            for (std::size_t k = n + 1 - m; k <= n; ++k) want += x[k];
            want /= double(m);
            EXPECT_NEAR(y[n], want, std::max(1e-4, std::fabs(want) * 1e-6)) << "w=" << w << " n=" << n;
        }
    }
}

TEST(MovingAverage, NonFiniteSamplesOnlyAffectTheirWindows) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const auto y = moving_average({1, nan, 1, 1, 1, kInf, 1, 1}, 2);
    EXPECT_EQ(y[0], 1);
    EXPECT_TRUE(std::isnan(y[1]));
    EXPECT_TRUE(std::isnan(y[2]));
    EXPECT_EQ(y[3], 1);
    EXPECT_EQ(y[4], 1);
    EXPECT_EQ(y[5], kInf);
    EXPECT_EQ(y[6], kInf);
    EXPECT_EQ(y[7], 1);
}

TEST(Rms, Definition) {
    EXPECT_DOUBLE_EQ(rms({3, 4}), std::sqrt(12.5));
    EXPECT_DOUBLE_EQ(rms({-2, -2, -2}), 2.0);
    EXPECT_EQ(rms({}), 0.0);
    const float big = std::numeric_limits<float>::max();
    EXPECT_DOUBLE_EQ(rms({big, big}), double(big));  // squares stay finite in double
}

TEST(Resample, LengthIsTheCeilingOfTheDuration) {
    EXPECT_EQ(resampled_length(3, 1, 2), std::optional<std::size_t>(6));
    EXPECT_EQ(resampled_length(3, 48000, 8000), std::optional<std::size_t>(1));
    EXPECT_EQ(resampled_length(48000, 48000, 44100), std::optional<std::size_t>(44100));
    EXPECT_EQ(resampled_length(0, 1, 5), std::optional<std::size_t>(0));
    EXPECT_FALSE(resampled_length(100, 1, 1000000000));  // over kMaxOutputSamples
    EXPECT_FALSE(resampled_length(1, 0, 1));
    EXPECT_FALSE(resampled_length(1, 1, 1000000001));
    EXPECT_FALSE(resampled_length(std::numeric_limits<std::size_t>::max(), 1, 2));
}

TEST(Resample, LinearInterpolation) {
    EXPECT_EQ(resample({0, 2, 4}, 1, 2), (std::vector<float>{0, 1, 2, 3, 4, 4}));
    EXPECT_EQ(resample({0, 1, 2, 3, 4, 5}, 2, 1), (std::vector<float>{0, 2, 4}));
    EXPECT_EQ(resample({5, 6, 7}, 44100, 44100), (std::vector<float>{5, 6, 7}));
    EXPECT_TRUE(resample({}, 1, 3).empty());
    const auto y = resample({0, 3}, 1, 3);  // t = 0, 1/3, 2/3, 1, 4/3, 5/3
    ASSERT_EQ(y.size(), 6u);
    EXPECT_NEAR(y[1], 1.0f, 1e-6);
    EXPECT_NEAR(y[2], 2.0f, 1e-6);
    EXPECT_EQ(y[3], 3.0f);
    EXPECT_EQ(y[5], 3.0f);  // past the last sample: the last sample
}

TEST(Checkpoint, StopsLongComputations) {
    const auto x = noise(3 * signal_cpp::kCheckEvery, 4);
    int calls = 0;
    const signal_cpp::Checkpoint stop_at_second = [&calls] {
        if (++calls == 2) throw std::runtime_error("cancelled");
    };
    EXPECT_THROW(fir(x, {1, 2}, stop_at_second), std::runtime_error);
    EXPECT_EQ(calls, 2);
}

}  // namespace
