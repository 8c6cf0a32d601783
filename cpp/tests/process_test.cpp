// End-to-end tests that start the real polyglot-test-worker executable and speak to it over
// pipes (and a Unix socket), as the host does.
#include <fstream>
#include <sstream>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support.hpp"

namespace {

using namespace support;
using polyglot::Id;
using polyglot::WorkerMessage;

const std::string kWorker = POLYGLOT_TEST_WORKER;

Id id(std::uint64_t v) { return Id(v); }

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(Process, HandshakeAnnouncesTheWorker) {
    Process p(kWorker, {"POLYGLOT_VERSION=4.5.6"}, Codec::json);
    const polyglot::Handshake h = p.handshake();
    EXPECT_EQ(h.protocol, 1u);
    EXPECT_EQ(h.module, "cpp-test");
    EXPECT_EQ(h.version, "4.5.6");
    EXPECT_EQ(h.language, std::optional<std::string>("cpp"));
    EXPECT_EQ(h.codec, Codec::json);
    EXPECT_EQ(h.max_concurrency, 16u);
    EXPECT_EQ(h.pid, std::optional<std::uint64_t>(static_cast<std::uint64_t>(p.pid())));
    EXPECT_EQ(h.methods,
              (std::vector<std::string>{"add", "big", "boom", "crash", "echo", "env", "fail",
                                        "garbage", "pid", "progress", "sleep", "stray",
                                        "unknownId", "version"}));
    EXPECT_TRUE(p.banners().empty());
    p.send(request(1, "version"));
    EXPECT_EQ(p.response_to(id(1)).result, Value("4.5.6"));
}

TEST(Process, MaxConcurrencyComesFromTheEnvironment) {
    Process p(kWorker, {"TEST_MAX_CONCURRENCY=3"}, Codec::json);
    EXPECT_EQ(p.handshake().max_concurrency, 3u);
}

TEST(Process, CallsAreAnsweredInCompletionOrder) {
    Process p(kWorker, {}, Codec::json);
    p.send(request(1, "sleep", {500}));
    p.send(request(2, "sleep", {10}));
    p.send(request(3, "echo", {"quick"}));
    std::vector<std::uint64_t> order;
    for (int i = 0; i < 3; ++i) {
        const WorkerMessage m = p.expect_next();
        ASSERT_EQ(m.kind, WorkerMessage::Kind::response);
        order.push_back(m.id->to_value().get<std::uint64_t>());
    }
    EXPECT_EQ(order.back(), 1u);  // the slow call, started first, answered last
    EXPECT_EQ(p.seen().back().result, Value(500));
}

TEST(Process, CancelStopsTheCallAndAnswersCancelled) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    Process p(kWorker, {}, Codec::json);
    p.send(request(1, "sleep", {60000, marker}));
    p.send(request(2, "echo", {"started"}));
    EXPECT_EQ(p.response_to(id(2)).result, Value("started"));
    const auto before = std::chrono::steady_clock::now();
    p.send(notification("$cancel", {{"id", 1}}));
    const WorkerMessage m = p.response_to(id(1));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    ASSERT_TRUE(m.error.has_value());
    EXPECT_EQ(m.error->code, "CANCELLED");
    // The method saw the cancellation and wrote its marker.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (read_file(marker).empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(read_file(marker), "cancelled");
}

TEST(Process, ProgressMessagesPrecedeTheResult) {
    Process p(kWorker, {}, Codec::json);
    p.send(request(9, "progress", {3}));
    for (int step = 1; step <= 3; ++step) {
        const WorkerMessage m = p.expect_next();
        ASSERT_EQ(m.kind, WorkerMessage::Kind::progress);
        EXPECT_EQ(*m.id, id(9));
        EXPECT_EQ(m.progress, (Value{{"step", step}}));
    }
    const WorkerMessage r = p.expect_next();
    EXPECT_EQ(r.kind, WorkerMessage::Kind::response);
    EXPECT_EQ(r.result, Value(3));
}

TEST(Process, ShutdownDrainsHeldCallsThenExitsZero) {
    Process p(kWorker, {}, Codec::json);
    p.send(request(1, "sleep", {300}));
    p.send(request(2, "echo", {"in"}));
    EXPECT_EQ(p.response_to(id(2)).result, Value("in"));
    p.send(notification("$shutdown"));
    p.send(request(3, "echo", {"late"}));
    EXPECT_EQ(p.response_to(id(3)).error->code, "SHUTTING_DOWN");
    EXPECT_EQ(p.response_to(id(1)).result, Value(300));
    EXPECT_EQ(p.wait(), std::optional<int>(0));
}

