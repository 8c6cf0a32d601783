// End-to-end tests of the gRPC transport (docs/protocol.md, section 10): the real
// polyglot-test-worker started with POLYGLOT_TRANSPORT=grpc, as the host starts it (or as
// a remote worker with POLYGLOT_GRPC_LISTEN), driven through the stubs generated from
// proto/polyglot/v1/worker.proto.
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "polyglot/v1/worker.grpc.pb.h"
#include "support.hpp"

namespace {

using namespace support;
namespace v1 = polyglot::v1;
using polyglot::Id;
using polyglot::WorkerMessage;

const std::string kWorker = POLYGLOT_TEST_WORKER;
/// A worker that links polyglot::worker only (the bundled signal-cpp module).
const std::string kStdioOnlyWorker = POLYGLOT_STDIO_ONLY_WORKER;

/// What the section says a sender puts in one chunk at most.
constexpr std::size_t kMaxChunk = 1u << 20;

Id id(std::uint64_t v) { return Id(v); }

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Waits up to `timeout` for `path` to hold `text`.
bool file_says(const std::string& path, const std::string& text,
               std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_file(path) != text) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

bool is_socket(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string socket_path(const std::string& address) {
    return address.rfind("unix:", 0) == 0 ? address.substr(5) : std::string();
}

std::string dir_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

std::chrono::system_clock::time_point in(std::chrono::milliseconds d) {
    return std::chrono::system_clock::now() + d;
}

/// polyglot-test-worker serving gRPC, and a stub connected to the address it announced.
/// At the end it closes the worker's stdin (so it removes its socket) before the Process
/// kills whatever is left.
class GrpcWorker {
public:
    explicit GrpcWorker(std::vector<std::string> env = {}, Codec codec = Codec::json,
                        const std::string& program = kWorker)
        : process_(program, with_grpc(std::move(env)), codec) {}

    ~GrpcWorker() {
        process_.close_input();
        if (remote_) ::kill(process_.pid(), SIGTERM);
        process_.wait(5s);
    }

    /// Reads the handshake line from stdout and connects.
    const polyglot::Handshake& start() {
        handshake_ = process_.handshake();
        if (!handshake_.address) throw std::runtime_error("the handshake has no address");
        channel_ = ::grpc::CreateChannel(*handshake_.address, ::grpc::InsecureChannelCredentials());
        stub_ = v1::Worker::NewStub(channel_);
        return handshake_;
    }

    void remote() { remote_ = true; }
    Process& process() { return process_; }
    v1::Worker::Stub& stub() { return *stub_; }
    const polyglot::Handshake& handshake() const { return handshake_; }

private:
    static std::vector<std::string> with_grpc(std::vector<std::string> env) {
        env.insert(env.begin(), "POLYGLOT_TRANSPORT=grpc");
        return env;
    }

    Process process_;
    polyglot::Handshake handshake_;
    std::shared_ptr<::grpc::Channel> channel_;
    std::unique_ptr<v1::Worker::Stub> stub_;
    bool remote_ = false;
};

/// The host's side of a `Session` RPC: writes frames as chunks, reads the worker's chunks
/// on a thread of its own and splits them into the handshake line and frames.
class SessionClient {
public:
    /// Opens a session; `codec` is sent as `polyglot-codec` metadata unless `metadata` is
    /// false (the worker's POLYGLOT_CODEC then applies and must equal `codec`).
    SessionClient(v1::Worker::Stub& stub, Codec codec, bool metadata = true)
        : codec_(codec), frames_(Codec::json, polyglot::kDefaultMaxFrame) {
        if (metadata) ctx_.AddMetadata("polyglot-codec", polyglot::to_string(codec));
        stream_ = stub.Session(&ctx_);
        reader_ = std::thread([this] {
            v1::Chunk chunk;
            while (stream_->Read(&chunk)) {
                std::lock_guard<std::mutex> lk(mutex_);
                chunk_sizes_.push_back(chunk.data().size());
                chunks_.push_back(std::move(*chunk.mutable_data()));
                cv_.notify_all();
            }
            std::lock_guard<std::mutex> lk(mutex_);
            ended_ = true;
            cv_.notify_all();
        });
    }

    ~SessionClient() {
        if (!finished_) {
            ctx_.TryCancel();
            reader_.join();
            stream_->Finish();
        }
    }

    polyglot::Handshake handshake(std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (const auto f = frames_.next_frame()) {
                const auto h = polyglot::Handshake::parse(f->data);
                frames_.set_codec(codec_);
                handshake_done_ = true;
                return h;
            }
            if (!fill(deadline)) throw std::runtime_error("no handshake on the session");
        }
    }

    /// Sends one message as one chunk.
    void send(const Value& message) {
        std::string frame;
        polyglot::append_frame(codec_, polyglot::encode(codec_, message), frame);
        send_chunk(std::move(frame));
    }

    bool send_chunk(std::string bytes) {
        v1::Chunk chunk;
        chunk.set_data(std::move(bytes));
        return stream_->Write(chunk);
    }

    std::optional<WorkerMessage> next(std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        if (!handshake_done_) handshake(timeout);
        for (;;) {
            if (const auto f = frames_.next_frame()) {
                seen_.push_back(polyglot::decode_message(codec_, f->data));
                return seen_.back();
            }
            if (!fill(deadline)) return std::nullopt;
        }
    }

    WorkerMessage response_to(const Id& want, std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            const auto m = next(std::max(left, 0ms));
            if (!m) throw std::runtime_error("no response to id " + want.to_string());
            if (m->kind == WorkerMessage::Kind::response && m->id == want) return *m;
        }
    }

