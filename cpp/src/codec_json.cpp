// The JSON codec: a writer (compact, binary as `{"$bytes": ...}`, floats that stay floats)
// and a reader built on nlohmann's SAX parser, so `$bytes` objects become binary, and depth
// and number range are checked, in one pass without recursion.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "codec_impl.hpp"
#include "polyglot/codec.hpp"
#include "utf8.hpp"

namespace polyglot {
namespace detail {

namespace {

void json_value_at(std::string& out, const Value& v, std::size_t depth);

void json_number_float(std::string& out, double d) {
    if (!std::isfinite(d)) {
        throw EncodeError("the float " + std::to_string(d) + " is not a JSON value (JSON has no NaN or infinity)");
    }
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);
    std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    out += text;
    // Shortest form may look like an integer ("2"); keep it a float on the wire.
    if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

template <typename T>
void json_integer(std::string& out, T v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void json_value_at(std::string& out, const Value& v, std::size_t depth) {
    switch (v.type()) {
        case Value::value_t::null: out += "null"; return;
        case Value::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
        case Value::value_t::number_integer: json_integer(out, v.get<std::int64_t>()); return;
        case Value::value_t::number_unsigned: json_integer(out, v.get<std::uint64_t>()); return;
        case Value::value_t::number_float: json_number_float(out, v.get<double>()); return;
        case Value::value_t::string: json_string(out, v.get_ref<const std::string&>()); return;
        case Value::value_t::binary: {
            const auto& b = v.get_binary();
            out += "{\"$bytes\":\"";
            out += base64_encode(b.data(), b.size());
            out += "\"}";
            return;
        }
        case Value::value_t::array: {
            if (depth >= kMaxDepth) throw EncodeError("the value nests deeper than 512 levels");
            out.push_back('[');
            bool first = true;
            for (const auto& e : v) {
                if (!first) out.push_back(',');
                first = false;
                json_value_at(out, e, depth + 1);
            }
            out.push_back(']');
            return;
        }
        case Value::value_t::object: {
            if (depth >= kMaxDepth) throw EncodeError("the value nests deeper than 512 levels");
            out.push_back('{');
            bool first = true;
            for (const auto& [k, e] : v.items()) {
                if (!first) out.push_back(',');
                first = false;
                json_string(out, k);
                out.push_back(':');
                json_value_at(out, e, depth + 1);
            }
            out.push_back('}');
            return;
        }
        case Value::value_t::discarded: break;
    }
    throw EncodeError("a discarded value is not a protocol value");
}

/// Builds a Value from nlohmann's SAX events (the same shape as its own DOM builder), with
/// the protocol's rules on top. Returning false stops the parse; `error` says why.
class Builder {
public:
    explicit Builder(Value& root) : root_(root) {}

    bool null() { return put(Value(nullptr)); }
    bool boolean(bool b) { return put(Value(b)); }
    bool number_integer(Value::number_integer_t v) { return put(Value(v)); }
    bool number_unsigned(Value::number_unsigned_t v) { return put(Value(v)); }
    bool number_float(Value::number_float_t v, const std::string& text) {
        if (!std::isfinite(v)) {
            error = "the number " + text + " is out of range";
            return false;
        }
        return put(Value(v));
    }
    bool string(std::string& s) { return put(Value(std::move(s))); }
    bool binary(Value::binary_t& b) { return put(Value(std::move(b))); }
    bool start_object(std::size_t) {
        if (!deeper()) return false;
        stack_.push_back(place(Value::object()));
        return true;
    }
    bool key(std::string& k) {
        member_ = &(*stack_.back())[std::move(k)];
        return true;
    }
    bool end_object() {
        Value* obj = stack_.back();
        stack_.pop_back();
        return bytes_object(*obj);
    }
    bool start_array(std::size_t) {
        if (!deeper()) return false;
        stack_.push_back(place(Value::array()));
        return true;
    }
    bool end_array() {
        stack_.pop_back();
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        error = e.what();
        // nlohmann prefixes "[json.exception.parse_error.101] ": drop the tag.
        const auto close = error.find("] ");
        if (close != std::string::npos) error.erase(0, close + 2);
        return false;
    }

    std::string error;

private:
    bool deeper() {
        if (stack_.size() < kMaxDepth) return true;
        error = "the value nests deeper than 512 levels";
        return false;
    }
    Value* place(Value&& v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return &root_;
        }
        Value& top = *stack_.back();
        if (top.is_array()) {
            top.push_back(std::move(v));
            return &top.back();
        }
        *member_ = std::move(v);
        return member_;
    }
    bool put(Value&& v) {
        place(std::move(v));
        return true;
    }
    // `{"$bytes": "<base64>"}` alone is binary (docs/protocol.md, section 7).
    bool bytes_object(Value& obj) {
        if (obj.size() != 1) return true;
        const auto it = obj.find(kBytesKey);
        if (it == obj.end()) return true;
        if (!it->is_string()) {
            error = std::string("`$bytes` must hold a base64 string, not ") + type_name(*it);
            return false;
        }
        Bytes data;
        if (!base64_decode(it->get_ref<const std::string&>(), data)) {
            error = "`$bytes` does not hold valid base64 (standard alphabet, padded)";
            return false;
        }
        obj = Value::binary(std::move(data));
        return true;
    }

    Value& root_;
    std::vector<Value*> stack_;
    Value* member_ = nullptr;
};

}  // namespace

void json_string(std::string& out, std::string_view s) {
    if (!valid_utf8(s)) throw EncodeError("a string is not valid UTF-8");
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

void json_value(std::string& out, const Value& v) { json_value_at(out, v, 0); }

}  // namespace detail

std::string encode_json(const Value& v) {
    std::string out;
    detail::json_value(out, v);
    return out;
}

Value decode_json(std::string_view text) {
    Value root;
    detail::Builder builder(root);
    const bool ok = Value::sax_parse(text.data(), text.data() + text.size(), &builder,
                                     Value::input_format_t::json, true, false);
    if (!ok) {
        throw DecodeError("invalid JSON: " +
                          (builder.error.empty() ? std::string("not a JSON value") : builder.error));
    }
    return root;
}

}  // namespace polyglot