TEST(Process, ExitsPromptlyWhenStdinClosesWithoutWaitingForCalls) {
    TempDir dir;
    const std::string marker = dir.path() + "/cancelled";
    Process p(kWorker, {}, Codec::json);
    p.send(request(1, "sleep", {60000, marker}));
    p.send(request(2, "echo", {"running"}));
    EXPECT_EQ(p.response_to(id(2)).result, Value("running"));
    const auto before = std::chrono::steady_clock::now();
    p.close_input();
    EXPECT_EQ(p.wait(5s), std::optional<int>(0));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    // The running call was told it is cancelled, as the Rust and Python workers tell theirs.
    EXPECT_EQ(read_file(marker), "cancelled");
    ASSERT_TRUE(p.read_to_end());
    for (const auto& m : p.seen()) EXPECT_NE(*m.id, id(1)) << "answered after the input ended";
}

TEST(Process, StrayPrintsLandOnStderrNotOnTheProtocol) {
    Process p(kWorker, {}, Codec::json);
    p.send(request(1, "stray"));
    EXPECT_EQ(p.response_to(id(1)).result, Value("printed"));
    p.close_input();
    EXPECT_EQ(p.wait(), std::optional<int>(0));
    ASSERT_TRUE(p.read_to_end());
    EXPECT_TRUE(p.undecodable().empty()) << p.undecodable().front();
    EXPECT_TRUE(p.banners().empty());
    const std::string err = p.stderr_text();
    EXPECT_NE(err.find("stray output from a handler"), std::string::npos) << err;
    EXPECT_NE(err.find("stray output from std::cout"), std::string::npos) << err;
    EXPECT_NE(err.find("stray bytes on fd 1"), std::string::npos) << err;
}

TEST(Process, MsgpackEndToEnd) {
    Process p(kWorker, {}, Codec::msgpack);
    const polyglot::Handshake h = p.handshake();  // a JSON line even in msgpack
    EXPECT_EQ(h.codec, Codec::msgpack);
    const Value blob = polyglot::bytes(polyglot::Bytes{0, 1, 2, 255});
    p.send(request(1, "echo", Value::array({blob})));
    const WorkerMessage m = p.response_to(id(1));
    ASSERT_TRUE(m.result.has_value());
    EXPECT_TRUE(same(*m.result, blob)) << show(*m.result);
    p.send(request("s", "add", {{"a", -5}, {"b", 3}}));
    EXPECT_TRUE(same(*p.response_to(Id(std::string("s"))).result, Value(-2)));
    p.send(request(2, "add", {"x", 1}));
    EXPECT_EQ(p.response_to(id(2)).error->code, "INVALID_PARAMS");
    p.send(request(3, "unknownId"));  // writes a well-formed msgpack frame for another id
    EXPECT_EQ(p.response_to(id(3)).result, Value("sent"));
    bool stray_seen = false;
    for (const auto& s : p.seen()) stray_seen = stray_seen || s.id == Id(std::uint64_t{987654321987});
    EXPECT_TRUE(stray_seen);
    EXPECT_TRUE(p.undecodable().empty());
}

TEST(Process, RunByHandExplainsItselfAndExitsOne) {
    Process p(kWorker, {}, Codec::json, /*host_env=*/false);
    EXPECT_EQ(p.wait(5s), std::optional<int>(1));
    const std::string err = p.stderr_text();
    EXPECT_TRUE(mentions(err, "is a polyglot worker")) << err;
    EXPECT_TRUE(mentions(err, "started by polyglot-host")) << err;
    EXPECT_TRUE(p.read_to_end(1s));
    EXPECT_TRUE(p.seen().empty());
}

TEST(Process, StartupBehaviours) {
    {
        Process p(kWorker, {"TEST_BANNER=loading libfoo 1.2"}, Codec::json);
        p.handshake();
        EXPECT_EQ(p.banners(), std::vector<std::string>{"loading libfoo 1.2"});
    }
    {
        Process p(kWorker, {"TEST_BAD_PROTOCOL=1"}, Codec::json);
        EXPECT_EQ(p.handshake().protocol, 99u);
    }
    {
        Process p(kWorker, {"TEST_EXIT_AT_START=7"}, Codec::json);
        EXPECT_EQ(p.wait(), std::optional<int>(7));
        EXPECT_NE(p.stderr_text().find("fatal: cannot load model"), std::string::npos);
    }
    {
        Process p(kWorker, {"TEST_NO_HANDSHAKE=1"}, Codec::json);
        EXPECT_THROW(p.handshake(300ms), std::runtime_error);
        p.close_input();
        EXPECT_EQ(p.wait(), std::optional<int>(0));
        EXPECT_NE(p.stderr_text().find("starting..."), std::string::npos);
    }
}

