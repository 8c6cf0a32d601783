// Samples on the wire: a JSON/MessagePack array of numbers, or binary holding
// little-endian float32 values. Results go back in the form their input came in.
#pragma once

#include <string_view>
#include <vector>

#include "polyglot/value.hpp"

namespace signal_cpp {

/// Samples read from a value, and the form they came in.
struct Samples {
    std::vector<float> values;
    bool binary = false;
};

/// Reads the argument `name`.
/// @throws polyglot::Error INVALID_PARAMS naming the argument (and the element) at fault:
///         not an array or binary, an element that is not a number or is outside float32's
///         range, binary whose length is not a multiple of 4.
Samples read_samples(const polyglot::Value& v, std::string_view name);

/// The samples as a value: binary (little-endian float32) or an array of numbers.
polyglot::Value write_samples(const std::vector<float>& values, bool binary);

}  // namespace signal_cpp
