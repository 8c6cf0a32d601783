// Session: one served stream, whatever carries it (an Input and a Sink: stdio, the host's
// socket, a gRPC `Session` RPC). Frames in (on the thread that calls serve()), dispatch,
// calls in flight on the thread pool, frames out through Output. Each call is answered when
// it finishes, so answers leave in completion order.
//
// Who answers a call: whoever removes it from `calls_` (its completion, or `$cancel`),
// exactly once. `unanswered_` counts calls and notifications not yet answered/finished;
// after `$shutdown` the session ends when it reaches zero. `running_` counts tasks whose
// method code has not returned: a cancelled call is answered at once but may still run.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "call_host.hpp"
#include "invoke.hpp"
#include "output.hpp"
#include "polyglot/call.hpp"
#include "polyglot/envelope.hpp"
#include "polyglot/frame.hpp"
#include "polyglot/worker.hpp"
#include "thread_pool.hpp"
#include "transport.hpp"

namespace polyglot::detail {

/// Whether the worker took `$shutdown` (docs/protocol.md, section 5). A stdio or socket
/// worker has one session and one of these; a gRPC worker's sessions share one, so
/// `$shutdown` on any session stops them all (section 10).
class ShutdownSignal {
public:
    virtual ~ShutdownSignal() = default;
    bool requested() const noexcept { return requested_.load(); }
    /// Sets it; the first time, calls on_requested() (on the calling thread).
    void request() {
        if (!requested_.exchange(true)) on_requested();
    }

protected:
    /// Tells whoever else must know (the gRPC server wakes its other sessions).
    virtual void on_requested() {}

private:
    std::atomic<bool> requested_{false};
};

/// How a session is set up.
struct SessionConfig {
    Codec codec = Codec::json;
    std::size_t max_frame = kDefaultMaxFrame;
    /// Added to the handshake: a gRPC worker's `"transport"` and `"address"`.
    std::optional<std::string> transport;
    std::optional<std::string> address;
    /// Shared with the worker's other sessions (gRPC); null: the session has its own.
    ShutdownSignal* shutdown = nullptr;
};

class Session final : public CallHost {
public:
    /// A session reading `input` and writing `output` (neither owned; both must outlive it).
    Session(const Worker& worker, const SessionConfig& config, Input& input, Sink& output);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session();

    /// Writes the handshake and serves until the input ends, `$shutdown` is done, or the
    /// output fails.
    Ended serve();

    /// After serve() ended by input_closed: marks every call cancelled and drops their
    /// answers.
    void abandon();

    /// Whether method code still runs (a call or notification that has not returned).
    bool busy() const noexcept { return running_.load() > 0; }

    /// Waits up to `timeout` for method code to return; returns !busy().
    bool wait_idle(std::chrono::milliseconds timeout);

    /// Stops writing: waits up to `timeout` for what is queued to be written.
    bool finish_output(std::chrono::milliseconds timeout) { return output_.close(timeout); }

    /// Makes serve() recheck its state: another session took `$shutdown`.
    void wake() noexcept;

    // ---- CallHost: for Call and the test hooks
    void send_progress(Call& call, const Value& progress) override;
    void send_log(LogLevel level, std::string_view message, const Value& fields) override;
    void send_raw(std::string bytes) override { output_.send(std::move(bytes)); }
    Codec codec() const noexcept override { return codec_; }

private:
    void on_frame(const Frame& frame);
    void dispatch(Request&& req);
    void cancel(const Value& params);
    void start(Request&& req, const Method* method);
    void run_call(const std::shared_ptr<Call>& call, const Method* method, const Value& params);
    void complete(const std::shared_ptr<Call>& call, Outcome&& outcome, std::uint64_t took_us);
    bool running_id(const Id& id);
    void answer(const Id& id, const Outcome& outcome, std::optional<std::uint64_t> took_us,
                Call* call = nullptr);
    void answer_error(const Id& id, const char* code, std::string message);
    std::string response_frame(const Id& id, const Outcome& outcome,
                               std::optional<std::uint64_t> took_us) const;
    void one_answered();
    bool drained();

    const Worker& worker_;
    const Codec codec_;
    const std::size_t limit_;
    const std::optional<std::string> transport_;
    const std::optional<std::string> address_;
    Input& input_;
    std::unique_ptr<ShutdownSignal> own_shutdown_;  // when the config names none
    ShutdownSignal& shutdown_;
    Output output_;

    std::mutex mutex_;
    std::condition_variable drained_cv_;
    std::unordered_map<Id, std::shared_ptr<Call>> calls_;
    std::size_t unanswered_ = 0;
    std::atomic<std::size_t> running_{0};

    // Last, so they are destroyed (joined) first: their tasks use everything above.
    ThreadPool pool_;
    ThreadPool health_pool_;
};

}  // namespace polyglot::detail