TEST(Process, HealthFollowsTheEnvironment) {
    {
        Process p(kWorker, {}, Codec::json);
        p.send(request(1, "$health"));
        const Value r = *p.response_to(id(1)).result;
        EXPECT_EQ(r["status"], "ok");
        EXPECT_EQ(r["pid"], p.pid());
    }
    {
        Process p(kWorker, {"TEST_HEALTH=degraded"}, Codec::json);
        p.send(request(1, "$health"));
        EXPECT_EQ(*p.response_to(id(1)).result,
                  (Value{{"status", "degraded"}, {"reason", "warming up"}}));
    }
    {
        Process p(kWorker, {"TEST_HEALTH=unhealthy"}, Codec::json);
        p.send(request(1, "$health"));
        EXPECT_EQ(p.response_to(id(1)).error->code, "UNHEALTHY");
    }
    {
        TempDir dir;
        const std::string flag = dir.path() + "/sick";
        Process p(kWorker, {"TEST_HEALTH_FILE=" + flag}, Codec::json);
        p.send(request(1, "$health"));
        EXPECT_TRUE(p.response_to(id(1)).result.has_value());
        std::ofstream(flag) << "x";
        p.send(request(2, "$health"));
        EXPECT_EQ(p.response_to(id(2)).error->code, "UNHEALTHY");
    }
}

TEST(Process, MethodsBehaveLikeThePythonTestWorker) {
    Process p(kWorker, {"SOME_VAR=some value"}, Codec::json);
    const auto call = [&p](std::uint64_t n, const std::string& method, const Value& params) {
        p.send(request(n, method, params));
        return p.response_to(Id(n));
    };
    EXPECT_EQ(call(1, "echo", {"a"}).result, Value("a"));
    EXPECT_EQ(call(2, "echo", {"a", "b"}).result, (Value{"a", "b"}));
    EXPECT_EQ(call(3, "echo", {{"k", 1}}).result, (Value{{"k", 1}}));
    EXPECT_EQ(call(4, "add", {2, 40}).result, Value(42));
    EXPECT_EQ(call(5, "add", {1, 2, 3}).error->code, "INVALID_PARAMS");
    const WorkerMessage f = call(6, "fail", {"NOT_READY", "model not loaded"});
    EXPECT_EQ(f.error->code, "NOT_READY");
    EXPECT_EQ(f.error->message, "model not loaded");
    const WorkerMessage b = call(7, "boom", nullptr);
    EXPECT_EQ(b.error->code, "INTERNAL");
    EXPECT_TRUE(mentions(b.error->message, "boom"));
    EXPECT_EQ(call(8, "pid", nullptr).result, Value(p.pid()));
    EXPECT_EQ(call(9, "env", {"SOME_VAR"}).result, Value("some value"));
    EXPECT_TRUE(call(10, "env", {"NO_SUCH_VAR_HERE"}).result->is_null());
    EXPECT_EQ(call(11, "big", {5}).result, Value("xxxxx"));
    EXPECT_EQ(call(12, "sleep", {-1}).error->code, "INVALID_PARAMS");
    EXPECT_EQ(call(13, "garbage", nullptr).result, Value("sent"));
    EXPECT_EQ(p.undecodable(), std::vector<std::string>{"this is not protocol"});
    p.send(request(14, "crash", {5}));
    EXPECT_EQ(p.wait(), std::optional<int>(5));
}

TEST(Process, FrameLimitFromTheEnvironment) {
    Process p(kWorker, {"POLYGLOT_MAX_FRAME=1024"}, Codec::json);
    p.send(request(1, "big", {2000}));
    EXPECT_EQ(p.response_to(id(1)).error->code, "FRAME_TOO_LARGE");
    p.send(request(2, "echo", {std::string(3000, 'q')}));
    EXPECT_EQ(p.response_to(id(2)).error->code, "FRAME_TOO_LARGE");
    p.send(request(3, "big", {10}));
    EXPECT_EQ(p.response_to(id(3)).result, Value("xxxxxxxxxx"));
}

TEST(Process, BadEnvironmentIsRefusedWithAMessage) {
    Process p(kWorker, {"POLYGLOT_CODEC=xml"}, Codec::json);
    EXPECT_EQ(p.wait(), std::optional<int>(1));
    EXPECT_NE(p.stderr_text().find("POLYGLOT_CODEC"), std::string::npos);
}

/// The socket transport: the test listens, the worker connects.
TEST(Process, SocketTransport) {
    TempDir dir;
    const std::string path = dir.path() + "/host.sock";
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    Process p(kWorker, {"POLYGLOT_TRANSPORT=socket", "POLYGLOT_SOCKET=" + path}, Codec::msgpack);
    const int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(listener);
    ASSERT_GE(conn, 0);
    Peer host(conn, ::dup(conn), Codec::msgpack);
    EXPECT_EQ(host.handshake().codec, Codec::msgpack);
    host.send(request(1, "echo", {"over the socket"}));
    EXPECT_EQ(host.response_to(id(1)).result, Value("over the socket"));
    host.send(request(2, "stray"));  // stdout is the worker's own with a socket
    EXPECT_EQ(host.response_to(id(2)).result, Value("printed"));
    ::shutdown(conn, SHUT_RDWR);  // the host closes: the worker exits
    EXPECT_EQ(p.wait(), std::optional<int>(0));
}

}  // namespace
