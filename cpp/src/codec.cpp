// Codec names, encode/decode by codec, and MapWriter (envelopes written field by field).
#include "polyglot/codec.hpp"

#include "codec_impl.hpp"

namespace polyglot {

const char* to_string(Codec codec) noexcept {
    return codec == Codec::msgpack ? "msgpack" : "json";
}

std::optional<Codec> parse_codec(std::string_view name) noexcept {
    if (name == "json") return Codec::json;
    if (name == "msgpack") return Codec::msgpack;
    return std::nullopt;
}

std::string encode(Codec codec, const Value& v) {
    return codec == Codec::msgpack ? encode_msgpack(v) : encode_json(v);
}

Value decode(Codec codec, std::string_view payload) {
    return codec == Codec::msgpack ? decode_msgpack(payload) : decode_json(payload);
}

namespace detail {

MapWriter::MapWriter(Codec codec, std::string& out, std::size_t entries)
    : codec_(codec), out_(out) {
    begin_map(entries);
}

MapWriter& MapWriter::begin_map(std::size_t entries) {
    if (codec_ == Codec::json) {
        out_.push_back('{');
    } else {
        msgpack_map_header(out_, entries);
    }
    first_.push_back(true);
    return *this;
}

MapWriter& MapWriter::end() {
    if (codec_ == Codec::json) out_.push_back('}');
    first_.pop_back();
    return *this;
}

MapWriter& MapWriter::key(std::string_view k) {
    if (codec_ == Codec::json) {
        if (!first_.back()) out_.push_back(',');
        json_string(out_, k);
        out_.push_back(':');
    } else {
        msgpack_string(out_, k);
    }
    first_.back() = false;
    return *this;
}

MapWriter& MapWriter::value(const Value& v) {
    if (codec_ == Codec::json) {
        json_value(out_, v);
    } else {
        msgpack_value(out_, v);
    }
    return *this;
}

MapWriter& MapWriter::string(std::string_view s) {
    if (codec_ == Codec::json) {
        json_string(out_, s);
    } else {
        msgpack_string(out_, s);
    }
    return *this;
}

MapWriter& MapWriter::uint(std::uint64_t v) {
    if (codec_ == Codec::json) {
        out_ += std::to_string(v);
    } else {
        msgpack_uint(out_, v);
    }
    return *this;
}

MapWriter& MapWriter::id(const Id& id) { return value(id.to_value()); }

}  // namespace detail
}  // namespace polyglot
