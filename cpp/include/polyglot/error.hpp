// polyglot/error.hpp: the error a method throws to fail its call, and the protocol's error
// codes (docs/protocol.md, section 6).
#pragma once

#include <stdexcept>
#include <string>

#include "polyglot/value.hpp"

namespace polyglot {

/// The error codes of the protocol. Methods may use their own UPPER_SNAKE codes too.
namespace code {
/// The worker does not serve this method.
inline constexpr const char* METHOD_NOT_FOUND = "METHOD_NOT_FOUND";
/// The params do not fit the method.
inline constexpr const char* INVALID_PARAMS = "INVALID_PARAMS";
/// The request is not a valid envelope.
inline constexpr const char* INVALID_REQUEST = "INVALID_REQUEST";
/// The method failed unexpectedly (an exception that is not a polyglot::Error).
inline constexpr const char* INTERNAL = "INTERNAL";
/// The call was cancelled with `$cancel`.
inline constexpr const char* CANCELLED = "CANCELLED";
/// The message would exceed the frame size limit.
inline constexpr const char* FRAME_TOO_LARGE = "FRAME_TOO_LARGE";
/// The worker got `$shutdown` and takes no new calls.
inline constexpr const char* SHUTTING_DOWN = "SHUTTING_DOWN";
/// `$health`: the worker is running but unhealthy.
inline constexpr const char* UNHEALTHY = "UNHEALTHY";
/// This implementation announces the method but does not serve it (a fallback that
/// implements part of a module): the host sends the call on down the fallback chain.
inline constexpr const char* NOT_SUPPORTED = "NOT_SUPPORTED";
}  // namespace code

/// Thrown by a method to fail its call with this error object: `{code, message, data?}`.
/// Any other exception a method throws becomes an `INTERNAL` error.
///
///     throw polyglot::Error{polyglot::code::INVALID_PARAMS, "upper takes one string"};
class Error : public std::runtime_error {
public:
    /// An error with a code, a message, and optional details for programs (null: none).
    Error(std::string code, std::string message, Value data = nullptr);

    /// `INVALID_PARAMS` with `message`.
    static Error invalid_params(std::string message);

    std::string code;     ///< a code from polyglot::code or the method's own UPPER_SNAKE code
    std::string message;  ///< for people
    Value data;           ///< details for programs; null means none
};

}  // namespace polyglot
