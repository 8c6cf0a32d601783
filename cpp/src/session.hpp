// Session: one served stream. Frames in (on the thread that calls serve()), dispatch,
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
#include <string>
#include <unordered_map>

#include "output.hpp"
#include "polyglot/call.hpp"
#include "polyglot/envelope.hpp"
#include "polyglot/frame.hpp"
#include "polyglot/worker.hpp"
#include "thread_pool.hpp"

namespace polyglot::detail {

/// Writes one line to stderr (which the host forwards to its log), never failing.
void log_stderr(const std::string& message) noexcept;

/// A non-blocking pipe that wakes the reading thread from poll(), closed when this goes
/// away.
class WakePipe {
public:
    /// @throws std::runtime_error when no pipe can be made.
    WakePipe();
    WakePipe(const WakePipe&) = delete;
    WakePipe& operator=(const WakePipe&) = delete;
    ~WakePipe();
    int read_fd() const noexcept { return fds_[0]; }
    /// Writes one byte (a full pipe already holds a wake-up).
    void signal() const noexcept;
    /// Reads every pending byte.
    void drain() const noexcept;

private:
    int fds_[2];
};

class Session {
public:
    Session(const Worker& worker, Codec codec, std::size_t max_frame, int in_fd, int out_fd);
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

    // ---- for Call and the test hooks
    void send_progress(Call& call, const Value& progress);
    void send_log(LogLevel level, std::string_view message, const Value& fields);
    void send_raw(std::string bytes) { output_.send(std::move(bytes)); }
    Codec codec() const noexcept { return codec_; }

private:
    struct Outcome {
        bool ok = false;
        Value result;
        ErrorObject error;
    };

    void on_frame(const Frame& frame);
    void dispatch(Request&& req);
    void cancel(const Value& params);
    void start(Request&& req, const Method* method);
    void run_call(const std::shared_ptr<Call>& call, const Method* method, const Value& params);
    Value run_health();
    void complete(const std::shared_ptr<Call>& call, Outcome&& outcome, std::uint64_t took_us);
    bool running_id(const Id& id);
    void answer(const Id& id, const Outcome& outcome, std::optional<std::uint64_t> took_us,
                Call* call = nullptr);
    void answer_error(const Id& id, const char* code, std::string message);
    std::string response_frame(const Id& id, const Outcome& outcome,
                               std::optional<std::uint64_t> took_us) const;
    void one_answered();
    bool drained();
    void wake() noexcept;

    const Worker& worker_;
    const Codec codec_;
    const std::size_t limit_;
    const int in_fd_;
    Output output_;
    WakePipe wake_pipe_;

    std::mutex mutex_;
    std::condition_variable drained_cv_;
    std::unordered_map<Id, std::shared_ptr<Call>> calls_;
    std::size_t unanswered_ = 0;
    std::atomic<bool> shutting_down_{false};
    std::atomic<std::size_t> running_{0};

    // Last, so they are destroyed (joined) first: their tasks use everything above.
    ThreadPool pool_;
    ThreadPool health_pool_;
};

}  // namespace polyglot::detail
