// Session: reading, dispatch, `$health`, `$cancel`, `$shutdown`, answering (see
// session.hpp).
#include "session.hpp"

#include <thread>

#include "envelope_impl.hpp"
#include "log.hpp"
#include "polyglot/error.hpp"

namespace polyglot::detail {

namespace {

/// While waiting for calls to drain after the input ended, how often the output's health
/// is rechecked (a broken output ends the wait): short enough to notice promptly.
constexpr std::chrono::milliseconds kDrainRecheck{100};

}  // namespace

Session::Session(const Worker& worker, const SessionConfig& config, Input& input, Sink& output)
    : worker_(worker),
      codec_(config.codec),
      limit_(config.max_frame),
      transport_(config.transport),
      address_(config.address),
      input_(input),
      own_shutdown_(config.shutdown == nullptr ? std::make_unique<ShutdownSignal>() : nullptr),
      shutdown_(config.shutdown == nullptr ? *own_shutdown_ : *config.shutdown),
      output_(output),
      pool_(worker.max_concurrency()),
      health_pool_(1) {
    output_.on_broken([this] {
        log_stderr("writing to the host failed (it is gone); stopping");
        wake();
    });
}

Session::~Session() = default;

void Session::wake() noexcept {
    input_.wake();
    drained_cv_.notify_all();
}

bool Session::drained() {
    std::lock_guard<std::mutex> lk(mutex_);
    return unanswered_ == 0;
}

Ended Session::serve() {
    output_.start();
    Handshake handshake = worker_.handshake(codec_);
    handshake.transport = transport_;
    handshake.address = address_;
    output_.send(handshake.to_line());
    FrameReader reader(codec_, limit_);
    for (;;) {
        if (output_.broken()) return Ended::output_failed;
        if (shutdown_.requested() && drained()) return Ended::shutdown;
        const auto space = reader.read_buf();
        const ReadResult got = input_.read(space.data, space.size);
        if (got.kind == ReadResult::Kind::woken) continue;
        if (got.kind == ReadResult::Kind::eof) {
            if (const auto cut = reader.finish()) {
                log_stderr("the input ended inside a frame (" + std::to_string(*cut) +
                           " bytes of it)");
            }
            if (!shutdown_.requested()) return Ended::input_closed;
            // After `$shutdown` the host may close the input at once: still drain.
            std::unique_lock<std::mutex> lk(mutex_);
            while (unanswered_ > 0 && !output_.broken()) drained_cv_.wait_for(lk, kDrainRecheck);
            return output_.broken() ? Ended::output_failed : Ended::shutdown;
        }
        reader.filled(got.size);
        while (const auto frame = reader.next_frame()) {
            try {
                on_frame(*frame);
            } catch (const std::exception& e) {  // out of memory, a pool that cannot start, ...
                log_stderr(std::string("a request could not be handled: ") + e.what());
            }
        }
    }
}

bool Session::wait_idle(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (busy() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return !busy();
}

void Session::abandon() {
    std::lock_guard<std::mutex> lk(mutex_);
    for (auto& entry : calls_) entry.second->cancel();
    calls_.clear();
}

void Session::on_frame(const Frame& frame) {
    if (frame.kind == Frame::Kind::too_large) {
        if (frame.id) {
            answer_error(*frame.id, code::FRAME_TOO_LARGE,
                         "the request is " + std::to_string(frame.size) +
                             " bytes, over the frame limit of " + std::to_string(limit_) +
                             " bytes");
        } else {
            log_stderr("dropped a " + std::to_string(frame.size) +
                       "-byte request over the frame limit (no id readable)");
        }
        return;
    }
    Request req;
    try {
        req = decode_request(codec_, frame.data);
    } catch (const InvalidRequest& e) {
        if (e.id) {
            answer_error(*e.id, code::INVALID_REQUEST, e.what());
        } else {
            log_stderr(std::string("dropped an invalid request (no id readable): ") + e.what());
        }
        return;
    }
    dispatch(std::move(req));
}

void Session::dispatch(Request&& req) {
    const std::string& method = req.method;
    if (method == "$cancel") {
        cancel(req.params);
        if (req.id) answer(*req.id, Outcome{true, nullptr, {}}, std::nullopt);
        return;
    }
    if (method == "$shutdown") {
        if (req.id) answer(*req.id, Outcome{true, nullptr, {}}, std::nullopt);
        shutdown_.request();
        return;
    }
    if (shutdown_.requested()) {
        if (req.id) {
            answer_error(*req.id, code::SHUTTING_DOWN,
                         "the worker is shutting down and takes no new calls (" + method + ")");
        }
        return;
    }
    if (method == "$health") {
        if (!req.id) return;
        if (running_id(*req.id)) {
            answer_error(*req.id, code::INVALID_REQUEST,
                         "id " + req.id->to_string() + " is already in use by a call that is still running");
            return;
        }
        if (!worker_.health_) {
            answer(*req.id, Outcome{true, Value{{"status", "ok"}}, {}}, 0);
            return;
        }
        start(std::move(req), nullptr);
        return;
    }
    if (!method.empty() && method[0] == '$') {
        if (req.id) {
            answer_error(*req.id, code::METHOD_NOT_FOUND,
                         quoted(method) + " is not a reserved method this worker knows");
        }
        return;
    }
    const Method* const fn = WorkerAccess::method(worker_, method);
    if (fn == nullptr) {
        if (req.id) {
            answer_error(*req.id, code::METHOD_NOT_FOUND, not_served(worker_, method));
        } else {
            log_stderr("dropped a notification of unknown method " + quoted(method));
        }
        return;
    }
    if (req.id && running_id(*req.id)) {
        answer_error(*req.id, code::INVALID_REQUEST,
                     "id " + req.id->to_string() + " is already in use by a call that is still running");
        return;
    }
    start(std::move(req), fn);
}

bool Session::running_id(const Id& id) {
    std::lock_guard<std::mutex> lk(mutex_);
    return calls_.count(id) != 0;
}

void Session::cancel(const Value& params) {
    if (!params.is_object()) return;
    const auto target = params.find("id");
    if (target == params.end()) return;
    const auto id = Id::from_value(*target);
    if (!id) return;
    std::shared_ptr<Call> call;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        const auto it = calls_.find(*id);
        if (it == calls_.end()) return;  // unknown, or already answered
        call = std::move(it->second);
        calls_.erase(it);
    }
    call->cancel();
    Outcome out;
    out.error = ErrorObject{code::CANCELLED, "cancelled by the host", std::nullopt};
    answer(*id, out, std::nullopt, call.get());
    one_answered();
}

void Session::start(Request&& req, const Method* method) {
    std::shared_ptr<Call> call(new Call(this, req.id, req.method, req.timeout_ms));
    {
        std::lock_guard<std::mutex> lk(mutex_);
        if (req.id) calls_.emplace(*req.id, call);
        ++unanswered_;
    }
    ++running_;
    auto task = [this, call, method, params = std::move(req.params)] {
        run_call(call, method, params);
        --running_;
    };
    if (method == nullptr) {
        health_pool_.submit(std::move(task));
    } else {
        pool_.submit(std::move(task));
    }
}

void Session::run_call(const std::shared_ptr<Call>& call, const Method* method,
                       const Value& params) {
    // A call cancelled while it waited for a thread was answered already: do not start it.
    if (call->cancelled()) return;
    const auto started = std::chrono::steady_clock::now();
    Outcome out = invoke(worker_, method, *call, params);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    complete(call, std::move(out), static_cast<std::uint64_t>(took.count()));
}

void Session::complete(const std::shared_ptr<Call>& call, Outcome&& outcome,
                       std::uint64_t took_us) {
    if (!call->id()) {  // a notification: nobody to answer
        if (!outcome.ok) {
            log_stderr("notification " + call->method() + " failed: " + outcome.error.code + ": " +
                       outcome.error.message);
        }
        one_answered();
        return;
    }
    bool mine = false;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        const auto it = calls_.find(*call->id());
        if (it != calls_.end() && it->second == call) {
            calls_.erase(it);
            mine = true;
        }
    }
    if (!mine) return;  // `$cancel` answered it, or the input ended
    answer(*call->id(), outcome, took_us, call.get());
    one_answered();
}

