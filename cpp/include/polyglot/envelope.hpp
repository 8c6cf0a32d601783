// polyglot/envelope.hpp: the messages of docs/protocol.md, section 4, with their encoders
// (`id` first, as the spec asks of writers) and validating decoders.
//
// Worker side: decode_request() reads what the host sends; encode_response(),
// encode_progress() and encode_log() write what the worker sends.
// Host side, for tests and tools: encode_request() and decode_message(), so a worker's
// author can play the host without one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "polyglot/codec.hpp"
#include "polyglot/id.hpp"
#include "polyglot/value.hpp"

namespace polyglot {

/// A request from the host. Without an id it is a notification, never answered.
struct Request {
    std::optional<Id> id;
    std::string method;
    Value params;  ///< null when absent
    std::optional<std::uint64_t> timestamp;
    std::optional<std::uint64_t> timeout_ms;

    bool notification() const noexcept { return !id.has_value(); }
};

/// A request frame that does not decode, or breaks a rule of the envelope. `id` is the
/// request's id when it could be read, so the worker can answer `INVALID_REQUEST`.
class InvalidRequest : public DecodeError {
public:
    InvalidRequest(const std::string& what, std::optional<Id> id)
        : DecodeError(what), id(std::move(id)) {}
    std::optional<Id> id;
};

/// Decodes and validates one request payload.
/// @throws InvalidRequest naming the field at fault.
Request decode_request(Codec codec, std::string_view payload);

/// The payload of a request (host side; for tests and tools).
/// @throws EncodeError
std::string encode_request(Codec codec, const Request& request);

/// The error object of a response.
struct ErrorObject {
    std::string code;
    std::string message;
    std::optional<Value> data;
};

/// The level of a log message.
enum class LogLevel { trace, debug, info, warn, error };

/// "trace", "debug", "info", "warn" or "error".
const char* to_string(LogLevel level) noexcept;

/// The payload of a response carrying `result` (or `error` when set). `timestamp` is
/// milliseconds since the epoch; `execution_us` the time spent in the method.
/// @throws EncodeError when the result or error data cannot be written in `codec`.
std::string encode_response(Codec codec, const Id& id, const Value* result,
                            const ErrorObject* error, std::optional<std::uint64_t> timestamp,
                            std::optional<std::uint64_t> execution_us);

/// The payload of a progress message for call `id`.
/// @throws EncodeError
std::string encode_progress(Codec codec, const Id& id, const Value& progress);

/// The payload of a log message; `fields` is left out when null.
/// @throws EncodeError
std::string encode_log(Codec codec, LogLevel level, std::string_view message,
                       const Value& fields);

/// Anything a worker sends after its handshake, as a host reads it.
struct WorkerMessage {
    enum class Kind { response, progress, log };
    Kind kind = Kind::response;
    std::optional<Id> id;                  ///< response, progress
    std::optional<Value> result;           ///< response: set for a result (null included)
    std::optional<ErrorObject> error;      ///< response: set for an error
    std::optional<std::uint64_t> timestamp;
    std::optional<std::uint64_t> execution_time;  ///< microseconds
    Value progress;                        ///< progress
    LogLevel level = LogLevel::info;       ///< log
    std::string message;                   ///< log
    std::optional<Value> fields;           ///< log
};

/// Decodes and validates one frame a worker sent after its handshake (host side).
/// @throws DecodeError naming the field at fault.
WorkerMessage decode_message(Codec codec, std::string_view payload);

/// Milliseconds since the Unix epoch: the unit of every `timestamp`.
std::uint64_t now_ms();

}  // namespace polyglot
