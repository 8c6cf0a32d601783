// The SDK's dispatch, in process: sessions.json replayed through Worker::run with the
// handlers its `handlers` text describes, then the behaviours of docs/protocol.md sections
// 3-5 that the vectors cannot express (cancel, shutdown, duplicates, limits, health, ...).
#include <atomic>
#include <cmath>
#include <limits>
#include <set>

#include <gtest/gtest.h>

#include "support.hpp"

namespace {

using namespace support;
using polyglot::Call;
using polyglot::Ended;
using polyglot::Error;
using polyglot::Id;
using polyglot::Worker;
using polyglot::WorkerMessage;

/// The worker sessions.json's `handlers` text describes.
Worker vectors_worker() {
    Worker w("vectors", "1.0.0");
    w.method("echo", [](const Value& p, Call&) { return p; });
    w.method("add", [](const Value& p, Call&) {
        const Value& a = polyglot::arg(p, 0, "a");
        const Value& b = polyglot::arg(p, 1, "b");
        if (!a.is_number_integer() || !b.is_number_integer()) {
            throw Error(polyglot::code::INVALID_PARAMS, "add takes two integers");
        }
        return Value(a.get<std::int64_t>() + b.get<std::int64_t>());
    });
    w.method("fail", [](const Value& p, Call&) -> Value {
        throw Error(polyglot::arg_string(p, 0, "code"), polyglot::arg_string(p, 1, "message"));
    });
    w.method("boom", [](const Value&, Call&) -> Value { throw std::runtime_error("boom"); });
    return w;
}

TEST(Sessions, ReplayEveryCase) {
    const Worker worker = vectors_worker();
    for (const auto& c : load_cases("sessions.json")) {
        SCOPED_TRACE(c.at("name").get<std::string>());
        const Codec codec = *polyglot::parse_codec(c.at("codec").get<std::string>());
        InProcess peer(worker, codec, 1 << 20);
        const polyglot::Handshake h = peer.handshake();
        EXPECT_EQ(h.module, "vectors");
        EXPECT_EQ(h.codec, codec);
        std::set<std::string> ids;  // the ids asked, as text
        for (const auto& m : c.at("send")) {
            peer.send(m);
            if (m.contains("id")) ids.insert(Id::from_value(m["id"])->to_string());
        }
        // `$shutdown` drains every call held, then the worker ends its output.
        peer.send(notification("$shutdown"));
        ASSERT_TRUE(peer.read_to_end());
        EXPECT_EQ(peer.ended(), Ended::shutdown);
        EXPECT_TRUE(peer.undecodable().empty());
        std::map<std::string, WorkerMessage> responses;
        for (const auto& m : peer.seen()) {
            ASSERT_EQ(m.kind, WorkerMessage::Kind::response);
            const std::string key = m.id->to_string();
            EXPECT_TRUE(ids.count(key)) << "a response to " << key << ", which was not asked";
            EXPECT_TRUE(responses.emplace(key, m).second) << "two responses to " << key;
        }
        EXPECT_EQ(responses.size(), c.at("expect").size());
        for (const auto& exp : c.at("expect")) {
            const std::string key = Id::from_value(exp.at("id"))->to_string();
            ASSERT_TRUE(responses.count(key)) << "no response to " << key;
            const WorkerMessage& got = responses.at(key);
            EXPECT_EQ(got.id->to_value(), exp["id"]);  // same type, same value
            if (exp.contains("result")) {
                ASSERT_TRUE(got.result.has_value()) << key << ": " << (got.error ? got.error->message : "");
                EXPECT_TRUE(same(*got.result, exp["result"])) << show(*got.result);
            }
            if (exp.contains("error")) {
                ASSERT_TRUE(got.error.has_value()) << key;
                EXPECT_EQ(got.error->code, exp["error"].at("code").get<std::string>());
                if (exp["error"].contains("message")) {
                    EXPECT_EQ(got.error->message, exp["error"]["message"].get<std::string>());
                }
            }
        }
    }
}

// ------------------------------------------------------------------------ behaviours

/// A worker with methods for the behaviours below.
Worker behaviour_worker(std::atomic<int>* notified = nullptr) {
    Worker w("behaviour", "2.0.0");
    w.max_concurrency(4);
    w.method("echo", [](const Value& p, Call&) { return p; });
    // wait(ms): waits until cancelled or `ms` passes; returns "done" or throws CANCELLED.
    w.method("wait", [](const Value& p, Call& call) {
        if (call.wait_cancelled_for(std::chrono::milliseconds(polyglot::arg_uint(p, 0, "ms")))) {
            call.throw_if_cancelled();
        }
        return Value("done");
    });
    w.method("steps", [](const Value& p, Call& call) {
        const auto n = polyglot::arg_uint(p, 0, "n");
        for (std::uint64_t i = 1; i <= n; ++i) call.progress(Value{{"step", i}});
        call.log(polyglot::LogLevel::warn, "stepped", Value{{"n", n}});
        return Value(n);
    });
    w.method("big", [](const Value& p, Call&) {
        return Value(std::string(polyglot::arg_uint(p, 0, "n"), 'x'));
    });
    w.method("nan", [](const Value&, Call&) {
        return Value(std::numeric_limits<double>::quiet_NaN());
    });
    w.method("detailed", [](const Value&, Call&) -> Value {
        throw Error("NOT_READY", "model not loaded", Value{{"retryMs", 50}});
    });
    w.method("throws42", [](const Value&, Call&) -> Value { throw 42; });
    w.method("count", [notified](const Value&, Call&) {
        if (notified != nullptr) ++*notified;
        return Value(nullptr);
    });
    return w;
}

TEST(Dispatch, CancelAnswersAtOnceAndDropsTheLateResult) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "wait", {60000}));
    peer.send(request(2, "wait", {10}));  // a call that ends: the worker is still serving
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).result, Value("done"));
    const auto before = std::chrono::steady_clock::now();
    peer.send(notification("$cancel", {{"id", 1}}));
    const WorkerMessage m = peer.response_to(Id(std::uint64_t{1}));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    ASSERT_TRUE(m.error.has_value());
    EXPECT_EQ(m.error->code, "CANCELLED");
    // The method saw the flag and threw; that late answer is dropped: one response for 1.
    peer.send(request(3, "echo", "after"));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{3})).result, Value("after"));
    peer.send(notification("$shutdown"));
    ASSERT_TRUE(peer.read_to_end());
    int answers_to_1 = 0;
    for (const auto& s : peer.seen()) answers_to_1 += s.id == Id(std::uint64_t{1}) ? 1 : 0;
    EXPECT_EQ(answers_to_1, 1);
    EXPECT_EQ(peer.ended(), Ended::shutdown);
}

