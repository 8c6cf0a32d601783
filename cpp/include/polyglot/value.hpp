// polyglot/value.hpp: the protocol's data model (docs/protocol.md, section 7).
//
// A protocol value is JSON's data model plus binary. In C++ it is an nlohmann::json; binary
// data is its `binary_t` (a byte vector), which travels as MessagePack `bin` and, in JSON,
// as `{"$bytes": "<base64>"}`. Integers keep their sign: a non-negative integer read from
// the wire is `number_unsigned`, a negative one `number_integer`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace polyglot {

/// A protocol value: params, results, progress, error data.
using Value = nlohmann::json;

/// Binary data as a value holds it.
using Bytes = std::vector<std::uint8_t>;

/// The key of the JSON form of binary data: `{"$bytes": "<base64>"}`.
inline constexpr const char* kBytesKey = "$bytes";

/// A binary value holding `data`.
Value bytes(Bytes data);

/// A binary value holding a copy of `size` bytes at `data`.
Value bytes(const void* data, std::size_t size);

/// The protocol's name of the type of `v`, for error messages: "null", "boolean",
/// "integer", "float", "string", "binary", "array" or "object".
const char* type_name(const Value& v) noexcept;

/// Standard base64 (RFC 4648, with padding) of `size` bytes at `data`.
std::string base64_encode(const std::uint8_t* data, std::size_t size);

/// Decodes standard padded base64 into `out`. Returns false (leaving `out` unspecified)
/// for anything else, including non-canonical text (non-zero bits before the padding), as
/// the Rust and Python SDKs do, so every SDK accepts the same strings.
bool base64_decode(const std::string& text, Bytes& out);

}  // namespace polyglot