    /// Half-closes: the host ends its side of the session.
    void writes_done() { stream_->WritesDone(); }

    /// Waits for the worker to end the RPC, reading what is left; its status, or nothing
    /// when it does not end within `timeout`.
    std::optional<::grpc::Status> finish(std::chrono::milliseconds timeout = 10s) {
        {
            std::unique_lock<std::mutex> lk(mutex_);
            if (!cv_.wait_for(lk, timeout, [this] { return ended_; })) return std::nullopt;
        }
        reader_.join();
        finished_ = true;
        while (next(0ms)) {
        }
        const ::grpc::Status status = stream_->Finish();
        stream_.reset();  // done with it, as a host drops its stream
        return status;
    }

    const std::vector<WorkerMessage>& seen() const { return seen_; }
    std::vector<std::size_t> chunk_sizes() {
        std::lock_guard<std::mutex> lk(mutex_);
        return chunk_sizes_;
    }

private:
    /// Moves the chunks received into the frame reader; false on end or timeout.
    bool fill(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock<std::mutex> lk(mutex_);
        if (!cv_.wait_until(lk, deadline, [this] { return !chunks_.empty() || ended_; })) {
            return false;
        }
        if (chunks_.empty()) return false;
        while (!chunks_.empty()) {
            frames_.extend(chunks_.front());
            chunks_.pop_front();
        }
        return true;
    }

    Codec codec_;
    ::grpc::ClientContext ctx_;
    std::unique_ptr<::grpc::ClientReaderWriter<v1::Chunk, v1::Chunk>> stream_;
    std::thread reader_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::string> chunks_;
    std::vector<std::size_t> chunk_sizes_;
    bool ended_ = false;
    bool finished_ = false;
    polyglot::FrameReader frames_;
    bool handshake_done_ = false;
    std::vector<WorkerMessage> seen_;
};

/// A unary Call with params encoded in `codec`.
::grpc::Status call(v1::Worker::Stub& stub, const std::string& method, const Value& params,
                    Codec codec, v1::WorkerCallResponse& response,
                    std::chrono::milliseconds deadline = 10s) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(in(deadline));
    v1::WorkerCallRequest request;
    request.set_method(method);
    if (!params.is_null()) request.set_params(polyglot::encode(codec, params));
    request.set_codec(polyglot::to_string(codec));
    return stub.Call(&ctx, request, &response);
}

v1::WorkerHealthResponse health(v1::Worker::Stub& stub) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(in(10s));
    v1::WorkerHealthResponse response;
    const ::grpc::Status status = stub.Health(&ctx, v1::WorkerHealthRequest(), &response);
    if (!status.ok()) throw std::runtime_error("Health failed: " + status.error_message());
    return response;
}

// ------------------------------------------------------------------- start-up, Describe

