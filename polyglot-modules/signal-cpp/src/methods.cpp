// signal-cpp's methods (see methods.hpp and README.md).
#include "methods.hpp"

#include <algorithm>
#include <string>

#include "dsp.hpp"
#include "polyglot/args.hpp"
#include "polyglot/codec.hpp"
#include "polyglot/error.hpp"
#include "samples.hpp"

namespace signal_cpp {

namespace {

using polyglot::Call;
using polyglot::Error;
using polyglot::Value;

/// Stops the computation when the host cancelled the call.
Checkpoint stop_when_cancelled(const Call& call) {
    return [&call] { call.throw_if_cancelled(); };
}

std::uint64_t rate(const Value& params, std::size_t index, const char* name) {
    const Value& v = polyglot::arg(params, index, name);
    if (v.is_number_integer()) {
        const bool negative = !v.is_number_unsigned() && v.get<std::int64_t>() < 0;
        if (!negative && v.get<std::uint64_t>() >= 1 && v.get<std::uint64_t>() <= kMaxRate) {
            return v.get<std::uint64_t>();
        }
    }
    throw Error::invalid_params("`" + std::string(name) +
                                "` must be an integer sample rate from 1 to " +
                                std::to_string(kMaxRate) + ", not " + polyglot::encode_json(v));
}

}  // namespace

Value fir_method(const Value& params, Call& call) {
    polyglot::check_params(params, "fir", {"samples", "taps"});
    const Samples x = read_samples(polyglot::arg(params, 0, "samples"), "samples");
    const Samples taps = read_samples(polyglot::arg(params, 1, "taps"), "taps");
    if (taps.values.empty()) throw Error::invalid_params("`taps` must hold at least one tap");
    return write_samples(fir(x.values, taps.values, stop_when_cancelled(call)), x.binary);
}

Value moving_average_method(const Value& params, Call& call) {
    polyglot::check_params(params, "movingAverage", {"samples", "window"});
    const Samples x = read_samples(polyglot::arg(params, 0, "samples"), "samples");
    const Value& w = polyglot::arg(params, 1, "window");
    const bool ok = w.is_number_integer() &&
                    (w.is_number_unsigned() || w.get<std::int64_t>() >= 1) &&
                    w.get<std::uint64_t>() >= 1;
    if (!ok) {
        throw Error::invalid_params("`window` must be an integer of at least 1, not " +
                                    polyglot::encode_json(w));
    }
    // A window longer than the signal averages everything so far: clamp it.
    const std::uint64_t window = std::min<std::uint64_t>(w.get<std::uint64_t>(),
                                                         std::max<std::size_t>(x.values.size(), 1));
    return write_samples(
        moving_average(x.values, static_cast<std::size_t>(window), stop_when_cancelled(call)),
        x.binary);
}

Value rms_method(const Value& params, Call&) {
    polyglot::check_params(params, "rms", {"samples"});
    const Samples x = read_samples(polyglot::arg(params, 0, "samples"), "samples");
    return Value(rms(x.values));
}

Value resample_method(const Value& params, Call& call) {
    polyglot::check_params(params, "resample", {"samples", "fromRate", "toRate"});
    const Samples x = read_samples(polyglot::arg(params, 0, "samples"), "samples");
    const std::uint64_t from = rate(params, 1, "fromRate");
    const std::uint64_t to = rate(params, 2, "toRate");
    if (!resampled_length(x.values.size(), from, to)) {
        throw Error::invalid_params("resampling " + std::to_string(x.values.size()) +
                                    " samples from " + std::to_string(from) + " to " +
                                    std::to_string(to) + " Hz gives more than " +
                                    std::to_string(kMaxOutputSamples) + " samples");
    }
    return write_samples(resample(x.values, from, to, stop_when_cancelled(call)), x.binary);
}

void add_methods(polyglot::Worker& worker) {
    worker.method("fir", fir_method)
        .method("movingAverage", moving_average_method)
        .method("rms", rms_method)
        .method("resample", resample_method);
}

}  // namespace signal_cpp
