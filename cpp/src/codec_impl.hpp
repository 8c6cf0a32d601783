// The codecs' building blocks, shared by codec.cpp, envelope.cpp and frame.cpp: appending
// values and map parts in each codec's form, so envelopes can be written field by field
// (`id` first) without building a Value for the envelope itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyglot/codec.hpp"
#include "polyglot/id.hpp"
#include "polyglot/value.hpp"

namespace polyglot::detail {

// ---- JSON (codec_json.cpp)
void json_value(std::string& out, const Value& v);  // throws EncodeError
void json_string(std::string& out, std::string_view s);  // throws EncodeError (not UTF-8)

// ---- MessagePack (codec_msgpack.cpp)
void msgpack_value(std::string& out, const Value& v);  // throws EncodeError
void msgpack_map_header(std::string& out, std::size_t n);
void msgpack_string(std::string& out, std::string_view s);  // throws EncodeError
void msgpack_uint(std::string& out, std::uint64_t v);
std::optional<Id> msgpack_id_from_head(std::string_view head);

/// Writes one map (an envelope) in either codec: begin(n), then key()/value pairs, end().
class MapWriter {
public:
    MapWriter(Codec codec, std::string& out, std::size_t entries);
    MapWriter& key(std::string_view k);
    MapWriter& value(const Value& v);
    MapWriter& string(std::string_view s);
    MapWriter& uint(std::uint64_t v);
    MapWriter& id(const Id& id);
    /// Opens a nested map as the current value; close it with end().
    MapWriter& begin_map(std::size_t entries);
    MapWriter& end();

private:
    Codec codec_;
    std::string& out_;
    std::vector<bool> first_;  // JSON: per open map, whether no entry was written yet
};

}  // namespace polyglot::detail
