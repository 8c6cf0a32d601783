// polyglot/codec.hpp: the two codecs, value <-> payload bytes (docs/protocol.md, sections 3
// and 7). Framing (the `\n`, the 4-byte length prefix) is in frame.hpp.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "polyglot/value.hpp"

namespace polyglot {

/// The codec of every frame after the handshake.
enum class Codec {
    json,     ///< one UTF-8 JSON object per line
    msgpack,  ///< a 4-byte big-endian length, then one MessagePack map
};

/// "json" or "msgpack".
const char* to_string(Codec codec) noexcept;

/// The codec called `name`, or nothing for a name the protocol does not know.
std::optional<Codec> parse_codec(std::string_view name) noexcept;

/// How deep arrays and objects may nest in a value that is decoded or encoded: far deeper
/// than any real payload, shallow enough that a hostile frame cannot exhaust the stack.
inline constexpr std::size_t kMaxDepth = 512;

/// Bytes that do not hold a valid value (or message). The text names what is wrong.
class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A value that cannot be written in a codec: a non-finite float in JSON, a string that is
/// not UTF-8, nesting deeper than kMaxDepth, a string or binary over 4 GiB in MessagePack.
class EncodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The payload (no framing) that holds `v`.
/// @throws EncodeError when `v` cannot be written in `codec`.
std::string encode(Codec codec, const Value& v);

/// The value held by one payload.
/// @throws DecodeError naming what is wrong.
Value decode(Codec codec, std::string_view payload);

/// Compact JSON text of `v`, binary written as `{"$bytes": "<base64>"}`.
/// @throws EncodeError
std::string encode_json(const Value& v);

/// Reads JSON text; every object whose only key is `$bytes` becomes binary.
/// @throws DecodeError for text that is not JSON, a `$bytes` that is not base64, a float
///         out of range, or nesting deeper than kMaxDepth.
Value decode_json(std::string_view text);

/// One MessagePack value holding `v` (integers in their smallest form, binary as `bin`).
/// @throws EncodeError
std::string encode_msgpack(const Value& v);

/// Reads one MessagePack value (the whole input).
/// @throws DecodeError for malformed input, a map key that is not a string, an extension
///         type, invalid UTF-8 in a string, trailing bytes, or nesting deeper than kMaxDepth.
Value decode_msgpack(std::string_view bytes);

}  // namespace polyglot
