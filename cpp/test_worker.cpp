// polyglot-test-worker: the C++ worker the runtime's end-to-end tests start. Its methods
// and start-up behaviours match tests/workers/python_worker.py, so every scenario runs
// against a worker in each language. The module name comes from POLYGLOT_MODULE, the
// version from POLYGLOT_VERSION, and how many calls it takes at once from
// TEST_MAX_CONCURRENCY (default 16). Linked with polyglot::worker_grpc (when gRPC is
// installed), it serves the same methods over gRPC when started with
// POLYGLOT_TRANSPORT=grpc (docs/protocol.md, section 10).
//
// Methods:
//   echo(*args)      one positional arg -> it; several -> the list; named args -> the object
//   add(a, b)        a + b for two integers, else INVALID_PARAMS
//   fail(code, msg)  an error response with that code and message
//   boom()           throws std::runtime_error("boom") -> INTERNAL
//   sleep(ms, cancelMarker=null)
//                    sleeps ms milliseconds (cancellable), returns ms; when cancelled,
//                    writes "cancelled" to the file cancelMarker if given
//   progress(n)      sends n progress messages {"step": i}, i = 1..n, then returns n
//   crash(code=3)    exits the process at once with that status, mid-call
//   garbage()        writes "this is not protocol\n" to the protocol stream, returns "sent"
//   unknownId()      writes a response for id 987654321987 (never issued), returns "sent"
//   pid()            the process id
//   env(name)        the environment variable, or null
//   version()        POLYGLOT_VERSION
//   big(n)           a string of n "x"
//   stray()          prints to stdout (printf, std::cout and fd 1), returns "printed"
//
// Start-up behaviours, by environment variable:
//   TEST_BANNER=text       writes that line to stdout before the handshake
//   TEST_NO_HANDSHAKE=1    writes "starting..." to stderr and never sends a handshake (it
//                          exits when stdin closes, so it cannot outlive its host)
//   TEST_EXIT_AT_START=N   writes "fatal: cannot load model" to stderr and exits N
//   TEST_BAD_PROTOCOL=1    sends a handshake with "polyglot": 99
//   TEST_HEALTH=unhealthy  `$health` answers error UNHEALTHY
//   TEST_HEALTH_FILE=path  `$health` answers error UNHEALTHY while that file exists
//   TEST_HEALTH=degraded   `$health` answers {"status": "degraded", "reason": "warming up"}
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "polyglot/polyglot.hpp"
#include "polyglot/testing.hpp"

namespace {

using polyglot::Call;
using polyglot::Error;
using polyglot::Value;

/// The id of the response unknownId() writes, which the host never issued.
constexpr std::uint64_t kUnknownId = 987654321987ULL;

std::string getenv_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v == nullptr ? fallback : v;
}

bool is_integer(const Value& v) { return v.is_number_integer(); }  // true for unsigned too

/// Python's `*args` / `**kwargs` view of params, which python_worker.py's methods use: an
/// array is positional, an object named, null none, anything else one positional argument.
Value echo(const Value& params) {
    if (params.is_object() && !params.empty()) return params;
    if (params.is_array()) return params.size() == 1 ? params[0] : params;
    if (params.is_null() || params.is_object()) return Value::array();
    return params;
}

