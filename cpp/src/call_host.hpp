// CallHost: what serves a Call: a Session (stdio, socket, a gRPC `Session` stream), or a
// gRPC unary `Call`/`CallStream`. CallFactory makes Calls for hosts that are not a
// Session (Call's constructor is private).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "polyglot/call.hpp"
#include "polyglot/codec.hpp"

namespace polyglot::detail {

class CallHost {
public:
    /// Sends progress for `call` (which has an id): see Call::progress().
    /// @throws EncodeError when it cannot be written or is over the frame limit.
    virtual void send_progress(Call& call, const Value& progress) = 0;
    /// Sends a log message: see Call::log().
    virtual void send_log(LogLevel level, std::string_view message, const Value& fields) = 0;
    /// TEST ONLY (polyglot/testing.hpp): raw bytes into the protocol stream. A host without
    /// one drops them.
    virtual void send_raw(std::string bytes) = 0;
    /// The codec of the host's stream.
    virtual Codec codec() const noexcept = 0;

protected:
    ~CallHost() = default;
};

struct CallFactory {
    static std::shared_ptr<Call> make(CallHost* host, std::optional<Id> id, std::string method,
                                      std::optional<std::uint64_t> timeout_ms) {
        return std::shared_ptr<Call>(
            new Call(host, std::move(id), std::move(method), timeout_ms));
    }
};

}  // namespace polyglot::detail
