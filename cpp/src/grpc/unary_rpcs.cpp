// The unary RPCs (docs/protocol.md, section 10): Describe, Call, CallStream, Health and
// Shutdown, for tools and simple clients. A Call runs its method on the server's call pool
// through invoke(), as a session's request does; cancelling the RPC cancels the call.
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "../call_host.hpp"
#include "../invoke.hpp"
#include "../log.hpp"
#include "polyglot/error.hpp"
#include "rpcs.hpp"

namespace polyglot::detail {

namespace {

/// One `Call` or `CallStream` RPC, shared by its reactor and the task that runs the method
/// (whichever comes last frees it). It is the call's CallHost: progress goes to the RPC.
///
/// Who ends the RPC: whoever claim()s the answer first, the method's completion or the
/// RPC's cancellation, exactly once; the other's answer is dropped.
class CallRpc : public CallHost, public std::enable_shared_from_this<CallRpc> {
public:
    explicit CallRpc(GrpcServer& server) : server_(server) {}
    virtual ~CallRpc() = default;

    /// Checks the request, then runs the call on the server's call pool or answers at once.
    void start(const v1::WorkerCallRequest& request) {
        const auto codec = request.codec().empty() ? std::optional<Codec>(Codec::json)
                                                   : parse_codec(request.codec());
        if (!codec) {
            end(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                               "codec is \"" + request.codec() +
                                   "\": expected \"json\" or \"msgpack\" (or empty for json)"));
            return;
        }
        codec_ = *codec;
        const std::size_t limit = server_.options().max_frame;
        if (request.params().size() > limit) {
            answer_error(code::FRAME_TOO_LARGE,
                         "the params are " + std::to_string(request.params().size()) +
                             " bytes, over the frame limit of " + std::to_string(limit) +
                             " bytes");
            return;
        }
        try {
            params_ = request.params().empty() ? Value(nullptr) : decode(codec_, request.params());
        } catch (const DecodeError& e) {
            end(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                               std::string("the params are not valid ") + to_string(codec_) +
                                   ": " + e.what()));
            return;
        }
        const std::string& name = request.method();
        if (!name.empty() && name[0] == '$') {
            answer_error(code::METHOD_NOT_FOUND,
                         quoted(name) + " is a reserved method, served on a Session only");
            return;
        }
        method_ = WorkerAccess::method(server_.worker(), name);
        if (method_ == nullptr) {
            answer_error(code::METHOD_NOT_FOUND, not_served(server_.worker(), name));
            return;
        }
        std::optional<std::uint64_t> timeout;
        if (request.timeout_ms() != 0) timeout = request.timeout_ms();
        auto call = CallFactory::make(this, Id(server_.next_call_id()), name, timeout);
        {
            std::lock_guard<std::mutex> lk(mutex_);
            call_ = call;
        }
        if (!server_.admit(call)) {
            answer_error(code::SHUTTING_DOWN,
                         "the worker is shutting down and takes no new calls (" + name + ")");
            return;
        }
        server_.call_pool().submit([self = shared_from_this()] { self->run(); });
    }

    /// The RPC was cancelled, or its deadline passed: cancels the call.
    void cancel() {
        std::shared_ptr<Call> call;
        {
            std::lock_guard<std::mutex> lk(mutex_);
            call = call_;
        }
        if (call) call->cancel();
        end(::grpc::Status(::grpc::StatusCode::CANCELLED, "the call was cancelled"));
    }

    // ---- CallHost
    void send_progress(Call&, const Value& progress) override {
        std::string bytes = encode(codec_, progress);
        const std::size_t limit = server_.options().max_frame;
        if (bytes.size() > limit) {
            throw EncodeError("the progress message is " + std::to_string(bytes.size()) +
                              " bytes, over the frame limit of " + std::to_string(limit) +
                              " bytes");
        }
        std::lock_guard<std::mutex> lk(mutex_);
        if (claimed_) return;  // progress never follows the answer
        deliver_progress(std::move(bytes));
    }

