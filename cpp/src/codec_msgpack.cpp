// The MessagePack codec, on msgpack-cxx: its packer writes (integers in their smallest
// form), and its visitor parser reads straight into a Value, without the intermediate
// msgpack::object tree and without recursion, checking the protocol's rules on the way
// (string keys, UTF-8 strings, no extension types, bounded depth).
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "codec_impl.hpp"
#include "polyglot/codec.hpp"
#include "utf8.hpp"

namespace polyglot {
namespace detail {

namespace {

/// Where msgpack::packer appends.
struct Sink {
    std::string* out;
    void write(const char* p, std::size_t n) { out->append(p, n); }
};

using Packer = msgpack::packer<Sink>;

std::uint32_t checked_len(std::size_t n, const char* what) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
        throw EncodeError(std::string("a MessagePack ") + what + " holds at most 4 GiB");
    }
    return static_cast<std::uint32_t>(n);
}

void pack_string(Packer& pk, std::string_view s) {
    if (!valid_utf8(s)) throw EncodeError("a string is not valid UTF-8");
    const auto n = checked_len(s.size(), "string");
    pk.pack_str(n);
    pk.pack_str_body(s.data(), n);
}

/// Always a MessagePack float64. (msgpack-cxx's pack_double writes a whole-number double
/// such as 1.0 as an integer, which would turn a float into an int on the wire.)
void pack_float64(Packer& pk, double d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[9];
    buf[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
    pk.pack_bin_body(buf, sizeof buf);  // appends the bytes as they are
}

void pack_value(Packer& pk, const Value& v, std::size_t depth) {
    switch (v.type()) {
        case Value::value_t::null: pk.pack_nil(); return;
        case Value::value_t::boolean:
            if (v.get<bool>()) {
                pk.pack_true();
            } else {
                pk.pack_false();
            }
            return;
        case Value::value_t::number_integer: pk.pack_int64(v.get<std::int64_t>()); return;
        case Value::value_t::number_unsigned: pk.pack_uint64(v.get<std::uint64_t>()); return;
        case Value::value_t::number_float: pack_float64(pk, v.get<double>()); return;
        case Value::value_t::string: pack_string(pk, v.get_ref<const std::string&>()); return;
        case Value::value_t::binary: {
            const auto& b = v.get_binary();
            const auto n = checked_len(b.size(), "binary");
            pk.pack_bin(n);
            pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), n);
            return;
        }
        case Value::value_t::array: {
            if (depth >= kMaxDepth) throw EncodeError("the value nests deeper than 512 levels");
            pk.pack_array(checked_len(v.size(), "array"));
            for (const auto& e : v) pack_value(pk, e, depth + 1);
            return;
        }
        case Value::value_t::object: {
            if (depth >= kMaxDepth) throw EncodeError("the value nests deeper than 512 levels");
            pk.pack_map(checked_len(v.size(), "map"));
            for (const auto& [k, e] : v.items()) {
                pack_string(pk, k);
                pack_value(pk, e, depth + 1);
            }
            return;
        }
        case Value::value_t::discarded: break;
    }
    throw EncodeError("a discarded value is not a protocol value");
}

/// msgpack-cxx visitor that builds a Value. Returning false stops the parse; `error` says
/// why.
class Builder {
public:
    explicit Builder(Value& root) : root_(root) {}

    bool visit_nil() { return put(Value(nullptr)); }
    bool visit_boolean(bool v) { return put(Value(v)); }
    bool visit_positive_integer(std::uint64_t v) { return put(Value(v)); }
    bool visit_negative_integer(std::int64_t v) { return put(Value(v)); }
    bool visit_float32(float v) { return put(Value(static_cast<double>(v))); }
    bool visit_float64(double v) { return put(Value(v)); }
    bool visit_str(const char* p, std::uint32_t n) {
        const std::string_view s(p, n);
        if (!valid_utf8(s)) {
            error = "a string is not valid UTF-8";
            return false;
        }
        if (in_key_) {
            member_ = &(*stack_.back())[std::string(s)];
            got_key_ = true;
            return true;
        }
        return put(Value(std::string(s)));
    }
    bool visit_bin(const char* p, std::uint32_t n) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(p);
        return put(Value::binary(Bytes(b, b + n)));
    }
    bool visit_ext(const char*, std::uint32_t) {
        error = "MessagePack extension types are not protocol values";
        return false;
    }
    bool start_array(std::uint32_t n) {
        Value* a = open(Value::array());
        if (a == nullptr) return false;
        // Reserve no more than a small bound: `n` comes from the wire.
        a->get_ref<Value::array_t&>().reserve(std::min<std::uint32_t>(n, 1024));
        return true;
    }
    bool start_array_item() { return true; }
    bool end_array_item() { return true; }
    bool end_array() {
        stack_.pop_back();
        return true;
    }
    bool start_map(std::uint32_t) { return open(Value::object()) != nullptr; }
    bool start_map_key() {
        in_key_ = true;
        got_key_ = false;
        return true;
    }
    bool end_map_key() {
        in_key_ = false;
        return got_key_;
    }
    bool start_map_value() { return true; }
    bool end_map_value() { return true; }
    bool end_map() {
        stack_.pop_back();
        return true;
    }
    void parse_error(std::size_t, std::size_t) {
        if (error.empty()) error = "malformed MessagePack";
    }
    void insufficient_bytes(std::size_t, std::size_t) {
        if (error.empty()) error = "the value is cut off";
    }

    std::string error;

