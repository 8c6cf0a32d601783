// Call: progress, logs and cancellation for one running method.
#include "polyglot/call.hpp"

#include "polyglot/error.hpp"
#include "call_host.hpp"

namespace polyglot {

Call::Call(detail::CallHost* host, std::optional<Id> id, std::string method,
           std::optional<std::uint64_t> timeout_ms)
    : host_(host), id_(std::move(id)), method_(std::move(method)), timeout_ms_(timeout_ms) {}

Call::~Call() = default;

std::unique_ptr<Call> Call::detached(std::string method, std::optional<Id> id) {
    return std::unique_ptr<Call>(new Call(nullptr, std::move(id), std::move(method), std::nullopt));
}

void Call::progress(const Value& value) {
    if (host_ == nullptr || !id_) return;
    host_->send_progress(*this, value);
}

void Call::log(LogLevel level, std::string_view message, const Value& fields) {
    if (host_ == nullptr) return;
    host_->send_log(level, message, fields);
}

bool Call::wait_cancelled_for(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lk(mutex_);
    cancel_cv_.wait_for(lk, timeout, [this] { return cancelled(); });
    return cancelled();
}

void Call::throw_if_cancelled() const {
    if (cancelled()) throw Error(code::CANCELLED, "cancelled by the host");
}

void Call::cancel() noexcept {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        cancelled_.store(true, std::memory_order_release);
    }
    cancel_cv_.notify_all();
}

}  // namespace polyglot
