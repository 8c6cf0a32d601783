// polyglot/id.hpp: a call's id, an integer or a string, echoed verbatim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "polyglot/value.hpp"

namespace polyglot {

/// A call id: a signed or unsigned 64-bit integer, or a string. Workers echo it verbatim:
/// same type, same value. A non-negative integer is always held unsigned, so 7 read as
/// int64 and 7 read as uint64 are the same id.
class Id {
public:
    /// An integer id (held unsigned when non-negative): `Id(7)`, `Id(-1)`, `Id(UINT64_MAX)`.
    template <typename T,
              std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    explicit Id(T v) {
        if constexpr (std::is_signed_v<T>) {
            set_signed(static_cast<std::int64_t>(v));
        } else {
            v_ = static_cast<std::uint64_t>(v);
        }
    }
    /// A string id.
    explicit Id(std::string v) : v_(std::move(v)) {}
    explicit Id(const char* v) : v_(std::string(v)) {}

    /// The id held by `v`, or nothing when `v` is not an integer or a string.
    static std::optional<Id> from_value(const Value& v);

    /// The id as a value (unsigned, signed or string).
    Value to_value() const;

    bool is_string() const noexcept { return std::holds_alternative<std::string>(v_); }

    /// For messages: integers as digits, strings JSON-quoted.
    std::string to_string() const;

    friend bool operator==(const Id& a, const Id& b) { return a.v_ == b.v_; }
    friend bool operator!=(const Id& a, const Id& b) { return !(a == b); }

    /// A hash of the id, for unordered containers.
    std::size_t hash() const noexcept;

private:
    void set_signed(std::int64_t v);

    std::variant<std::uint64_t, std::int64_t, std::string> v_;
};

}  // namespace polyglot

template <>
struct std::hash<polyglot::Id> {
    std::size_t operator()(const polyglot::Id& id) const noexcept { return id.hash(); }
};