private:
    bool key_check(const char* what) {
        if (!in_key_) return true;
        error = std::string("a map key must be a string, not ") + what;
        return false;
    }
    Value* open(Value&& v) {
        const bool is_array = v.is_array();
        if (!key_check(is_array ? "an array" : "a map")) return nullptr;
        if (stack_.size() >= kMaxDepth) {
            error = "the value nests deeper than 512 levels";
            return nullptr;
        }
        Value* at = place(std::move(v));
        stack_.push_back(at);
        return at;
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
        if (!key_check(type_name(v))) return false;
        place(std::move(v));
        return true;
    }

    Value& root_;
    std::vector<Value*> stack_;
    Value* member_ = nullptr;
    bool in_key_ = false;
    bool got_key_ = false;
};

/// Reads only as far as the first key and its value: `id` holding an integer or a string.
/// Every other event stops the parse.
struct IdVisitor {
    enum class At { start, key, value } at = At::start;
    std::optional<Id> id;

    bool visit_nil() { return false; }
    bool visit_boolean(bool) { return false; }
    bool visit_positive_integer(std::uint64_t v) {
        if (at == At::value) id = Id(v);
        return false;
    }
    bool visit_negative_integer(std::int64_t v) {
        if (at == At::value) id = Id(v);
        return false;
    }
    bool visit_float32(float) { return false; }
    bool visit_float64(double) { return false; }
    bool visit_str(const char* p, std::uint32_t n) {
        const std::string_view s(p, n);
        if (at == At::key && s == "id") {
            at = At::value;
            return true;
        }
        if (at == At::value && valid_utf8(s)) id = Id(std::string(s));
        return false;
    }
    bool visit_bin(const char*, std::uint32_t) { return false; }
    bool visit_ext(const char*, std::uint32_t) { return false; }
    bool start_array(std::uint32_t) { return false; }
    bool start_array_item() { return false; }
    bool end_array_item() { return false; }
    bool end_array() { return false; }
    bool start_map(std::uint32_t n) {
        if (at != At::start || n == 0) return false;
        at = At::key;
        return true;
    }
    bool start_map_key() { return true; }
    bool end_map_key() { return true; }
    bool start_map_value() { return true; }
    bool end_map_value() { return false; }
    bool end_map() { return false; }
    void parse_error(std::size_t, std::size_t) {}
    void insufficient_bytes(std::size_t, std::size_t) {}
};

}  // namespace

void msgpack_value(std::string& out, const Value& v) {
    Sink sink{&out};
    Packer pk(sink);
    pack_value(pk, v, 0);
}

void msgpack_map_header(std::string& out, std::size_t n) {
    Sink sink{&out};
    Packer pk(sink);
    pk.pack_map(checked_len(n, "map"));
}

void msgpack_string(std::string& out, std::string_view s) {
    Sink sink{&out};
    Packer pk(sink);
    pack_string(pk, s);
}

void msgpack_uint(std::string& out, std::uint64_t v) {
    Sink sink{&out};
    Packer pk(sink);
    pk.pack_uint64(v);
}

std::optional<Id> msgpack_id_from_head(std::string_view head) {
    IdVisitor v;
    std::size_t off = 0;
    msgpack::parse(head.data(), head.size(), off, v);
    return v.id;
}

}  // namespace detail

std::string encode_msgpack(const Value& v) {
    std::string out;
    detail::msgpack_value(out, v);
    return out;
}

Value decode_msgpack(std::string_view bytes) {
    Value root;
    detail::Builder builder(root);
    std::size_t off = 0;
    bool ok = false;
    try {
        ok = msgpack::parse(bytes.data(), bytes.size(), off, builder);
    } catch (const std::exception& e) {  // msgpack-cxx throws for some malformed input
        if (builder.error.empty()) builder.error = e.what();
    }
    if (ok && off != bytes.size()) {
        ok = false;
        builder.error = "trailing bytes after the value";
    }
    if (!ok) {
        throw DecodeError("invalid MessagePack: " +
                          (builder.error.empty() ? std::string("malformed") : builder.error));
    }
    return root;
}

}  // namespace polyglot