Value add(const Value& params) {
    polyglot::check_params(params, "add", {"a", "b"});
    const Value& a = polyglot::arg(params, 0, "a");
    const Value& b = polyglot::arg(params, 1, "b");
    if (!is_integer(a) || !is_integer(b)) {
        throw Error(polyglot::code::INVALID_PARAMS, "add takes two integers");
    }
    // Python's integers do not overflow: add exactly, and refuse a sum outside 64 bits.
    const bool a_neg = !a.is_number_unsigned() && a.get<std::int64_t>() < 0;
    const bool b_neg = !b.is_number_unsigned() && b.get<std::int64_t>() < 0;
    const auto magnitude = [](const Value& v) {  // |v| of a negative int64, as uint64
        return static_cast<std::uint64_t>(-(v.get<std::int64_t>() + 1)) + 1;
    };
    if (!a_neg && !b_neg) {
        const std::uint64_t x = a.get<std::uint64_t>();
        const std::uint64_t y = b.get<std::uint64_t>();
        if (x > UINT64_MAX - y) throw Error(polyglot::code::INVALID_PARAMS, "the sum is over 64 bits");
        return Value(x + y);
    }
    if (a_neg && b_neg) {
        std::int64_t sum = 0;
        if (__builtin_add_overflow(a.get<std::int64_t>(), b.get<std::int64_t>(), &sum)) {
            throw Error(polyglot::code::INVALID_PARAMS, "the sum is under the 64-bit range");
        }
        return Value(sum);
    }
    const std::uint64_t pos = a_neg ? b.get<std::uint64_t>() : a.get<std::uint64_t>();
    const std::uint64_t neg = a_neg ? magnitude(a) : magnitude(b);
    if (pos >= neg) return Value(pos - neg);
    return Value(-static_cast<std::int64_t>(neg - pos - 1) - 1);
}

Value fail(const Value& params) {
    polyglot::check_params(params, "fail", {"code", "message"});
    const Value& code = polyglot::arg(params, 0, "code");
    const Value& message = polyglot::arg(params, 1, "message");
    if (!code.is_string() || code.get_ref<const std::string&>().empty() || !message.is_string()) {
        throw Error(polyglot::code::INVALID_PARAMS,
                    "fail takes a code and a message, two strings");
    }
    throw Error(code.get<std::string>(), message.get<std::string>());
}

Value sleep_method(const Value& params, Call& call) {
    polyglot::check_params(params, "sleep", {"ms", "cancelMarker"});
    const Value& ms = polyglot::arg(params, 0, "ms");
    if (!ms.is_number() || ms.get<double>() < 0) {
        throw Error(polyglot::code::INVALID_PARAMS, "sleep takes a number of milliseconds >= 0");
    }
    const Value* marker = polyglot::opt_arg(params, 1, "cancelMarker");
    // At most a year: far beyond any test, and the conversion below cannot overflow.
    const double wanted = std::min(ms.get<double>(), 365.0 * 24 * 3600 * 1000);
    const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double, std::milli>(wanted));
    if (call.wait_cancelled_for(duration)) {
        // Written when the call is cancelled, so tests can see `$cancel` arrived.
        if (marker != nullptr && marker->is_string()) {
            std::ofstream(marker->get<std::string>()) << "cancelled";
        }
        call.throw_if_cancelled();
    }
    return ms;
}

Value progress_method(const Value& params, Call& call) {
    polyglot::check_params(params, "progress", {"n"});
    const Value& n = polyglot::arg(params, 0, "n");
    if (!is_integer(n) || (!n.is_number_unsigned() && n.get<std::int64_t>() < 0)) {
        throw Error(polyglot::code::INVALID_PARAMS, "progress takes a count >= 0");
    }
    const auto count = n.get<std::uint64_t>();
    for (std::uint64_t i = 1; i <= count; ++i) call.progress(Value{{"step", i}});
    return n;
}

Value crash(const Value& params) {
    const Value* code = polyglot::opt_arg(params, 0, "code");
    polyglot::check_params(params, "crash", {"code"});
    const int status = code != nullptr && is_integer(*code)
                           ? static_cast<int>(code->get<std::int64_t>() & 0xff)
                           : 3;
    std::_Exit(status);
}

Value big(const Value& params) {
    polyglot::check_params(params, "big", {"n"});
    const Value& n = polyglot::arg(params, 0, "n");
    if (!is_integer(n) || (!n.is_number_unsigned() && n.get<std::int64_t>() < 0)) {
        throw Error(polyglot::code::INVALID_PARAMS, "big takes a length >= 0");
    }
    return Value(std::string(n.get<std::size_t>(), 'x'));
}

Value env(const Value& params) {
    polyglot::check_params(params, "env", {"name"});
    const std::string& name = polyglot::arg_string(params, 0, "name");
    const char* v = std::getenv(name.c_str());
    return v == nullptr ? Value(nullptr) : Value(v);
}