TEST(Grpc, ListensOnAPrivateUnixSocketBeforeItAnnouncesIt) {
    GrpcWorker w({"POLYGLOT_VERSION=4.5.6"});
    const polyglot::Handshake& h = w.start();
    EXPECT_EQ(h.transport, std::optional<std::string>("grpc"));
    ASSERT_TRUE(h.address.has_value());
    const std::string path = socket_path(*h.address);
    ASSERT_FALSE(path.empty()) << *h.address;
    EXPECT_EQ(path.substr(path.rfind('/') + 1), "worker.sock");
    EXPECT_TRUE(is_socket(path));  // listening already when announced
    struct stat dir {};
    ASSERT_EQ(::stat(dir_of(path).c_str(), &dir), 0);
    EXPECT_EQ(dir.st_mode & 0777, 0700u);
    EXPECT_EQ(h.module, "cpp-test");
    EXPECT_EQ(h.pid, std::optional<std::uint64_t>(static_cast<std::uint64_t>(w.process().pid())));

    ::grpc::ClientContext ctx;
    v1::DescribeResponse d;
    ASSERT_TRUE(w.stub().Describe(&ctx, v1::DescribeRequest(), &d).ok());
    EXPECT_EQ(d.protocol(), 1u);
    EXPECT_EQ(d.module(), "cpp-test");
    EXPECT_EQ(d.version(), "4.5.6");
    EXPECT_EQ(d.language(), "cpp");
    EXPECT_EQ(d.codec(), "json");
    EXPECT_EQ(d.max_concurrency(), 16u);
    EXPECT_EQ(d.pid(), static_cast<std::uint32_t>(w.process().pid()));
    EXPECT_EQ(std::vector<std::string>(d.methods().begin(), d.methods().end()), h.methods);
}

TEST(Grpc, WithoutAUsableTemporaryDirectoryItListensOnLoopbackTcp) {
    GrpcWorker w({"TMPDIR=/proc"});  // mkdtemp() cannot make a directory there
    const polyglot::Handshake& h = w.start();
    ASSERT_TRUE(h.address.has_value());
    EXPECT_EQ(h.address->rfind("127.0.0.1:", 0), 0u) << *h.address;
    EXPECT_EQ(health(w.stub()).status(), "ok");
    w.process().close_input();
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
}

TEST(Grpc, AProgramWithoutTheGrpcTransportSaysSoAndExitsOne) {
    Process p(kStdioOnlyWorker, {"POLYGLOT_TRANSPORT=grpc"}, Codec::json);
    EXPECT_EQ(p.wait(), std::optional<int>(1));
    const std::string err = p.stderr_text();
    EXPECT_TRUE(mentions(err, "polyglot::worker_grpc")) << err;
    EXPECT_TRUE(mentions(err, "POLYGLOT_TRANSPORT")) << err;
}

TEST(Grpc, ABadListenAddressIsRefusedWithAMessage) {
    Process p(kWorker, {"POLYGLOT_TRANSPORT=grpc", "POLYGLOT_GRPC_LISTEN=nowhere"}, Codec::json);
    EXPECT_EQ(p.wait(), std::optional<int>(1));
    EXPECT_TRUE(mentions(p.stderr_text(), "POLYGLOT_GRPC_LISTEN")) << p.stderr_text();
}

// --------------------------------------------------------------------------- Session

TEST(Grpc, SessionCarriesTheProtocolWithSeveralCallsInFlight) {
    GrpcWorker w;
    w.start();
    SessionClient s(w.stub(), Codec::json, /*metadata=*/false);  // POLYGLOT_CODEC=json
    const polyglot::Handshake h = s.handshake();
    EXPECT_EQ(h.codec, Codec::json);
    EXPECT_EQ(h.transport, std::optional<std::string>("grpc"));
    EXPECT_EQ(h.address, w.handshake().address);  // the same fields it printed
    EXPECT_EQ(h.methods, w.handshake().methods);
    s.send(request(1, "sleep", {400}));
    s.send(request(2, "sleep", {20}));
    s.send(request(3, "echo", {"quick"}));
    s.send(request(4, "progress", {3}));
    std::vector<std::uint64_t> answered;
    int progress = 0;
    while (answered.size() < 4) {
        const auto m = s.next();
        ASSERT_TRUE(m.has_value()) << "answers so far: " << answered.size();
        if (m->kind == WorkerMessage::Kind::progress) {
            EXPECT_EQ(*m->id, id(4));
            EXPECT_EQ(m->progress, (Value{{"step", ++progress}}));
            continue;
        }
        ASSERT_EQ(m->kind, WorkerMessage::Kind::response);
        answered.push_back(m->id->to_value().get<std::uint64_t>());
        if (*m->id == id(4)) {
            EXPECT_EQ(progress, 3) << "progress after the result";
        }
    }
    EXPECT_EQ(answered.back(), 1u);  // the slow one, sent first, answered last
    EXPECT_EQ(s.seen().back().result, Value(400));
    s.writes_done();
    const auto status = s.finish();
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->ok()) << status->error_message();
}