TEST(Dispatch, CancelOfAFinishedOrUnknownCallIsIgnored) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "echo", 1));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{1})).result, Value(1));
    peer.send(notification("$cancel", {{"id", 1}}));
    peer.send(notification("$cancel", {{"id", "nobody"}}));
    peer.send(notification("$cancel", "not an object"));
    peer.send(notification("$shutdown"));
    ASSERT_TRUE(peer.read_to_end());
    EXPECT_EQ(peer.seen().size(), 1u);
}

TEST(Dispatch, ReservedNotificationsSentWithAnIdAreAnsweredNull) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::msgpack);
    peer.send(request("c", "$cancel", {{"id", 99}}));
    const WorkerMessage c = peer.response_to(Id(std::string("c")));
    ASSERT_TRUE(c.result.has_value());
    EXPECT_TRUE(c.result->is_null());
    peer.send(request("s", "$shutdown"));
    const WorkerMessage s = peer.response_to(Id(std::string("s")));
    ASSERT_TRUE(s.result.has_value());
    EXPECT_TRUE(s.result->is_null());
    ASSERT_TRUE(peer.read_to_end());
    EXPECT_EQ(peer.ended(), Ended::shutdown);
}

TEST(Dispatch, DuplicateIdOfARunningCallIsRefusedAndTheCallRunsOn) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(5, "wait", {1000}));  // long enough to be surely running
    peer.send(request(5, "echo", "again"));
    const WorkerMessage dup = peer.expect_next();
    EXPECT_EQ(*dup.id, Id(std::uint64_t{5}));
    ASSERT_TRUE(dup.error.has_value());
    EXPECT_EQ(dup.error->code, "INVALID_REQUEST");
    const WorkerMessage original = peer.expect_next();
    EXPECT_EQ(*original.id, Id(std::uint64_t{5}));
    EXPECT_EQ(original.result, Value("done"));
}