Value stray() {
    // Careless code printing to stdout: the SDK keeps it off the protocol.
    std::printf("stray output from a handler\n");
    std::cout << "stray output from std::cout" << std::endl;
    const char bytes[] = "stray bytes on fd 1\n";
    [[maybe_unused]] const ssize_t n = ::write(1, bytes, sizeof bytes - 1);
    return Value("printed");
}

Value health() {
    const std::string mode = getenv_or("TEST_HEALTH", "");
    if (mode == "unhealthy") {
        throw Error(polyglot::code::UNHEALTHY, "unhealthy because TEST_HEALTH=unhealthy");
    }
    const std::string file = getenv_or("TEST_HEALTH_FILE", "");
    struct stat st {};
    if (!file.empty() && ::stat(file.c_str(), &st) == 0) {
        throw Error(polyglot::code::UNHEALTHY, "unhealthy while " + file + " exists");
    }
    if (mode == "degraded") return Value{{"status", "degraded"}, {"reason", "warming up"}};
    return Value{{"pid", ::getpid()}};
}

unsigned max_concurrency() {
    const std::string v = getenv_or("TEST_MAX_CONCURRENCY", "16");
    try {
        const long n = std::stol(v);
        return n < 1 ? 1u : static_cast<unsigned>(n);
    } catch (const std::exception&) {
        return 16;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (const char* code = std::getenv("TEST_EXIT_AT_START")) {
        std::fprintf(stderr, "fatal: cannot load model\n");
        std::fflush(stderr);
        std::_Exit(std::atoi(code));
    }
    if (getenv_or("TEST_NO_HANDSHAKE", "") == "1") {
        std::fprintf(stderr, "starting...\n");
        std::fflush(stderr);
        // Never handshakes; waits for stdin to close so it cannot outlive the host.
        char buf[65536];
        while (::read(0, buf, sizeof buf) > 0) {
        }
        return 0;
    }
    if (const char* banner = std::getenv("TEST_BANNER")) {
        const std::string line = std::string(banner) + "\n";  // the real stdout, before serve()
        [[maybe_unused]] const ssize_t n = ::write(1, line.data(), line.size());
    }

    polyglot::Worker worker(getenv_or("POLYGLOT_MODULE", "cpp-test-worker"),
                            getenv_or("POLYGLOT_VERSION", "0.0.0"));
    worker.max_concurrency(max_concurrency());
    if (getenv_or("TEST_BAD_PROTOCOL", "") == "1") {
        polyglot::testing::announce_protocol_version(worker, 99);
    }
    worker.method("echo", [](const Value& p, Call&) { return echo(p); })
        .method("add", [](const Value& p, Call&) { return add(p); })
        .method("fail", [](const Value& p, Call&) { return fail(p); })
        .method("boom",
                [](const Value& p, Call&) -> Value {
                    polyglot::check_params(p, "boom", {});
                    throw std::runtime_error("boom");
                })
        .method("sleep", sleep_method)
        .method("progress", progress_method)
        .method("crash", [](const Value& p, Call&) { return crash(p); })
        .method("garbage",
                [](const Value& p, Call& call) {
                    polyglot::check_params(p, "garbage", {});
                    polyglot::testing::write_raw(call, "this is not protocol\n");
                    return Value("sent");
                })
        .method("unknownId",
                [](const Value& p, Call& call) {
                    polyglot::check_params(p, "unknownId", {});
                    polyglot::testing::write_message(
                        call, Value{{"id", kUnknownId}, {"result", "nobody asked"}});
                    return Value("sent");
                })
        .method("pid",
                [](const Value& p, Call&) {
                    polyglot::check_params(p, "pid", {});
                    return Value(::getpid());
                })
        .method("env", [](const Value& p, Call&) { return env(p); })
        .method("version",
                [](const Value& p, Call&) {
                    polyglot::check_params(p, "version", {});
                    const char* v = std::getenv("POLYGLOT_VERSION");
                    return v == nullptr ? Value(nullptr) : Value(v);
                })
        .method("big", [](const Value& p, Call&) { return big(p); })
        .method("stray",
                [](const Value& p, Call&) {
                    polyglot::check_params(p, "stray", {});
                    return stray();
                })
        .health(health);
    return worker.serve(argc, argv);
}
