// The `Session` RPC (docs/protocol.md, section 10): the protocol of sections 2-8 as a
// stream of chunks, served by the same Session engine as stdio. SessionStream is the
// engine's Input and Sink over the gRPC stream; SessionReactor is the stream's callback
// reactor; each session runs its engine on a thread of its own, as stdio runs it on the
// main thread.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../log.hpp"
#include "rpcs.hpp"

namespace polyglot::detail {

namespace {

/// How long a session that ends waits for its last frames to reach the host: long enough
/// for any live host, bounded so a host that stopped reading cannot hold the thread.
constexpr std::chrono::milliseconds kSessionFlushTimeout{2000};

/// How many bytes of chunks read ahead a session holds before it stops reading until its
/// engine has taken some: enough that gRPC delivers chunk after chunk while the session's
/// thread works, few enough that a host that writes faster than the worker reads is held
/// back by HTTP/2 flow control instead of buffered here.
constexpr std::size_t kReadAheadBytes = 1u << 20;

/// The engine's Input and Sink over one `Session` RPC.
///
/// Reads: one StartRead at a time, the next started as soon as one is done (on gRPC's
/// thread) while less than kReadAheadBytes wait in `chunks_`, else by read() once it has
/// taken enough. read() takes all that is queued, and the session's thread is woken only
/// for a chunk that finds the queue empty: a host sends a chunk per write, often one small
/// request each, so a chunk must cost neither a thread handoff nor a round trip between
/// gRPC's thread and the session's before the next is read.
///
/// Writes: Output's writer thread hands over a batch (everything queued while the last
/// write was in flight), which goes out in chunks of at most kMaxChunkBytes with one write
/// in flight at a time.
///
/// The end: finish() ends the RPC once no write is in flight (gRPC forbids Finish with a
/// write outstanding; one stuck on a host that stopped reading is cancelled). After
/// Finish the reactor is never touched again: OnDone deletes it.
class SessionStream final : public Input, public Sink {
public:
    SessionStream(::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk>& reactor,
                  ::grpc::CallbackServerContext* ctx)
        : reactor_(reactor), ctx_(ctx) {}

    // ---- Input (the session's thread)
    ReadResult read(char* buf, std::size_t size) override {
        std::unique_lock<std::mutex> lk(mutex_);
        read_cv_.wait(lk, [this] { return woken_ || eof_ || !chunks_.empty(); });
        if (woken_) {
            woken_ = false;
            return {ReadResult::Kind::woken, 0};
        }
        if (chunks_.empty()) return {ReadResult::Kind::eof, 0};
        std::size_t n = 0;
        while (n < size && !chunks_.empty()) {  // as much as fits, across chunks
            const std::string& chunk = chunks_.front();
            const std::size_t take = std::min(size - n, chunk.size() - taken_);
            std::memcpy(buf + n, chunk.data() + taken_, take);
            n += take;
            taken_ += take;
            if (taken_ == chunk.size()) {
                buffered_ -= chunk.size();
                chunks_.pop_front();
                taken_ = 0;
            }
        }
        const bool resume =
            read_paused_ && !eof_ && !finish_wanted_ && buffered_ < kReadAheadBytes;
        if (resume) read_paused_ = false;
        lk.unlock();
        if (resume) reactor_.StartRead(&in_);
        return {ReadResult::Kind::data, n};
    }

    void wake() noexcept override {
        {
            std::lock_guard<std::mutex> lk(mutex_);
            woken_ = true;
        }
        read_cv_.notify_one();
    }

    // ---- Sink (Output's writer thread)
    bool write(std::vector<std::string>& batch) override {
        std::string chunk;
        for (const std::string& frame : batch) {
            std::string_view rest(frame);
            while (!rest.empty()) {
                const std::size_t take = std::min(kMaxChunkBytes - chunk.size(), rest.size());
                chunk.append(rest.substr(0, take));
                rest.remove_prefix(take);
                if (chunk.size() == kMaxChunkBytes) {
                    if (!write_chunk(std::move(chunk))) return false;
                    chunk.clear();
                }
            }
        }
        return chunk.empty() || write_chunk(std::move(chunk));
    }

    // ---- the reactor's events
    void start_reading() { reactor_.StartRead(&in_); }

    void on_read_done(bool ok) {
        bool again = false;
        bool wake = false;
        {
            std::lock_guard<std::mutex> lk(mutex_);
            if (!ok) {
                eof_ = true;  // the host closed its side, or the RPC is cancelled
                wake = true;
            } else {
                if (!in_.data().empty()) {
                    wake = chunks_.empty();  // else read() has yet to take what is queued
                    buffered_ += in_.data().size();
                    chunks_.push_back(std::move(*in_.mutable_data()));
                    in_.mutable_data()->clear();
                }
                again = buffered_ < kReadAheadBytes && !finish_wanted_;
                read_paused_ = !again;
            }
        }
        if (wake) read_cv_.notify_one();
        if (again) reactor_.StartRead(&in_);
    }

    void on_write_done(bool ok) {
        bool finish = false;
        ::grpc::Status status;
        {
            std::lock_guard<std::mutex> lk(mutex_);
            writing_ = false;
            if (!ok) write_failed_ = true;
            if (finish_wanted_ && !finish_called_) {
                finish_called_ = true;
                finish = true;
                status = status_;
            }
        }
        write_cv_.notify_one();
        if (finish) reactor_.Finish(status);
    }