TEST(Dispatch, ShutdownFinishesHeldCallsAndRefusesNewOnes) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "wait", {500}));
    peer.send(notification("$shutdown"));
    peer.send(request(2, "echo", "late"));
    const WorkerMessage refused = peer.response_to(Id(std::uint64_t{2}));
    ASSERT_TRUE(refused.error.has_value());
    EXPECT_EQ(refused.error->code, "SHUTTING_DOWN");
    // `$cancel` still works while shutting down.
    peer.send(request(3, "$cancel", {{"id", 42}}));
    EXPECT_TRUE(peer.response_to(Id(std::uint64_t{3})).result->is_null());
    const WorkerMessage held = peer.response_to(Id(std::uint64_t{1}));
    EXPECT_EQ(held.result, Value("done"));
    ASSERT_TRUE(peer.read_to_end());  // then it ends on its own, input still open
    EXPECT_EQ(peer.ended(), Ended::shutdown);
}

TEST(Dispatch, ShutdownStillDrainsWhenTheInputEndsRightAfter) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "wait", {200}));
    peer.send(notification("$shutdown"));
    peer.close_input();
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{1})).result, Value("done"));
    EXPECT_EQ(peer.ended(), Ended::shutdown);
}

TEST(Dispatch, EndOfInputStopsWithoutWaitingAndCancelsRunningCalls) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "wait", {60000}));
    peer.send(request(2, "echo", 2));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).result, Value(2));
    const auto before = std::chrono::steady_clock::now();
    peer.close_input();
    EXPECT_EQ(peer.ended(), Ended::input_closed);
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    ASSERT_TRUE(peer.read_to_end());
    for (const auto& m : peer.seen()) EXPECT_NE(*m.id, Id(std::uint64_t{1})) << "answered after EOF";
}

TEST(Dispatch, IdsAreEchoedVerbatim) {
    const Worker w = behaviour_worker();
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        InProcess peer(w, codec);
        const std::vector<Value> ids = {Value(std::numeric_limits<std::int64_t>::min()),
                                        Value(std::numeric_limits<std::uint64_t>::max()),
                                        Value(-1), Value(0), Value("call-ü"), Value("")};
        for (const auto& id : ids) {
            peer.send(request(id, "echo", id));
            const WorkerMessage m = peer.response_to(*Id::from_value(id));
            EXPECT_TRUE(same(m.id->to_value(), id)) << show(id);
            EXPECT_TRUE(same(*m.result, id)) << show(id);
        }
    }
}

TEST(Dispatch, InvalidRequestsAreAnsweredWhenTheirIdCanBeRead) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send_raw("{\"id\":12,\"method\":5}\n");
    peer.send_raw("{\"id\":13,\"method\":\"ec\n");  // not JSON, but starts with its id
    peer.send_raw("not json at all\n");              // no id: dropped, and reported on stderr
    peer.send_raw("{\"id\":1.5,\"method\":\"echo\"}\n");  // an id that is not one: dropped
    peer.send_raw("\n\r\n");                         // blank lines carry nothing
    peer.send(request(14, "echo", "still serving"));
    for (const std::uint64_t id : {12u, 13u}) {
        const WorkerMessage m = peer.response_to(Id(std::uint64_t{id}));
        ASSERT_TRUE(m.error.has_value());
        EXPECT_EQ(m.error->code, "INVALID_REQUEST");
    }
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{14})).result, Value("still serving"));
    peer.send(notification("$shutdown"));
    ASSERT_TRUE(peer.read_to_end());
    EXPECT_EQ(peer.seen().size(), 3u);
}

TEST(Dispatch, UnknownMethodsAndReservedNames) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "nope"));
    const WorkerMessage m = peer.response_to(Id(std::uint64_t{1}));
    EXPECT_EQ(m.error->code, "METHOD_NOT_FOUND");
    EXPECT_TRUE(mentions(m.error->message, "nope")) << m.error->message;
    peer.send(request(2, "$nope"));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).error->code, "METHOD_NOT_FOUND");
    EXPECT_THROW(Worker("x", "1").method("$health", [](const Value&, Call&) { return Value(); }),
                 std::invalid_argument);
    EXPECT_THROW(Worker("x", "1").method("", [](const Value&, Call&) { return Value(); }),
                 std::invalid_argument);
}