    void send_log(LogLevel level, std::string_view message, const Value& fields) override {
        std::string line = std::string("log ") + to_string(level) + ": " + std::string(message);
        if (!fields.is_null()) {
            try {
                line += " " + encode_json(fields);
            } catch (const EncodeError&) {
            }
        }
        log_stderr(line);
    }

    void send_raw(std::string) override {}  // no protocol stream to break
    Codec codec() const noexcept override { return codec_; }

protected:
    /// A progress event (CallStream only; Call drops progress). Called under mutex_.
    virtual void deliver_progress(std::string bytes) = 0;
    /// Ends the RPC with status OK and `response`.
    virtual void deliver(v1::WorkerCallResponse response) = 0;
    /// Ends the RPC with `status`, which is not OK.
    virtual void deliver_status(const ::grpc::Status& status) = 0;

private:
    /// Runs the method (on the call pool) and answers.
    void run() {
        if (call_->cancelled()) return;  // cancelled while it waited: answered already
        server_.running(+1);
        const auto started = std::chrono::steady_clock::now();
        const Outcome outcome = invoke(server_.worker(), method_, *call_, params_);
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        server_.running(-1);
        v1::WorkerCallResponse response = response_for(outcome);
        response.set_execution_time_us(static_cast<std::uint64_t>(took.count()));
        if (claim()) deliver(std::move(response));
    }

    /// The response carrying `outcome`, in the call's codec.
    v1::WorkerCallResponse response_for(const Outcome& outcome) const {
        v1::WorkerCallResponse response;
        const std::size_t limit = server_.options().max_frame;
        if (outcome.ok) {
            try {
                std::string bytes = encode(codec_, outcome.result);
                if (bytes.size() <= limit) {
                    response.set_result(std::move(bytes));
                    return response;
                }
                set_error(response, ErrorObject{code::FRAME_TOO_LARGE,
                                                "the result is " + std::to_string(bytes.size()) +
                                                    " bytes, over the frame limit of " +
                                                    std::to_string(limit) + " bytes",
                                                std::nullopt});
            } catch (const EncodeError& e) {
                set_error(response,
                          ErrorObject{code::INTERNAL,
                                      std::string("the result cannot be sent: ") + e.what(),
                                      std::nullopt});
            }
            return response;
        }
        try {
            set_error(response, outcome.error);
        } catch (const EncodeError& e) {
            set_error(response,
                      ErrorObject{code::INTERNAL,
                                  std::string("the error cannot be sent: ") + e.what(),
                                  std::nullopt});
        }
        return response;
    }

    /// @throws EncodeError when the error's data cannot be written in the call's codec.
    void set_error(v1::WorkerCallResponse& response, const ErrorObject& error) const {
        v1::WorkerError* out = response.mutable_error();
        out->set_code(error.code);
        out->set_message(error.message);
        if (error.data) out->set_data(encode(codec_, *error.data));
    }

    /// An answer before any method ran (METHOD_NOT_FOUND, SHUTTING_DOWN, ...).
    void answer_error(const char* code, std::string message) {
        v1::WorkerCallResponse response;
        set_error(response, ErrorObject{code, std::move(message), std::nullopt});
        if (claim()) deliver(std::move(response));
    }

    void end(const ::grpc::Status& status) {
        if (claim()) deliver_status(status);
    }

    /// Takes the right to answer; false when the call is answered already.
    bool claim() {
        std::shared_ptr<Call> call;
        {
            std::lock_guard<std::mutex> lk(mutex_);
            if (claimed_) return false;
            claimed_ = true;
            call = call_;
        }
        if (call) server_.answered(call);
        return true;
    }

    GrpcServer& server_;
    Codec codec_ = Codec::json;
    Value params_;
    const Method* method_ = nullptr;
    std::mutex mutex_;
    std::shared_ptr<Call> call_;
    bool claimed_ = false;
};

// ---------------------------------------------------------------------------- Call

