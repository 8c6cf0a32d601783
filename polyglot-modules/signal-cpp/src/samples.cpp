// Samples <-> values (see samples.hpp).
#include "samples.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "polyglot/error.hpp"

namespace signal_cpp {

namespace {

std::string named(std::string_view name) { return "`" + std::string(name) + "`"; }

float from_le(const std::uint8_t* p) {
    const std::uint32_t bits = std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
                               (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

void to_le(float v, std::uint8_t* p) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    p[0] = static_cast<std::uint8_t>(bits);
    p[1] = static_cast<std::uint8_t>(bits >> 8);
    p[2] = static_cast<std::uint8_t>(bits >> 16);
    p[3] = static_cast<std::uint8_t>(bits >> 24);
}

}  // namespace

Samples read_samples(const polyglot::Value& v, std::string_view name) {
    Samples s;
    if (v.is_binary()) {
        const auto& bytes = v.get_binary();
        if (bytes.size() % 4 != 0) {
            throw polyglot::Error::invalid_params(
                named(name) + " as binary must hold whole little-endian float32 values (4 bytes "
                              "each), not " + std::to_string(bytes.size()) + " bytes");
        }
        s.binary = true;
        s.values.resize(bytes.size() / 4);
        for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = from_le(&bytes[4 * i]);
        return s;
    }
    if (!v.is_array()) {
        throw polyglot::Error::invalid_params(
            named(name) + " must be an array of numbers or binary float32 data, not " +
            polyglot::type_name(v));
    }
    s.values.reserve(v.size());
    constexpr double kMax = std::numeric_limits<float>::max();
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& e = v[i];
        const std::string at = named(name) + "[" + std::to_string(i) + "]";
        if (!e.is_number()) {
            throw polyglot::Error::invalid_params(at + " must be a number, not " +
                                                  polyglot::type_name(e));
        }
        const double d = e.get<double>();
        if (!std::isfinite(d) || std::fabs(d) > kMax) {
            throw polyglot::Error::invalid_params(at + " is outside the float32 range");
        }
        s.values.push_back(static_cast<float>(d));
    }
    return s;
}

polyglot::Value write_samples(const std::vector<float>& values, bool binary) {
    if (binary) {
        polyglot::Bytes bytes(values.size() * 4);
        for (std::size_t i = 0; i < values.size(); ++i) to_le(values[i], &bytes[4 * i]);
        return polyglot::bytes(std::move(bytes));
    }
    polyglot::Value out = polyglot::Value::array();
    out.get_ref<polyglot::Value::array_t&>().reserve(values.size());
    for (const float f : values) out.push_back(static_cast<double>(f));
    return out;
}

}  // namespace signal_cpp
