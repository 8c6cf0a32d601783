// Worker: registration, the handshake, serve() (environment, transport, process exit) and
// run() (one pair of descriptors, in process).
#include "polyglot/worker.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "grpc_hook.hpp"
#include "session.hpp"
#include "transport.hpp"

namespace polyglot {

namespace detail {

namespace {

/// The gRPC transport, when linked in. A plain pointer, constant-initialized before any
/// constructor runs, so installing it from another file's static initializer is safe.
GrpcServe grpc_serve = nullptr;

}  // namespace

void install_grpc_serve(GrpcServe serve) noexcept { grpc_serve = serve; }

GrpcServe installed_grpc_serve() noexcept { return grpc_serve; }

}  // namespace detail

namespace {

/// How long the worker waits, when it stops, for its last frames to be written. Bounded so
/// a host that stopped reading cannot keep a worker alive; long enough for any live host.
constexpr std::chrono::milliseconds kExitFlushTimeout{2000};

/// When the input ends, how long running calls get to notice they are cancelled (and
/// clean up) before the process ends: enough for a method that waits with
/// Call::wait_cancelled_for() or polls cancelled(), short enough that the worker is gone at
/// once as far as the host can tell.
constexpr std::chrono::milliseconds kAbandonGrace{200};

/// How long run() waits for its last frames: in process, the reader is the caller.
constexpr std::chrono::milliseconds kRunFlushTimeout{60000};

unsigned default_concurrency() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}

/// Prints "<module>: <message>" to stderr.
void complain(const std::string& module, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", module.c_str(), message.c_str());
    std::fflush(stderr);
}

/// The serve loop's options, read from the host's environment.
struct Options {
    Codec codec = Codec::json;
    std::size_t max_frame = kDefaultMaxFrame;
    enum class Transport { stdio, socket, grpc } transport = Transport::stdio;
    std::string socket_path;
};

/// Reads POLYGLOT_CODEC, POLYGLOT_MAX_FRAME, POLYGLOT_TRANSPORT and POLYGLOT_SOCKET.
/// @throws std::invalid_argument naming the variable, its value and what is wrong.
Options options_from_env() {
    Options o;
    const auto get = [](const char* name) -> std::string {
        const char* v = std::getenv(name);
        return v == nullptr ? std::string() : std::string(v);
    };
    const auto bad = [](const char* name, const std::string& value, const std::string& problem) {
        return std::invalid_argument(std::string(name) + " is \"" + value + "\": " + problem);
    };
    if (const auto v = get(env::CODEC); !v.empty()) {
        const auto codec = parse_codec(v);
        if (!codec) throw bad(env::CODEC, v, "expected \"json\" or \"msgpack\"");
        o.codec = *codec;
    }
    if (const auto v = get(env::MAX_FRAME); !v.empty()) {
        std::size_t n = 0;
        bool ok = v.size() <= 19;
        for (const char c : v) {
            ok = ok && c >= '0' && c <= '9';
            if (ok) n = n * 10 + static_cast<std::size_t>(c - '0');
        }
        if (!ok || n == 0) throw bad(env::MAX_FRAME, v, "expected a positive number of bytes");
        o.max_frame = n;
    }
    const auto transport = get(env::TRANSPORT);
    if (transport == "socket") {
        o.transport = Options::Transport::socket;
        o.socket_path = get(env::SOCKET);
        if (o.socket_path.empty()) {
            throw bad(env::SOCKET, "", "the socket transport needs the path of the host's socket");
        }
    } else if (transport == "grpc") {
        o.transport = Options::Transport::grpc;
    } else if (!transport.empty() && transport != "stdio") {
        throw bad(env::TRANSPORT, transport, "expected \"stdio\", \"socket\" or \"grpc\"");
    }
    return o;
}

}  // namespace

Worker::Worker(std::string module, std::string version)
    : module_(std::move(module)),
      version_(std::move(version)),
      max_concurrency_(default_concurrency()) {}

Worker& Worker::method(std::string name, Method fn) {
    if (name.empty()) throw std::invalid_argument("a method name must not be empty");
    if (name[0] == '$') {
        throw std::invalid_argument("method name \"" + name +
                                    "\": names starting with '$' are reserved");
    }
    if (!fn) throw std::invalid_argument("method \"" + name + "\" has no function");
    if (!methods_.emplace(name, std::move(fn)).second) {
        throw std::invalid_argument("method \"" + name + "\" is added twice");
    }
    return *this;
}

Worker& Worker::health(HealthCheck fn) {
    health_ = std::move(fn);
    return *this;
}

Worker& Worker::max_concurrency(unsigned n) {
    max_concurrency_ = n == 0 ? 1 : n;
    return *this;
}

