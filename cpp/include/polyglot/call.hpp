// polyglot/call.hpp: what a method can do besides returning: progress, logs, cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "polyglot/envelope.hpp"
#include "polyglot/id.hpp"
#include "polyglot/value.hpp"

namespace polyglot {

namespace detail {
class Session;
class CallHost;
struct CallFactory;
}
namespace testing {
struct CallAccess;
}

/// The call a method is serving, handed to every method. Methods run on the worker's
/// thread pool; everything here may be used from any thread.
class Call {
public:
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    ~Call();

    /// A call served by no worker, for calling a method directly (unit tests, in-process
    /// use): progress and logs go nowhere, and it is never cancelled unless cancel() is used.
    static std::unique_ptr<Call> detached(std::string method = "",
                                          std::optional<Id> id = std::nullopt);

    /// The call's id as the host sent it; nothing for a notification.
    const std::optional<Id>& id() const noexcept { return id_; }

    /// The method the host called.
    const std::string& method() const noexcept { return method_; }

    /// How long the host waits for this call, in milliseconds, when it said so.
    std::optional<std::uint64_t> timeout_ms() const noexcept { return timeout_ms_; }

    /// Sends a progress message (`{"id": ..., "progress": value}`) for this call. Dropped
    /// for a notification and once the call is answered (so progress never follows the
    /// response).
    /// @throws EncodeError when `value` cannot be written, or is over the frame limit.
    void progress(const Value& value);

    /// Sends a log message to the host, which writes it with the module's name; `fields`
    /// (an object, or null for none) carries structured data.
    void log(LogLevel level, std::string_view message, const Value& fields = nullptr);

    /// Whether the host cancelled this call with `$cancel` (it was already answered
    /// `CANCELLED`; whatever the method returns now is dropped). Long methods check it
    /// between steps.
    bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

    /// Waits up to `timeout` for the call to be cancelled; returns cancelled(). A method
    /// that sleeps or polls uses it instead of std::this_thread::sleep_for.
    bool wait_cancelled_for(std::chrono::milliseconds timeout) const;

    /// Throws Error(CANCELLED) when the call was cancelled: a short way to stop.
    void throw_if_cancelled() const;

    /// Marks the call cancelled (the worker does this on `$cancel`).
    void cancel() noexcept;

private:
    friend class detail::Session;
    friend struct detail::CallFactory;
    friend struct testing::CallAccess;

    Call(detail::CallHost* host, std::optional<Id> id, std::string method,
         std::optional<std::uint64_t> timeout_ms);

    detail::CallHost* host_;  // what serves the call: a session, or a gRPC unary call
    std::optional<Id> id_;
    std::string method_;
    std::optional<std::uint64_t> timeout_ms_;
    std::atomic<bool> cancelled_{false};

    // `mutex_` orders progress before the response: the response is queued with
    // `answered_` set under it, so a progress message goes out before it or not at all.
    mutable std::mutex mutex_;
    mutable std::condition_variable cancel_cv_;
    bool answered_ = false;
};

}  // namespace polyglot