void Session::one_answered() {
    bool now_drained = false;
    {
        std::lock_guard<std::mutex> lk(mutex_);
        --unanswered_;
        now_drained = unanswered_ == 0;
    }
    if (now_drained && shutdown_.requested()) wake();
}

std::string Session::response_frame(const Id& id, const Outcome& outcome,
                                     std::optional<std::uint64_t> took_us) const {
    std::size_t size = 0;
    const auto encode = [&](const Value* result, const ErrorObject* error) {
        return framed(
            codec_,
            [&](std::string& out) { write_response(codec_, out, id, result, error, now_ms(), took_us); },
            size);
    };
    std::string frame;
    try {
        frame = outcome.ok ? encode(&outcome.result, nullptr) : encode(nullptr, &outcome.error);
    } catch (const EncodeError& e) {
        const ErrorObject err{code::INTERNAL,
                              std::string("the ") + (outcome.ok ? "result" : "error") +
                                  " cannot be sent: " + e.what(),
                              std::nullopt};
        frame = encode(nullptr, &err);
    }
    if (size > limit_) {
        const ErrorObject err{code::FRAME_TOO_LARGE,
                              "the response is " + std::to_string(size) +
                                  " bytes, over the frame limit of " + std::to_string(limit_) +
                                  " bytes",
                              std::nullopt};
        frame = encode(nullptr, &err);
    }
    return frame;
}