std::vector<std::string> Worker::methods() const {
    std::vector<std::string> names;
    names.reserve(methods_.size());
    for (const auto& m : methods_) names.push_back(m.first);  // std::map: sorted
    return names;
}

Handshake Worker::handshake(Codec codec) const {
    Handshake h;
    h.protocol = announced_protocol_.value_or(kProtocolVersion);
    h.module = module_;
    h.version = version_;
    h.language = "cpp";
    h.codec = codec;
    h.methods = methods();
    h.max_concurrency = max_concurrency_;
    h.pid = static_cast<std::uint64_t>(::getpid());
    return h;
}

int Worker::serve(int argc, char** argv) const {
    const char* protocol = std::getenv(env::PROTOCOL);
    if (protocol == nullptr) {
        const std::string program = argc > 0 && argv != nullptr && argv[0] != nullptr
                                        ? std::string(" (") + argv[0] + ")"
                                        : std::string();
        complain(module_,
                 "this program" + program + " is a polyglot worker for module \"" + module_ +
                     "\"; it is started by polyglot-host, which speaks to it over "
                     "stdin/stdout (see docs/protocol.md). Add it to a module.json and run "
                     "polyglot-host instead.");
        return 1;
    }
    if (std::string(protocol) != std::to_string(kProtocolVersion)) {
        complain(module_, std::string(env::PROTOCOL) + " is \"" + protocol +
                              "\": this worker speaks protocol version " +
                              std::to_string(kProtocolVersion));
        return 1;
    }
    Options options;
    try {
        options = options_from_env();
    } catch (const std::exception& e) {
        complain(module_, e.what());
        return 1;
    }
    if (options.transport == Options::Transport::grpc) {
        const detail::GrpcServe grpc = detail::installed_grpc_serve();
        if (grpc == nullptr) {
            complain(module_, std::string(env::TRANSPORT) +
                                  " is \"grpc\", but this program was built without the gRPC "
                                  "transport: link it with the CMake target "
                                  "polyglot::worker_grpc (see cpp/README.md)");
            return 1;
        }
        return grpc(*this, detail::ServeOptions{options.codec, options.max_frame});
    }
    detail::Streams streams;
    try {
        detail::die_with_parent();
        // A write to a host that is gone fails with EPIPE instead of killing the process.
        std::signal(SIGPIPE, SIG_IGN);
        streams = options.transport == Options::Transport::socket
                      ? detail::connect_socket(options.socket_path)
                      : detail::take_stdio();
    } catch (const std::exception& e) {
        complain(module_, e.what());
        return 1;
    }
    std::unique_ptr<detail::FdInput> input;
    std::unique_ptr<detail::FdSink> output;
    std::unique_ptr<detail::Session> session;
    Ended ended = Ended::input_closed;
    try {
        input = std::make_unique<detail::FdInput>(streams.in);
        output = std::make_unique<detail::FdSink>(streams.out);
        detail::SessionConfig config;
        config.codec = options.codec;
        config.max_frame = options.max_frame;
        session = std::make_unique<detail::Session>(*this, config, *input, *output);
        ended = session->serve();
    } catch (const std::exception& e) {  // no thread, no pipe, a handshake that cannot be written
        complain(module_, std::string("cannot serve: ") + e.what());
        std::fflush(nullptr);
        std::_Exit(1);  // threads may run: no destructors
    }
    if (ended == Ended::input_closed) {
        // Not waiting for running calls, but telling them: a cooperative method stops now.
        session->abandon();
        session->wait_idle(kAbandonGrace);
    }
    const bool flushed = session->finish_output(kExitFlushTimeout);
    const int status = ended == Ended::output_failed ? 1 : 0;
    if (session->busy() || !flushed) {
        // Method code still runs (the input ended, or a cancelled call has not returned),
        // or the host stopped reading: end now rather than wait for it.
        std::fflush(nullptr);
        std::_Exit(status);
    }
    session.reset();  // joins the idle threads
    ::close(streams.in);
    if (streams.out != streams.in) ::close(streams.out);
    return status;
}

Ended Worker::run(int in_fd, int out_fd, Codec codec, std::size_t max_frame) const {
    detail::FdInput input(in_fd);
    detail::FdSink output(out_fd);
    detail::SessionConfig config;
    config.codec = codec;
    config.max_frame = max_frame;
    detail::Session session(*this, config, input, output);
    const Ended ended = session.serve();
    if (ended != Ended::shutdown) session.abandon();
    session.finish_output(kRunFlushTimeout);
    return ended;  // the session's destructor waits for calls still running
}

}  // namespace polyglot