TEST(Dispatch, NotificationsRunButAreNeverAnswered) {
    std::atomic<int> notified{0};
    const Worker w = behaviour_worker(&notified);
    InProcess peer(w, Codec::json);
    peer.send(notification("count"));
    peer.send(notification("count"));
    peer.send(notification("nope"));
    peer.send(notification("$health"));
    peer.send(notification("$shutdown"));
    ASSERT_TRUE(peer.read_to_end());
    EXPECT_EQ(notified.load(), 2);
    EXPECT_TRUE(peer.seen().empty());
}

TEST(Dispatch, ErrorsAndExceptions) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "detailed"));
    const WorkerMessage d = peer.response_to(Id(std::uint64_t{1}));
    EXPECT_EQ(d.error->code, "NOT_READY");
    EXPECT_EQ(d.error->message, "model not loaded");
    ASSERT_TRUE(d.error->data.has_value());
    EXPECT_EQ(*d.error->data, (Value{{"retryMs", 50}}));
    peer.send(request(2, "throws42"));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).error->code, "INTERNAL");
    peer.send(request(3, "wait", {{"ms", "soon"}}));
    const WorkerMessage bad = peer.response_to(Id(std::uint64_t{3}));
    EXPECT_EQ(bad.error->code, "INVALID_PARAMS");
    EXPECT_TRUE(mentions(bad.error->message, "ms")) << bad.error->message;
    peer.send(request(4, "echo", 4));  // still serving after all of them
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{4})).result, Value(4));
}

TEST(Dispatch, ProgressAndLogsComeBeforeTheResponse) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::msgpack);
    peer.send(request(7, "steps", {3}));
    std::vector<WorkerMessage> got;
    for (;;) {
        got.push_back(peer.expect_next());
        if (got.back().kind == WorkerMessage::Kind::response) break;
    }
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(got[static_cast<std::size_t>(i)].kind, WorkerMessage::Kind::progress);
        EXPECT_EQ(got[static_cast<std::size_t>(i)].progress, (Value{{"step", i + 1}}));
    }
    EXPECT_EQ(got[3].kind, WorkerMessage::Kind::log);
    EXPECT_EQ(got[3].level, polyglot::LogLevel::warn);
    EXPECT_EQ(got[3].message, "stepped");
    EXPECT_EQ(got[4].result, Value(3));
    EXPECT_TRUE(got[4].execution_time.has_value());
    EXPECT_TRUE(got[4].timestamp.has_value());
}

TEST(Dispatch, ProgressAfterTheAnswerIsDroppedAndDetachedCallsSendNothing) {
    auto call = Call::detached("steps", Id(std::uint64_t{1}));
    EXPECT_NO_THROW(call->progress(Value{{"step", 1}}));
    EXPECT_NO_THROW(call->log(polyglot::LogLevel::info, "nowhere"));
    EXPECT_FALSE(call->cancelled());
    call->cancel();
    EXPECT_TRUE(call->cancelled());
    EXPECT_TRUE(call->wait_cancelled_for(10s));  // returns at once
    EXPECT_THROW(call->throw_if_cancelled(), Error);
}

TEST(Dispatch, OversizeRequestsAreSkippedAndAnsweredFrameTooLarge) {
    const Worker w = behaviour_worker();
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        SCOPED_TRACE(polyglot::to_string(codec));
        InProcess peer(w, codec, 1024);
        peer.send(request(1, "echo", std::string(5000, 'y')));
        peer.send(request(2, "echo", "small"));
        const WorkerMessage big = peer.response_to(Id(std::uint64_t{1}));
        ASSERT_TRUE(big.error.has_value());
        EXPECT_EQ(big.error->code, "FRAME_TOO_LARGE");
        EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).result, Value("small"));
    }
}