TEST(Grpc, SessionCodecComesFromMetadataAndSessionsAreIndependent) {
    GrpcWorker w({}, Codec::json);  // POLYGLOT_CODEC=json
    w.start();
    SessionClient packed(w.stub(), Codec::msgpack);
    SessionClient text(w.stub(), Codec::json);
    EXPECT_EQ(packed.handshake().codec, Codec::msgpack);
    EXPECT_EQ(text.handshake().codec, Codec::json);
    const Value blob = polyglot::bytes(polyglot::Bytes{0, 1, 2, 255});
    // The same id on both sessions: ids belong to the session.
    packed.send(request(1, "echo", Value::array({blob})));
    text.send(request(1, "echo", Value::array({blob})));
    const WorkerMessage a = packed.response_to(id(1));
    const WorkerMessage b = text.response_to(id(1));
    ASSERT_TRUE(a.result && b.result);
    EXPECT_TRUE(same(*a.result, blob)) << show(*a.result);
    EXPECT_TRUE(same(*b.result, blob)) << show(*b.result);
    packed.send(request("s", "add", {{"a", -5}, {"b", 3}}));
    EXPECT_TRUE(same(*packed.response_to(Id(std::string("s"))).result, Value(-2)));
}

TEST(Grpc, AnUnknownCodecInMetadataIsRefused) {
    GrpcWorker w;
    w.start();
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("polyglot-codec", "xml");
    auto stream = w.stub().Session(&ctx);
    v1::Chunk chunk;
    EXPECT_FALSE(stream->Read(&chunk));
    const ::grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(mentions(status.error_message(), "polyglot-codec")) << status.error_message();
}

TEST(Grpc, ChunkBoundariesMeanNothingAndChunksStayUnderOneMebibyte) {
    GrpcWorker w;
    w.start();
    SessionClient s(w.stub(), Codec::msgpack);
    s.handshake();
    // One frame spread over many chunks, then many frames in one chunk.
    std::string frame;
    polyglot::append_frame(Codec::msgpack,
                           polyglot::encode(Codec::msgpack, request(1, "echo", {"split"})), frame);
    for (const char c : frame) ASSERT_TRUE(s.send_chunk(std::string(1, c)));
    std::string several;
    for (std::uint64_t i = 2; i <= 20; ++i) {
        polyglot::append_frame(Codec::msgpack,
                               polyglot::encode(Codec::msgpack, request(i, "add", {i, 1})),
                               several);
    }
    ASSERT_TRUE(s.send_chunk(several));
    std::map<std::uint64_t, Value> results;  // answered in completion order
    while (results.size() < 20) {
        const auto m = s.next();
        ASSERT_TRUE(m.has_value()) << results.size() << " answers";
        ASSERT_TRUE(m->result.has_value());
        results[m->id->to_value().get<std::uint64_t>()] = *m->result;
    }
    EXPECT_EQ(results[1], Value("split"));
    for (std::uint64_t i = 2; i <= 20; ++i) EXPECT_EQ(results[i], Value(i + 1)) << i;
    // A request of 3.5 MiB in a single chunk is taken (receivers accept 4 MiB chunks) ...
    const std::string text(3u * 1024 * 1024 + 512 * 1024, 'q');
    s.send(request(21, "echo", {text}));
    EXPECT_EQ(s.response_to(id(21)).result, Value(text));
    // ... and a 2.5 MiB answer arrives in chunks of at most 1 MiB.
    s.send(request(22, "big", {2500000}));
    EXPECT_EQ(s.response_to(id(22)).result, Value(std::string(2500000, 'x')));
    const auto sizes = s.chunk_sizes();
    EXPECT_GE(sizes.size(), 7u);  // 3.5 MiB and 2.5 MiB cannot travel in fewer
    for (const std::size_t n : sizes) EXPECT_LE(n, kMaxChunk);
}