void Session::answer(const Id& id, const Outcome& outcome, std::optional<std::uint64_t> took_us,
                     Call* call) {
    std::string frame;
    try {
        frame = response_frame(id, outcome, took_us);
    } catch (const std::exception& e) {  // even the error response cannot be written
        log_stderr("the answer to call " + id.to_string() + " could not be written: " + e.what());
        return;
    }
    if (call == nullptr) {
        output_.send(std::move(frame));
        return;
    }
    std::lock_guard<std::mutex> lk(call->mutex_);
    if (call->answered_) return;
    call->answered_ = true;
    output_.send(std::move(frame));
}

void Session::answer_error(const Id& id, const char* code, std::string message) {
    Outcome out;
    out.error = ErrorObject{code, std::move(message), std::nullopt};
    answer(id, out, std::nullopt);
}

void Session::send_progress(Call& call, const Value& progress) {
    std::size_t size = 0;
    std::string frame = framed(
        codec_, [&](std::string& out) { write_progress(codec_, out, *call.id(), progress); }, size);
    if (size > limit_) {
        throw EncodeError("the progress message is " + std::to_string(size) +
                          " bytes, over the frame limit of " + std::to_string(limit_) + " bytes");
    }
    std::lock_guard<std::mutex> lk(call.mutex_);
    if (call.answered_) return;
    output_.send(std::move(frame));
}

void Session::send_log(LogLevel level, std::string_view message, const Value& fields) {
    std::size_t size = 0;
    std::string frame;
    try {
        frame = framed(
            codec_, [&](std::string& out) { write_log(codec_, out, level, message, fields); }, size);
    } catch (const EncodeError& e) {
        log_stderr(std::string("a log message could not be sent (") + e.what() +
                   "): " + std::string(message));
        return;
    }
    if (size > limit_) {
        log_stderr("a log message over the frame limit was dropped: " +
                   std::string(message.substr(0, 200)));
        return;
    }
    output_.send(std::move(frame));
}

}  // namespace polyglot::detail