class UnaryCall final : public CallRpc {
public:
    UnaryCall(GrpcServer& server, ::grpc::ServerUnaryReactor& reactor,
              v1::WorkerCallResponse* response)
        : CallRpc(server), reactor_(reactor), response_(response) {}

protected:
    void deliver_progress(std::string) override {}
    void deliver(v1::WorkerCallResponse response) override {
        *response_ = std::move(response);
        reactor_.Finish(::grpc::Status::OK);
    }
    void deliver_status(const ::grpc::Status& status) override { reactor_.Finish(status); }

private:
    ::grpc::ServerUnaryReactor& reactor_;
    v1::WorkerCallResponse* const response_;  // gRPC's, valid until OnDone
};

class UnaryCallReactor final : public ::grpc::ServerUnaryReactor {
public:
    UnaryCallReactor(GrpcServer& server, v1::WorkerCallResponse* response)
        : server_(server), rpc_(std::make_shared<UnaryCall>(server, *this, response)) {
        server.rpc_started();
    }
    void start(const v1::WorkerCallRequest& request) { rpc_->start(request); }
    void OnCancel() override { rpc_->cancel(); }
    void OnDone() override {
        server_.rpc_done();
        delete this;
    }

private:
    GrpcServer& server_;
    std::shared_ptr<UnaryCall> rpc_;
};

// ---------------------------------------------------------------------- CallStream

/// CallStream's events go out one write at a time, in order: progress, then the result,
/// then Finish (never with a write in flight).
class StreamCall final : public CallRpc {
public:
    StreamCall(GrpcServer& server, ::grpc::ServerWriteReactor<v1::WorkerCallEvent>& reactor)
        : CallRpc(server), reactor_(reactor) {}

    void on_write_done(bool ok) {
        const v1::WorkerCallEvent* next = nullptr;
        bool finish = false;
        ::grpc::Status status;
        {
            std::lock_guard<std::mutex> lk(queue_mutex_);
            queue_.pop_front();
            if (!ok) queue_.clear();  // the RPC is gone
            if (!queue_.empty()) {
                next = &queue_.front();
            } else {
                writing_ = false;
                if (finish_wanted_ && !finish_called_) {
                    finish_called_ = true;
                    finish = true;
                    status = status_;
                }
            }
        }
        if (next != nullptr) reactor_.StartWrite(next);
        if (finish) reactor_.Finish(status);
    }

protected:
    void deliver_progress(std::string bytes) override {
        v1::WorkerCallEvent event;
        event.set_progress(std::move(bytes));
        push(std::move(event), std::nullopt);
    }
    void deliver(v1::WorkerCallResponse response) override {
        v1::WorkerCallEvent event;
        *event.mutable_result() = std::move(response);
        push(std::move(event), ::grpc::Status::OK);
    }
    void deliver_status(const ::grpc::Status& status) override {
        bool finish = false;
        {
            std::lock_guard<std::mutex> lk(queue_mutex_);
            if (finish_wanted_) return;
            finish_wanted_ = true;
            status_ = status;
            if (writing_) {
                queue_.resize(1);  // the write in flight stays until it is done
            } else {
                finish_called_ = true;
                finish = true;
            }
        }
        if (finish) reactor_.Finish(status);
    }

private:
    /// Queues `event`; with `last`, the RPC then ends with that status.
    void push(v1::WorkerCallEvent event, std::optional<::grpc::Status> last) {
        const v1::WorkerCallEvent* start = nullptr;
        {
            std::lock_guard<std::mutex> lk(queue_mutex_);
            if (finish_wanted_) return;
            queue_.push_back(std::move(event));  // a deque: the front stays where it is
            if (last) {
                finish_wanted_ = true;
                status_ = *last;
            }
            if (!writing_) {
                writing_ = true;
                start = &queue_.front();
            }
        }
        if (start != nullptr) reactor_.StartWrite(start);
    }

    ::grpc::ServerWriteReactor<v1::WorkerCallEvent>& reactor_;
    std::mutex queue_mutex_;
    std::deque<v1::WorkerCallEvent> queue_;  // the front is being written while writing_
    bool writing_ = false;
    bool finish_wanted_ = false;
    bool finish_called_ = false;
    ::grpc::Status status_;
};

