// Binary values, type names and base64 (docs/protocol.md, section 7).
//
// Base64 is written here by hand: the SDK's dependencies (nlohmann-json, msgpack-cxx) have
// none, it is forty lines, and the protocol needs the strict form (padded, canonical) that
// every SDK accepts alike.
#include "polyglot/value.hpp"

#include <array>
#include <cstring>

namespace polyglot {

Value bytes(Bytes data) { return Value::binary(std::move(data)); }

Value bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    return Value::binary(Bytes(p, p + size));
}

const char* type_name(const Value& v) noexcept {
    switch (v.type()) {
        case Value::value_t::null: return "null";
        case Value::value_t::boolean: return "boolean";
        case Value::value_t::number_integer:
        case Value::value_t::number_unsigned: return "integer";
        case Value::value_t::number_float: return "float";
        case Value::value_t::string: return "string";
        case Value::value_t::binary: return "binary";
        case Value::value_t::array: return "array";
        case Value::value_t::object: return "object";
        case Value::value_t::discarded: return "discarded";
    }
    return "unknown";
}

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of each base64 character, or -1.
constexpr std::array<int, 256> make_reverse() {
    std::array<int, 256> r{};
    for (auto& x : r) x = -1;
    for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(kAlphabet[i])] = i;
    return r;
}
constexpr std::array<int, 256> kReverse = make_reverse();

}  // namespace

std::string base64_encode(const std::uint8_t* data, std::size_t size) {
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                                data[i + 2];
        out.push_back(kAlphabet[(n >> 18) & 63]);
        out.push_back(kAlphabet[(n >> 12) & 63]);
        out.push_back(kAlphabet[(n >> 6) & 63]);
        out.push_back(kAlphabet[n & 63]);
    }
    if (size - i == 1) {
        const std::uint32_t n = std::uint32_t{data[i]} << 16;
        out.push_back(kAlphabet[(n >> 18) & 63]);
        out.push_back(kAlphabet[(n >> 12) & 63]);
        out += "==";
    } else if (size - i == 2) {
        const std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
        out.push_back(kAlphabet[(n >> 18) & 63]);
        out.push_back(kAlphabet[(n >> 12) & 63]);
        out.push_back(kAlphabet[(n >> 6) & 63]);
        out.push_back('=');
    }
    return out;
}

bool base64_decode(const std::string& text, Bytes& out) {
    out.clear();
    const std::size_t n = text.size();
    if (n % 4 != 0) return false;
    out.reserve(n / 4 * 3);
    for (std::size_t i = 0; i < n; i += 4) {
        const bool last = i + 4 == n;
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            const auto c = static_cast<unsigned char>(text[i + static_cast<std::size_t>(j)]);
            if (c == '=' && last && j >= 2) {
                v[j] = 0;
                ++pad;
                continue;
            }
            if (pad > 0) return false;  // a character after '='
            v[j] = kReverse[c];
            if (v[j] < 0) return false;
        }
        const std::uint32_t w = (static_cast<std::uint32_t>(v[0]) << 18) |
                                (static_cast<std::uint32_t>(v[1]) << 12) |
                                (static_cast<std::uint32_t>(v[2]) << 6) |
                                static_cast<std::uint32_t>(v[3]);
        // Canonical only: the bits the padding leaves unused must be zero.
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)) return false;
        out.push_back(static_cast<std::uint8_t>(w >> 16));
        if (pad < 2) out.push_back(static_cast<std::uint8_t>(w >> 8));
        if (pad < 1) out.push_back(static_cast<std::uint8_t>(w));
    }
    return true;
}

}  // namespace polyglot
