// polyglot/worker.hpp: Worker registers a module's methods and serves them over the
// protocol.
//
//     polyglot::Worker worker("signal-cpp", "1.0.0");
//     worker.method("double", [](const polyglot::Value& params, polyglot::Call&) {
//         return polyglot::Value(2 * polyglot::arg_int(params, 0, "x"));
//     });
//     return worker.serve(argc, argv);
//
// serve() reads the host's environment, takes the transport (stdin/stdout, the local
// socket the host names, or gRPC when the program links polyglot::worker_grpc), writes the
// handshake and answers requests until the input ends or `$shutdown` is done. Calls run on a fixed pool of max_concurrency() threads and are
// answered as each finishes; `$health` runs outside those slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "polyglot/call.hpp"
#include "polyglot/codec.hpp"
#include "polyglot/frame.hpp"
#include "polyglot/handshake.hpp"
#include "polyglot/value.hpp"

namespace polyglot {

namespace detail {
struct WorkerAccess;
}

/// A method: params in, result out. Throw polyglot::Error to fail the call with that
/// error; any other exception fails it with `INTERNAL`.
using Method = std::function<Value(const Value& params, Call& call)>;

/// The health check behind `$health`: returns an object merged into `{"status": "ok"}`
/// (or null). Returning `{"status": "degraded", "reason": ...}` reports a degraded worker;
/// throwing reports it unhealthy (a polyglot::Error with its code, anything else as
/// `UNHEALTHY`).
using HealthCheck = std::function<Value()>;

/// How a serve loop ended.
enum class Ended {
    input_closed,  ///< the input reached end of file: the host is gone or closed the stream
    shutdown,      ///< `$shutdown`: every call held was answered
    output_failed, ///< writing to the host failed
};

/// A polyglot worker: a module's methods, served over the protocol.
class Worker {
public:
    /// A worker for `module` at `version`, with no methods yet.
    Worker(std::string module, std::string version);

    /// Adds a method.
    /// @throws std::invalid_argument for an empty name, a reserved `$` name, or a name
    ///         added twice.
    Worker& method(std::string name, Method fn);

    /// Sets the health check behind `$health`.
    Worker& health(HealthCheck fn);

    /// How many calls it takes at once, announced in the handshake and the size of the
    /// thread pool that runs them (at least 1). Default: the number of hardware threads.
    Worker& max_concurrency(unsigned n);

    const std::string& module() const noexcept { return module_; }
    const std::string& version() const noexcept { return version_; }
    unsigned max_concurrency() const noexcept { return max_concurrency_; }

    /// The method names, sorted: what the handshake announces.
    std::vector<std::string> methods() const;

    /// The handshake this worker sends for `codec`.
    Handshake handshake(Codec codec) const;

    /// Serves this worker as the host started it; meant to be all of main():
    /// `return worker.serve(argc, argv);`. Returns the exit status: 0 after `$shutdown` or
    /// when the input ends, 1 when started wrongly. Run by hand (without
    /// POLYGLOT_PROTOCOL) it says on stderr what it is and returns 1.
    ///
    /// With POLYGLOT_TRANSPORT=grpc it serves gRPC (docs/protocol.md, section 10) when the
    /// program links the CMake target polyglot::worker_grpc, and ends the process itself
    /// once serving; without that target it says so on stderr and returns 1.
    ///
    /// When the input ends while calls still run, it does not wait for them: it marks them
    /// cancelled (dropping their answers), gives them 200 ms to return, flushes what is
    /// written and ends the process with status 0 (std::_Exit).
    int serve(int argc, char** argv) const;

    /// Serves one pair of file descriptors in this process, the way serve() serves stdio:
    /// writes the handshake, answers requests, and returns how it ended. Touches no
    /// environment and no stdio. Unlike serve(), it cannot end the process: when the input
    /// ends while calls run, they are marked cancelled, their results dropped, and it
    /// waits for them to return. For tests and tools.
    Ended run(int in_fd, int out_fd, Codec codec = Codec::json,
              std::size_t max_frame = kDefaultMaxFrame) const;

private:
    friend class detail::Session;
    friend struct detail::WorkerAccess;
    friend struct testing::CallAccess;

    std::string module_;
    std::string version_;
    unsigned max_concurrency_;
    std::map<std::string, Method> methods_;
    HealthCheck health_;
    std::optional<std::uint64_t> announced_protocol_;  // test hook: see testing.hpp
};

}  // namespace polyglot