TEST(Dispatch, OversizeResponsesAreReplacedByFrameTooLarge) {
    const Worker w = behaviour_worker();
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        SCOPED_TRACE(polyglot::to_string(codec));
        InProcess peer(w, codec, 1024);
        peer.send(request(1, "big", {4000}));
        const WorkerMessage m = peer.response_to(Id(std::uint64_t{1}));
        ASSERT_TRUE(m.error.has_value());
        EXPECT_EQ(m.error->code, "FRAME_TOO_LARGE");
        EXPECT_TRUE(m.execution_time.has_value());
        peer.send(request(2, "big", {900}));
        EXPECT_EQ(peer.response_to(Id(std::uint64_t{2})).result->get<std::string>().size(), 900u);
    }
}

TEST(Dispatch, ResultsOutsideTheCodecBecomeInternalErrors) {
    const Worker w = behaviour_worker();
    InProcess json(w, Codec::json);
    json.send(request(1, "nan"));
    const WorkerMessage m = json.response_to(Id(std::uint64_t{1}));
    ASSERT_TRUE(m.error.has_value());
    EXPECT_EQ(m.error->code, "INTERNAL");
    EXPECT_TRUE(mentions(m.error->message, "cannot be sent")) << m.error->message;
    InProcess mp(w, Codec::msgpack);  // MessagePack carries NaN
    mp.send(request(1, "nan"));
    EXPECT_TRUE(std::isnan(mp.response_to(Id(std::uint64_t{1})).result->get<double>()));
}

TEST(Health, DefaultIsOk) {
    const Worker w = behaviour_worker();
    InProcess peer(w, Codec::json);
    peer.send(request(1, "$health"));
    EXPECT_EQ(*peer.response_to(Id(std::uint64_t{1})).result, (Value{{"status", "ok"}}));
}

TEST(Health, CallbackIsMergedAndAnsweredOutsideTheMethodSlots) {
    Worker w = behaviour_worker();
    w.max_concurrency(1);
    w.health([] { return Value{{"load", 0.5}}; });
    InProcess peer(w, Codec::json);
    peer.send(request(1, "wait", {60000}));  // the only method slot is busy
    peer.send(request(2, "$health"));
    EXPECT_EQ(*peer.response_to(Id(std::uint64_t{2})).result,
              (Value{{"status", "ok"}, {"load", 0.5}}));
    peer.send(notification("$cancel", {{"id", 1}}));
    EXPECT_EQ(peer.response_to(Id(std::uint64_t{1})).error->code, "CANCELLED");
}

TEST(Health, FailuresReportTheWorkerUnhealthy) {
    struct Case {
        polyglot::HealthCheck check;
        std::string code;
    };
    const std::vector<Case> cases = {
        {[]() -> Value { throw std::runtime_error("disk full"); }, "UNHEALTHY"},
        {[]() -> Value { throw Error("NOT_READY", "warming"); }, "NOT_READY"},
        {[]() -> Value { return Value(5); }, "UNHEALTHY"},
        {[]() -> Value { throw 1; }, "UNHEALTHY"},
    };
    for (const auto& c : cases) {
        Worker w = behaviour_worker();
        w.health(c.check);
        InProcess peer(w, Codec::json);
        peer.send(request(1, "$health"));
        const WorkerMessage m = peer.response_to(Id(std::uint64_t{1}));
        ASSERT_TRUE(m.error.has_value());
        EXPECT_EQ(m.error->code, c.code);
    }
}

TEST(Handshake, IsOneJsonLineWithSortedMethodsInBothCodecs) {
    Worker w("hs", "3.1.4");
    w.max_concurrency(3);
    w.method("zeta", [](const Value&, Call&) { return Value(); });
    w.method("alpha", [](const Value&, Call&) { return Value(); });
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        InProcess peer(w, codec);
        const polyglot::Handshake h = peer.handshake();
        EXPECT_EQ(h.protocol, 1u);
        EXPECT_EQ(h.module, "hs");
        EXPECT_EQ(h.version, "3.1.4");
        EXPECT_EQ(h.language, std::optional<std::string>("cpp"));
        EXPECT_EQ(h.codec, codec);
        EXPECT_EQ(h.methods, (std::vector<std::string>{"alpha", "zeta"}));
        EXPECT_EQ(h.max_concurrency, 3u);
        EXPECT_TRUE(h.pid.has_value());
        EXPECT_TRUE(peer.banners().empty());
    }
    EXPECT_GE(Worker("d", "1").max_concurrency(), 1u);
}

}  // namespace