TEST(Grpc, EndingTheSessionCancelsItsCallsAndTheWorkerKeepsRunning) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    GrpcWorker w;
    w.start();
    {
        SessionClient s(w.stub(), Codec::json);
        s.send(request(1, "sleep", {60000, marker}));
        s.send(request(2, "echo", {"running"}));
        EXPECT_EQ(s.response_to(id(2)).result, Value("running"));
        s.writes_done();  // the host ends the RPC
        const auto status = s.finish(5s);
        ASSERT_TRUE(status.has_value()) << "the worker did not end the session";
        for (const auto& m : s.seen()) EXPECT_NE(*m.id, id(1)) << "answered after the end";
    }
    EXPECT_TRUE(file_says(marker, "cancelled"));
    // The same happens when the host cancels the RPC outright.
    const std::string marker2 = dir.path() + "/cancelled2";
    {
        SessionClient s(w.stub(), Codec::json);
        s.send(request(1, "sleep", {60000, marker2}));
        s.send(request(2, "echo", {"running"}));
        EXPECT_EQ(s.response_to(id(2)).result, Value("running"));
    }  // ~SessionClient cancels
    EXPECT_TRUE(file_says(marker2, "cancelled"));
    EXPECT_FALSE(w.process().wait(200ms).has_value()) << "the worker exited";
    SessionClient again(w.stub(), Codec::json);
    again.send(request(1, "echo", {"still here"}));
    EXPECT_EQ(again.response_to(id(1)).result, Value("still here"));
    EXPECT_EQ(health(w.stub()).status(), "ok");
}

TEST(Grpc, CancelInsideASessionWorksAsOverStdio) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    GrpcWorker w;
    w.start();
    SessionClient s(w.stub(), Codec::json);
    s.send(request(1, "sleep", {60000, marker}));
    s.send(request(2, "echo", {"started"}));
    EXPECT_EQ(s.response_to(id(2)).result, Value("started"));
    s.send(notification("$cancel", {{"id", 1}}));
    const WorkerMessage m = s.response_to(id(1), 5s);
    ASSERT_TRUE(m.error.has_value());
    EXPECT_EQ(m.error->code, "CANCELLED");
    EXPECT_TRUE(file_says(marker, "cancelled"));
}

// ------------------------------------------------------------------------ unary RPCs

TEST(Grpc, CallRunsOneMethodInEitherCodec) {
    GrpcWorker w;
    w.start();
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        SCOPED_TRACE(polyglot::to_string(codec));
        v1::WorkerCallResponse r;
        ASSERT_TRUE(call(w.stub(), "add", {2, 40}, codec, r).ok());
        ASSERT_TRUE(r.has_result());
        EXPECT_EQ(polyglot::decode(codec, r.result()), Value(42));
        const Value blob = polyglot::bytes(polyglot::Bytes{9, 8, 7});
        ASSERT_TRUE(call(w.stub(), "echo", Value::array({blob}), codec, r).ok());
        EXPECT_TRUE(same(polyglot::decode(codec, r.result()), blob));
        ASSERT_TRUE(call(w.stub(), "sleep", {30}, codec, r).ok());
        EXPECT_GE(r.execution_time_us(), 30000u);
        // A method's error is a response, with status OK.
        ASSERT_TRUE(call(w.stub(), "fail", {"NOT_READY", "model not loaded"}, codec, r).ok());
        ASSERT_TRUE(r.has_error());
        EXPECT_EQ(r.error().code(), "NOT_READY");
        EXPECT_EQ(r.error().message(), "model not loaded");
        ASSERT_TRUE(call(w.stub(), "add", {1, 2, 3}, codec, r).ok());
        EXPECT_EQ(r.error().code(), "INVALID_PARAMS");
        ASSERT_TRUE(call(w.stub(), "nope", nullptr, codec, r).ok());
        EXPECT_EQ(r.error().code(), "METHOD_NOT_FOUND");
        ASSERT_TRUE(call(w.stub(), "$health", nullptr, codec, r).ok());
        EXPECT_EQ(r.error().code(), "METHOD_NOT_FOUND");
    }
    // Empty params are null, and an empty codec is json.
    ::grpc::ClientContext ctx;
    v1::WorkerCallRequest req;
    req.set_method("echo");
    v1::WorkerCallResponse r;
    ASSERT_TRUE(w.stub().Call(&ctx, req, &r).ok());
    EXPECT_EQ(polyglot::decode_json(r.result()), Value::array());
}

