// Envelope writers that append to a buffer, and framed(): a message encoded straight into
// its frame (prefix or newline around it), so a large response is not copied again to be
// framed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "polyglot/codec.hpp"
#include "polyglot/envelope.hpp"

namespace polyglot::detail {

void write_response(Codec codec, std::string& out, const Id& id, const Value* result,
                    const ErrorObject* error, std::optional<std::uint64_t> timestamp,
                    std::optional<std::uint64_t> execution_us);
void write_progress(Codec codec, std::string& out, const Id& id, const Value& progress);
void write_log(Codec codec, std::string& out, LogLevel level, std::string_view message,
               const Value& fields);

/// The frame holding what `write(out)` appends; `payload_size` is set to its size (the
/// size the frame limit applies to).
/// @throws EncodeError from `write`, or for a MessagePack payload over 4 GiB.
template <typename Write>
std::string framed(Codec codec, Write&& write, std::size_t& payload_size) {
    std::string out;
    if (codec == Codec::msgpack) out.append(4, '\0');
    const std::size_t at = out.size();
    write(out);
    payload_size = out.size() - at;
    if (codec == Codec::json) {
        out.push_back('\n');
        return out;
    }
    if (payload_size > std::numeric_limits<std::uint32_t>::max()) {
        throw EncodeError("a MessagePack frame holds at most 4 GiB");
    }
    const auto n = static_cast<std::uint32_t>(payload_size);
    out[0] = static_cast<char>(n >> 24);
    out[1] = static_cast<char>(n >> 16);
    out[2] = static_cast<char>(n >> 8);
    out[3] = static_cast<char>(n);
    return out;
}

}  // namespace polyglot::detail
