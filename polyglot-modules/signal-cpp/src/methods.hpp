// signal-cpp's methods: params in, DSP, result out in the input's form.
#pragma once

#include "polyglot/worker.hpp"

namespace signal_cpp {

/// fir(samples, taps) -> samples
polyglot::Value fir_method(const polyglot::Value& params, polyglot::Call& call);
/// movingAverage(samples, window) -> samples
polyglot::Value moving_average_method(const polyglot::Value& params, polyglot::Call& call);
/// rms(samples) -> number
polyglot::Value rms_method(const polyglot::Value& params, polyglot::Call& call);
/// resample(samples, fromRate, toRate) -> samples
polyglot::Value resample_method(const polyglot::Value& params, polyglot::Call& call);

/// Adds the four methods to `worker`.
void add_methods(polyglot::Worker& worker);

}  // namespace signal_cpp