    void on_cancel() {
        {
            std::lock_guard<std::mutex> lk(mutex_);
            eof_ = true;
        }
        read_cv_.notify_one();
    }

    /// Ends the RPC with `status` (once; see the class comment).
    void finish(const ::grpc::Status& status) {
        bool now = false;
        bool cancel = false;
        {
            std::lock_guard<std::mutex> lk(mutex_);
            if (finish_wanted_) return;
            finish_wanted_ = true;
            status_ = status;
            if (writing_) {
                cancel = true;  // on_write_done() finishes
            } else {
                finish_called_ = true;
                now = true;
            }
        }
        if (cancel) ctx_->TryCancel();
        if (now) reactor_.Finish(status);
    }

private:
    /// Writes one chunk and waits for it to be written; false when the RPC is gone.
    bool write_chunk(std::string data) {
        {
            std::lock_guard<std::mutex> lk(mutex_);
            if (finish_wanted_ || write_failed_) return false;
            out_.set_data(std::move(data));
            writing_ = true;
        }
        reactor_.StartWrite(&out_);
        std::unique_lock<std::mutex> lk(mutex_);
        write_cv_.wait(lk, [this] { return !writing_; });
        return !write_failed_;
    }

    ::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk>& reactor_;
    ::grpc::CallbackServerContext* const ctx_;

    std::mutex mutex_;
    std::condition_variable read_cv_;   // read() waits on it (the session's thread)
    std::condition_variable write_cv_;  // write_chunk() waits on it (Output's writer thread)
    v1::Chunk in_;                      // filled by the read in flight
    std::deque<std::string> chunks_;    // chunks read, being handed to read()
    std::size_t taken_ = 0;             // bytes of chunks_.front() handed over
    std::size_t buffered_ = 0;          // bytes in chunks_
    bool read_paused_ = false;          // no read in flight: read() starts the next
    bool eof_ = false;
    bool woken_ = false;
    v1::Chunk out_;         // the chunk being written
    bool writing_ = false;
    bool write_failed_ = false;
    bool finish_wanted_ = false;
    bool finish_called_ = false;
    ::grpc::Status status_;
};

/// One session's engine, from its handshake to its end: what the main thread does for
/// stdio, on a thread of its own.
void run_session(GrpcServer& server, const std::shared_ptr<SessionStream>& stream, Codec codec) {
    SessionConfig config;
    config.codec = codec;
    config.max_frame = server.options().max_frame;
    config.transport = "grpc";
    config.address = server.address();
    config.shutdown = &server;
    std::unique_ptr<Session> session;
    try {
        session = std::make_unique<Session>(server.worker(), config, *stream, *stream);
    } catch (const std::exception& e) {  // no thread, out of memory
        log_stderr(std::string("cannot start a session: ") + e.what());
        stream->finish(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()));
        return;
    }
    server.add_session(*session);
    Ended ended = Ended::output_failed;
    try {
        ended = session->serve();
    } catch (const std::exception& e) {
        log_stderr(std::string("a session failed: ") + e.what());
    }
    // The host ended the RPC (or it broke): its calls are cancelled, their answers dropped,
    // as when stdin ends. The worker keeps running.
    if (ended != Ended::shutdown) session->abandon();
    session->finish_output(kSessionFlushTimeout);
    stream->finish(ended == Ended::output_failed
                       ? ::grpc::Status(::grpc::StatusCode::CANCELLED, "the session broke")
                       : ::grpc::Status::OK);
    server.remove_session(*session);
    session.reset();  // waits for method code still running (told it is cancelled)
}

class SessionReactor final : public ::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk> {
public:
    SessionReactor(GrpcServer& server, ::grpc::CallbackServerContext* ctx) : server_(server) {
        server.rpc_started();
        Codec codec = server.options().codec;
        const auto& metadata = ctx->client_metadata();
        if (const auto it = metadata.find(kCodecMetadata); it != metadata.end()) {
            const std::string value(it->second.data(), it->second.size());
            const auto named = parse_codec(value);
            if (!named) {
                Finish(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                                      std::string(kCodecMetadata) + " is \"" + value +
                                          "\": expected \"json\" or \"msgpack\""));
                return;
            }
            codec = *named;
        }
        stream_ = std::make_shared<SessionStream>(*this, ctx);
        stream_->start_reading();
        try {
            std::thread([&server, stream = stream_, codec] { run_session(server, stream, codec); })
                .detach();
        } catch (const std::exception& e) {
            log_stderr(std::string("cannot start a session thread: ") + e.what());
            stream_->finish(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()));
        }
    }

    void OnReadDone(bool ok) override { stream_->on_read_done(ok); }
    void OnWriteDone(bool ok) override { stream_->on_write_done(ok); }
    void OnCancel() override {
        if (stream_) stream_->on_cancel();
    }
    void OnDone() override {
        server_.rpc_done();
        delete this;
    }

private:
    GrpcServer& server_;
    std::shared_ptr<SessionStream> stream_;
};

}  // namespace

::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk>* start_session(GrpcServer& server,
                                                                ::grpc::CallbackServerContext* ctx) {
    return new SessionReactor(server, ctx);
}

}  // namespace polyglot::detail