TEST(Grpc, UndecodableParamsAndUnknownCodecsAreInvalidArgument) {
    GrpcWorker w;
    w.start();
    {
        ::grpc::ClientContext ctx;
        v1::WorkerCallRequest req;
        req.set_method("echo");
        req.set_params("[not json");
        v1::WorkerCallResponse r;
        EXPECT_EQ(w.stub().Call(&ctx, req, &r).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
    }
    {
        ::grpc::ClientContext ctx;
        v1::WorkerCallRequest req;
        req.set_method("echo");
        req.set_codec("xml");
        v1::WorkerCallResponse r;
        EXPECT_EQ(w.stub().Call(&ctx, req, &r).error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
    }
}

TEST(Grpc, TheCallsDeadlineCancelsTheCall) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    GrpcWorker w;
    w.start();
    v1::WorkerCallResponse r;
    const auto before = std::chrono::steady_clock::now();
    const ::grpc::Status status = call(w.stub(), "sleep", {60000, marker}, Codec::json, r, 300ms);
    EXPECT_EQ(status.error_code(), ::grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    EXPECT_TRUE(file_says(marker, "cancelled"));
}

TEST(Grpc, CallStreamSendsProgressBeforeTheResult) {
    GrpcWorker w;
    w.start();
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        SCOPED_TRACE(polyglot::to_string(codec));
        ::grpc::ClientContext ctx;
        ctx.set_deadline(in(10s));
        v1::WorkerCallRequest req;
        req.set_method("progress");
        req.set_params(polyglot::encode(codec, Value{3}));
        req.set_codec(polyglot::to_string(codec));
        auto reader = w.stub().CallStream(&ctx, req);
        std::vector<v1::WorkerCallEvent> events;
        v1::WorkerCallEvent event;
        while (reader->Read(&event)) events.push_back(event);
        ASSERT_TRUE(reader->Finish().ok());
        ASSERT_EQ(events.size(), 4u);
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(events[i].has_progress());
            EXPECT_EQ(polyglot::decode(codec, events[i].progress()), (Value{{"step", i + 1}}));
        }
        ASSERT_TRUE(events[3].has_result());
        EXPECT_EQ(polyglot::decode(codec, events[3].result().result()), Value(3));
    }
}

TEST(Grpc, HealthReportsOkDegradedOrUnhealthy) {
    {
        GrpcWorker w;
        w.start();
        const auto h = health(w.stub());
        EXPECT_EQ(h.status(), "ok");
        EXPECT_EQ(h.reason(), "");
    }
    {
        GrpcWorker w({"TEST_HEALTH=degraded"});
        w.start();
        const auto h = health(w.stub());
        EXPECT_EQ(h.status(), "degraded");
        EXPECT_EQ(h.reason(), "warming up");
    }
    {
        GrpcWorker w({"TEST_HEALTH=unhealthy"});
        w.start();
        const auto h = health(w.stub());
        EXPECT_EQ(h.status(), "unhealthy");
        EXPECT_TRUE(mentions(h.reason(), "TEST_HEALTH")) << h.reason();
    }
}

TEST(Grpc, HealthAnswersWhileEveryCallSlotIsBusy) {
    GrpcWorker w({"TEST_MAX_CONCURRENCY=1"});
    w.start();
    SessionClient s(w.stub(), Codec::json);
    s.send(request(1, "sleep", {3000}));
    s.send(request(2, "sleep", {3000}));  // waits for the one slot
    s.handshake();
    std::this_thread::sleep_for(200ms);  // the first sleep holds the slot by now
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(health(w.stub()).status(), "ok");
    EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
}

