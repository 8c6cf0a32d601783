// Id: integer or string call ids, compared and hashed by value.
#include "polyglot/id.hpp"

#include "polyglot/codec.hpp"

namespace polyglot {

void Id::set_signed(std::int64_t v) {
    if (v >= 0) {
        v_ = static_cast<std::uint64_t>(v);
    } else {
        v_ = v;
    }
}

std::optional<Id> Id::from_value(const Value& v) {
    switch (v.type()) {
        case Value::value_t::number_unsigned: return Id(v.get<std::uint64_t>());
        case Value::value_t::number_integer: return Id(v.get<std::int64_t>());
        case Value::value_t::string: return Id(v.get<std::string>());
        default: return std::nullopt;
    }
}

Value Id::to_value() const {
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) return Value(*u);
    if (const auto* i = std::get_if<std::int64_t>(&v_)) return Value(*i);
    return Value(std::get<std::string>(v_));
}

std::string Id::to_string() const {
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) return std::to_string(*u);
    if (const auto* i = std::get_if<std::int64_t>(&v_)) return std::to_string(*i);
    try {
        return encode_json(Value(std::get<std::string>(v_)));
    } catch (const EncodeError&) {
        return "(a string id that is not UTF-8)";
    }
}

std::size_t Id::hash() const noexcept {
    if (const auto* u = std::get_if<std::uint64_t>(&v_)) return std::hash<std::uint64_t>{}(*u);
    if (const auto* i = std::get_if<std::int64_t>(&v_)) return std::hash<std::int64_t>{}(*i) ^ 0x9e37;
    return std::hash<std::string>{}(std::get<std::string>(v_));
}

}  // namespace polyglot
