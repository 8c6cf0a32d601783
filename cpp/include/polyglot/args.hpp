// polyglot/args.hpp: reading a method's arguments out of its params.
//
// By convention params are an array of positional arguments or an object of named ones.
// These helpers accept both: the `index`-th element of an array, or the member `name` of an
// object; params that are neither (a lone string, number, ...) are argument 0. Every
// failure is an Error(INVALID_PARAMS) that names the argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "polyglot/error.hpp"
#include "polyglot/value.hpp"

namespace polyglot {

/// The argument at `index` / called `name`.
/// @throws Error INVALID_PARAMS "missing argument `name`" when it is absent.
const Value& arg(const Value& params, std::size_t index, std::string_view name);

/// The argument, or nullptr when it is absent or null.
const Value* opt_arg(const Value& params, std::size_t index, std::string_view name) noexcept;

/// The argument as a string. @throws Error INVALID_PARAMS when missing or not a string.
const std::string& arg_string(const Value& params, std::size_t index, std::string_view name);

/// The argument as a signed 64-bit integer.
/// @throws Error INVALID_PARAMS when missing, not an integer, or out of range.
std::int64_t arg_int(const Value& params, std::size_t index, std::string_view name);

/// The argument as an unsigned 64-bit integer.
/// @throws Error INVALID_PARAMS when missing, not a non-negative integer.
std::uint64_t arg_uint(const Value& params, std::size_t index, std::string_view name);

/// The argument as a double (integers are converted).
/// @throws Error INVALID_PARAMS when missing or not a number.
double arg_number(const Value& params, std::size_t index, std::string_view name);

/// Checks that params hold no arguments beyond `names` (the method's arguments in
/// positional order): no more array elements, no unknown object members, and no lone value
/// for a method that takes none.
/// @throws Error INVALID_PARAMS naming the method and what is extra.
void check_params(const Value& params, std::string_view method,
                  std::initializer_list<std::string_view> names);

}  // namespace polyglot