// ------------------------------------------------------------------------- lifetime

TEST(Grpc, ShutdownStopsNewCallsFinishesHeldOnesThenExitsZero) {
    GrpcWorker w;
    w.start();
    const std::string path = socket_path(*w.handshake().address);
    SessionClient s(w.stub(), Codec::json);
    SessionClient idle(w.stub(), Codec::msgpack);
    idle.handshake();
    s.send(request(1, "sleep", {500}));
    s.send(request(2, "echo", {"in"}));
    EXPECT_EQ(s.response_to(id(2)).result, Value("in"));
    {
        ::grpc::ClientContext ctx;
        ctx.set_deadline(in(5s));
        v1::WorkerShutdownResponse r;
        ASSERT_TRUE(w.stub().Shutdown(&ctx, v1::WorkerShutdownRequest(), &r).ok());
    }
    s.send(request(3, "echo", {"late"}));
    EXPECT_EQ(s.response_to(id(3)).error->code, "SHUTTING_DOWN");
    v1::WorkerCallResponse r;
    ASSERT_TRUE(call(w.stub(), "echo", {"late"}, Codec::json, r).ok());
    EXPECT_EQ(r.error().code(), "SHUTTING_DOWN");
    EXPECT_EQ(s.response_to(id(1)).result, Value(500));  // the held call finishes
    const auto ended = s.finish(5s);
    ASSERT_TRUE(ended.has_value());
    EXPECT_TRUE(ended->ok()) << ended->error_message();
    const auto idle_ended = idle.finish(5s);
    ASSERT_TRUE(idle_ended.has_value()) << "a session without calls was not ended";
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
    EXPECT_FALSE(exists(path));
    EXPECT_FALSE(exists(dir_of(path)));
}

TEST(Grpc, ShutdownWithNothingHeldExitsAtOnce) {
    GrpcWorker w;
    w.start();
    EXPECT_EQ(health(w.stub()).status(), "ok");  // the host's channel stays open
    const auto before = std::chrono::steady_clock::now();
    {
        ::grpc::ClientContext ctx;
        v1::WorkerShutdownResponse r;
        ASSERT_TRUE(w.stub().Shutdown(&ctx, v1::WorkerShutdownRequest(), &r).ok());
    }
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
}

TEST(Grpc, ShutdownOnOneSessionStopsTheWholeWorker) {
    GrpcWorker w;
    w.start();
    SessionClient a(w.stub(), Codec::json);
    SessionClient b(w.stub(), Codec::json);
    b.send(request(7, "sleep", {300}));
    b.send(request(6, "echo", {"after 7"}));  // answered: 7 is held by now
    EXPECT_EQ(b.response_to(id(6)).result, Value("after 7"));
    a.send(request(1, "$shutdown"));  // with an id: answered once it has taken effect
    EXPECT_TRUE(a.response_to(id(1)).result->is_null());
    b.send(request(8, "echo", {"late"}));
    const WorkerMessage late = b.response_to(id(8));
    ASSERT_TRUE(late.error.has_value());
    EXPECT_EQ(late.error->code, "SHUTTING_DOWN");
    EXPECT_EQ(b.response_to(id(7)).result, Value(300));
    EXPECT_TRUE(a.finish(5s).has_value());
    EXPECT_TRUE(b.finish(5s).has_value());
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
}

TEST(Grpc, StdinEndingExitsPromptlyAndRemovesTheSocket) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    GrpcWorker w;
    w.start();
    const std::string path = socket_path(*w.handshake().address);
    ASSERT_TRUE(is_socket(path));
    SessionClient s(w.stub(), Codec::json);
    s.send(request(1, "sleep", {60000, marker}));
    s.send(request(2, "echo", {"running"}));
    EXPECT_EQ(s.response_to(id(2)).result, Value("running"));
    const auto before = std::chrono::steady_clock::now();
    w.process().close_input();
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    EXPECT_EQ(read_file(marker), "cancelled");  // told before the process ended
    EXPECT_FALSE(exists(path));
    EXPECT_FALSE(exists(dir_of(path)));
}