class StreamCallReactor final : public ::grpc::ServerWriteReactor<v1::WorkerCallEvent> {
public:
    explicit StreamCallReactor(GrpcServer& server)
        : server_(server), rpc_(std::make_shared<StreamCall>(server, *this)) {
        server.rpc_started();
    }
    void start(const v1::WorkerCallRequest& request) { rpc_->start(request); }
    void OnWriteDone(bool ok) override { rpc_->on_write_done(ok); }
    void OnCancel() override { rpc_->cancel(); }
    void OnDone() override {
        server_.rpc_done();
        delete this;
    }

private:
    GrpcServer& server_;
    std::shared_ptr<StreamCall> rpc_;
};

/// The reactor of Describe, Health and Shutdown: finished by whoever answers.
class PlainReactor final : public ::grpc::ServerUnaryReactor {
public:
    explicit PlainReactor(GrpcServer& server) : server_(server) { server.rpc_started(); }
    void OnDone() override {
        server_.rpc_done();
        delete this;
    }

private:
    GrpcServer& server_;
};

/// The Health answer for an outcome of the health check.
void fill_health(v1::WorkerHealthResponse& response, const Outcome& outcome) {
    if (!outcome.ok) {
        response.set_status("unhealthy");
        response.set_reason(outcome.error.message);
        return;
    }
    const Value& r = outcome.result;
    const auto status = r.find("status");
    response.set_status(status != r.end() && status->is_string() ? status->get<std::string>()
                                                                 : "ok");
    const auto reason = r.find("reason");
    if (reason != r.end() && reason->is_string()) response.set_reason(reason->get<std::string>());
}

}  // namespace

::grpc::ServerUnaryReactor* describe(GrpcServer& server, ::grpc::CallbackServerContext*,
                                     v1::DescribeResponse* response) {
    const Handshake h = server.handshake(server.options().codec);
    response->set_protocol(static_cast<std::uint32_t>(h.protocol));
    response->set_module(h.module);
    response->set_version(h.version);
    response->set_language(h.language.value_or(""));
    for (const auto& m : h.methods) response->add_methods(m);
    response->set_max_concurrency(static_cast<std::uint32_t>(h.max_concurrency));
    response->set_codec(to_string(h.codec));
    response->set_pid(static_cast<std::uint32_t>(h.pid.value_or(0)));
    auto* reactor = new PlainReactor(server);
    reactor->Finish(::grpc::Status::OK);
    return reactor;
}

::grpc::ServerUnaryReactor* start_call(GrpcServer& server, ::grpc::CallbackServerContext*,
                                       const v1::WorkerCallRequest* request,
                                       v1::WorkerCallResponse* response) {
    auto* reactor = new UnaryCallReactor(server, response);
    reactor->start(*request);
    return reactor;
}

::grpc::ServerWriteReactor<v1::WorkerCallEvent>* start_call_stream(
    GrpcServer& server, ::grpc::CallbackServerContext*, const v1::WorkerCallRequest* request) {
    auto* reactor = new StreamCallReactor(server);
    reactor->start(*request);
    return reactor;
}

::grpc::ServerUnaryReactor* health(GrpcServer& server, ::grpc::CallbackServerContext*,
                                   v1::WorkerHealthResponse* response) {
    auto* reactor = new PlainReactor(server);
    if (server.requested()) {  // as `$health` is answered SHUTTING_DOWN
        response->set_status("unhealthy");
        response->set_reason("the worker is shutting down");
        reactor->Finish(::grpc::Status::OK);
        return reactor;
    }
    // The check is the worker's code and may block: it runs on the health thread, outside
    // the call slots, as `$health` does.
    server.health_pool().submit([&server, reactor, response] {
        const auto call = Call::detached("$health");
        fill_health(*response, invoke(server.worker(), nullptr, *call, nullptr));
        reactor->Finish(::grpc::Status::OK);
    });
    return reactor;
}

::grpc::ServerUnaryReactor* shutdown(GrpcServer& server, ::grpc::CallbackServerContext*) {
    // Counted in flight first, so the exit it may set off waits for this answer.
    auto* reactor = new PlainReactor(server);
    server.request();  // from now on no new calls, on any session
    reactor->Finish(::grpc::Status::OK);
    return reactor;
}

}  // namespace polyglot::detail