TEST(Grpc, ASignalEndsAHostStartedWorkerAndTakesItsSocketAlong) {
    GrpcWorker w;
    w.start();
    const std::string path = socket_path(*w.handshake().address);
    ASSERT_TRUE(is_socket(path));
    ASSERT_EQ(::kill(w.process().pid(), SIGTERM), 0);
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(128 + SIGTERM));
    EXPECT_FALSE(exists(path));
    EXPECT_FALSE(exists(dir_of(path)));
}

TEST(Grpc, StdoutIsTheWorkersOwnAfterTheHandshake) {
    GrpcWorker w;
    w.start();
    v1::WorkerCallResponse r;
    ASSERT_TRUE(call(w.stub(), "stray", nullptr, Codec::json, r).ok());
    EXPECT_EQ(polyglot::decode_json(r.result()), Value("printed"));
    w.process().close_input();
    ASSERT_EQ(w.process().wait(5s), std::optional<int>(0));
    ASSERT_TRUE(w.process().read_to_end());
    // What the handler printed went to stdout after the handshake line, not to stderr.
    EXPECT_TRUE(w.process().banners().empty());
    const auto& out = w.process().undecodable();  // stdout's lines after the handshake
    for (const char* line : {"stray output from a handler", "stray output from std::cout",
                             "stray bytes on fd 1"}) {
        EXPECT_NE(std::find(out.begin(), out.end(), line), out.end()) << line;
    }
    EXPECT_EQ(w.process().stderr_text().find("stray output"), std::string::npos);
}

// ------------------------------------------------------------------------- remote

TEST(Grpc, ARemoteWorkerOnTcpIgnoresStdinAndStopsOnSigterm) {
    GrpcWorker w({"POLYGLOT_GRPC_LISTEN=127.0.0.1:0"});
    w.remote();
    const polyglot::Handshake& h = w.start();
    ASSERT_TRUE(h.address.has_value());
    EXPECT_EQ(h.address->rfind("127.0.0.1:", 0), 0u) << *h.address;
    EXPECT_NE(*h.address, "127.0.0.1:0");  // the port it got
    w.process().close_input();
    EXPECT_FALSE(w.process().wait(300ms).has_value()) << "stdin ending stopped a remote worker";
    EXPECT_EQ(health(w.stub()).status(), "ok");

    v1::WorkerCallResponse held;
    auto slow = std::async(std::launch::async, [&w, &held] {
        return call(w.stub(), "sleep", {800}, Codec::json, held);
    });
    std::this_thread::sleep_for(200ms);  // the sleep is running by now
    ASSERT_EQ(::kill(w.process().pid(), SIGTERM), 0);
    std::this_thread::sleep_for(100ms);
    v1::WorkerCallResponse late;
    ASSERT_TRUE(call(w.stub(), "echo", {"late"}, Codec::json, late).ok());
    EXPECT_EQ(late.error().code(), "SHUTTING_DOWN");
    ASSERT_TRUE(slow.get().ok());
    EXPECT_EQ(polyglot::decode_json(held.result()), Value(800));  // finished, not dropped
    EXPECT_EQ(w.process().wait(5s), std::optional<int>(0));
}

TEST(Grpc, ARemoteWorkerGivesHeldCallsFiveSecondsAtMost) {
    const std::string path = [] {
        char tmpl[] = "/tmp/polyglot-grpc-test-XXXXXX";
        return std::string(::mkdtemp(tmpl));
    }();
    const std::string sock = path + "/remote.sock";
    {
        GrpcWorker w({"POLYGLOT_GRPC_LISTEN=unix:" + sock});
        w.remote();
        EXPECT_EQ(w.start().address, std::optional<std::string>("unix:" + sock));
        SessionClient s(w.stub(), Codec::json);
        s.send(request(1, "sleep", {60000}));
        s.handshake();
        std::this_thread::sleep_for(100ms);
        const auto before = std::chrono::steady_clock::now();
        ASSERT_EQ(::kill(w.process().pid(), SIGINT), 0);
        EXPECT_EQ(w.process().wait(9s), std::optional<int>(0));
        const auto took = std::chrono::steady_clock::now() - before;
        EXPECT_GE(took, 4500ms);
        EXPECT_LT(took, 8s);
        EXPECT_FALSE(exists(sock));
    }
    ::rmdir(path.c_str());
}

}  // namespace
