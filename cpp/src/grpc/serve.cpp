// serve_grpc(): a worker over gRPC from start to exit (docs/protocol.md, section 10).
// Listens, announces the address in the handshake line on stdout, then the main thread
// waits for the end:
//   - started by the host: stdin reaching end of file (exit at once, as stdio does), or
//     `$shutdown` on any session or the Shutdown RPC once every call held is answered;
//   - a remote worker (POLYGLOT_GRPC_LISTEN): SIGTERM or SIGINT, after which it takes no
//     new calls and gives the ones it holds kStopGrace to finish.
// Either way it removes its socket file and ends the process with std::_Exit, as serve()
// does: method code may still run on other threads.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <unistd.h>

#include "../log.hpp"
#include "listen.hpp"
#include "rpcs.hpp"

namespace polyglot::detail {

namespace {

using namespace std::chrono_literals;

/// When stdin ends while calls still run, how long they get to notice they are cancelled
/// before the process ends: the same grace as stdio (worker.cpp).
constexpr std::chrono::milliseconds kAbandonGrace{200};

/// A remote worker told to stop finishes the calls it holds within this long (section 10).
constexpr std::chrono::milliseconds kStopGrace{5000};

/// At a graceful exit, how long RPCs still in flight (the Shutdown RPC's answer, a session's
/// last frames and trailers) get to be sent, at most. They take microseconds on a live
/// connection; the bound only matters for a host that stopped reading.
constexpr std::chrono::milliseconds kExitFlushGrace{2000};

/// Protobuf framing around a chunk's bytes (tag and length), allowed on top of a data limit.
constexpr std::size_t kMessageOverhead = 64 * 1024;

/// The signal that asked a remote worker to stop (0: none), and the pipe that wakes the
/// main thread for it.
volatile std::sig_atomic_t stop_signal = 0;
const GrpcServer* signal_target = nullptr;

extern "C" void on_stop_signal(int signal) {
    stop_signal = signal;
    if (signal_target != nullptr) signal_target->notify();
}

/// Started by the host: the socket file and directory removed when SIGTERM, SIGINT or
/// SIGHUP arrives, before the signal's default action ends the process.
const char* doomed_socket = nullptr;
const char* doomed_dir = nullptr;

extern "C" void on_fatal_signal(int signal) {
    if (doomed_socket != nullptr) ::unlink(doomed_socket);  // async-signal-safe, as is rmdir
    if (doomed_dir != nullptr) ::rmdir(doomed_dir);
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

/// Routes SIGTERM, SIGINT (and for a host-started worker SIGHUP) to `handler`.
void handle_signals(void (*handler)(int), bool hangup) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    if (hangup) ::sigaction(SIGHUP, &action, nullptr);
}

/// Prints "<module>: <message>" to stderr, as serve() does.
void complain(const Worker& worker, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", worker.module().c_str(), message.c_str());
    std::fflush(stderr);
}

/// The largest message the server accepts: a chunk of at least 4 MiB (section 10), and a
/// unary call's params up to the frame limit.
int receive_limit(std::size_t max_frame) {
    const std::size_t want = std::max(kMinReceiveChunkBytes, max_frame) + kMessageOverhead;
    return static_cast<int>(std::min<std::size_t>(want, std::numeric_limits<int>::max()));
}

/// A running gRPC server and where it listens.
struct Listening {
    std::unique_ptr<::grpc::Service> service;  // outlives the server
    std::unique_ptr<::grpc::Server> server;
    Endpoint endpoint;
    std::string address;  // as announced
};

/// Starts serving `grpc_server`'s RPCs on `endpoint`; a null server when it cannot listen
/// there. (A service goes with one server only, so each attempt makes its own.)
Listening listen_on(Endpoint endpoint, GrpcServer& grpc_server) {
    Listening l;
    l.service = make_service(grpc_server);
    ::grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(endpoint.uri, ::grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(l.service.get());
    builder.SetMaxReceiveMessageSize(receive_limit(grpc_server.options().max_frame));
    // Another process on the same port is an error, not a silent share of its traffic.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    l.server = builder.BuildAndStart();
    if (l.server != nullptr && port == 0 && endpoint.socket_path.empty()) l.server.reset();
    if (l.server != nullptr) l.address = announced_address(endpoint, port);
    l.endpoint = std::move(endpoint);
    return l;
}

/// Writes the handshake line on stdout (the real one: stdout stays the worker's own).
void announce(const GrpcServer& server) {
    std::cout.flush();
    std::fflush(stdout);
    const std::string line = server.handshake(server.options().codec).to_line();
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(1, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_stderr(std::string("cannot write the handshake on stdout: ") +
                       std::strerror(errno));
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

/// Waits until `events_fd` or `input_fd` (when >= 0) is readable, or `timeout` passes
/// (negative: no limit). Returns whether input_fd is readable.
bool wait_for(int events_fd, int input_fd, std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{events_fd, POLLIN, 0}, {input_fd, POLLIN, 0}};
    const int n = ::poll(fds, input_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
    return n > 0 && input_fd >= 0 && fds[1].revents != 0;
}

[[noreturn]] void end_process(const Listening& listening, int status) {
    remove_endpoint(listening.endpoint);
    std::fflush(nullptr);
    std::_Exit(status);
}

/// Waits until `server` has no RPC in flight (every answer is sent), or `timeout` passes.
void wait_for_rpcs(GrpcServer& server, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (server.rpcs_in_flight() > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        wait_for(server.events_fd(), -1, left);
        server.drain_events();
    }
}

/// Ends a worker whose calls are all answered, once their answers are sent: exits 0.
/// (Not grpc::Server::Shutdown(), which also waits for every client to close its
/// connection, which a host keeping its channel open never does.)
[[noreturn]] void exit_gracefully(GrpcServer& server, const Listening& listening) {
    wait_for_rpcs(server, kExitFlushGrace);
    end_process(listening, 0);
}

/// Started by the host: serves until stdin ends or `$shutdown` is done.
[[noreturn]] void run_host_started(GrpcServer& server, const Listening& listening, int stdin_fd) {
    int input = stdin_fd;
    for (;;) {
        const bool readable = wait_for(server.events_fd(), input, -1ms);
        server.drain_events();
        if (server.requested() && server.idle()) exit_gracefully(server, listening);
        if (!readable) continue;
        char buf[4096];
        const ssize_t n = ::read(input, buf, sizeof buf);
        if (n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN))) continue;
        // End of input: the host is gone or wants this worker gone.
        if (server.requested()) {  // after `$shutdown` the held calls still finish
            input = -1;
            continue;
        }
        server.abandon_all();
        const auto deadline = std::chrono::steady_clock::now() + kAbandonGrace;
        while (server.busy() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(2ms);
        }
        end_process(listening, 0);
    }
}

/// A remote worker: serves until SIGTERM or SIGINT, then finishes what it holds.
[[noreturn]] void run_remote(GrpcServer& server, const Listening& listening) {
    while (stop_signal == 0) {
        wait_for(server.events_fd(), -1, -1ms);
        server.drain_events();
    }
    log_stderr(std::string("stopping on ") + (stop_signal == SIGINT ? "SIGINT" : "SIGTERM") +
               ": finishing the calls held");
    server.request();
    const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
    while (!server.idle()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            log_stderr("calls still held after " + std::to_string(kStopGrace.count()) +
                       " ms; exiting without them");
            server.abandon_all();
            end_process(listening, 0);
        }
        wait_for(server.events_fd(), -1, left);
        server.drain_events();
    }
    exit_gracefully(server, listening);
}

int serve_grpc(const Worker& worker, const ServeOptions& options) {
    const char* listen_env = std::getenv(env::GRPC_LISTEN);
    const bool remote = listen_env != nullptr && listen_env[0] != '\0';
    // A write to a peer that is gone fails with EPIPE instead of killing the process.
    std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<GrpcServer> server;
    Endpoint endpoint;
    int stdin_fd = -1;
    try {
        if (remote) {
            endpoint = endpoint_from(listen_env);
        } else {
            try {
                endpoint = private_socket();
            } catch (const std::runtime_error& e) {
                log_stderr(std::string(e.what()) + "; listening on TCP 127.0.0.1 instead");
                endpoint = loopback_tcp();
            }
        }
        server = std::make_unique<GrpcServer>(worker, options);
        if (!remote) {
            die_with_parent();
            stdin_fd = take_stdin();
        }
    } catch (const std::exception& e) {
        complain(worker, remote ? std::string(env::GRPC_LISTEN) + " is \"" + listen_env +
                                      "\": " + e.what()
                                : std::string("cannot serve gRPC: ") + e.what());
        return 1;
    }
    if (remote) {
        signal_target = server.get();
        handle_signals(on_stop_signal, false);
    }
    Listening listening = listen_on(endpoint, *server);
    if (listening.server == nullptr && !remote && !endpoint.socket_path.empty()) {
        log_stderr("cannot listen on " + endpoint.uri + "; listening on TCP 127.0.0.1 instead");
        remove_endpoint(endpoint);
        listening = listen_on(loopback_tcp(), *server);
    }
    if (listening.server == nullptr) {
        remove_endpoint(listening.endpoint);
        complain(worker, "cannot listen for gRPC on " + listening.endpoint.uri);
        return 1;
    }
    if (!remote && !listening.endpoint.socket_path.empty()) {
        doomed_socket = listening.endpoint.socket_path.c_str();
        doomed_dir = listening.endpoint.private_dir.c_str();
        handle_signals(on_fatal_signal, true);
    }
    server->set_address(listening.address);
    announce(*server);
    if (remote) run_remote(*server, listening);
    run_host_started(*server, listening, stdin_fd);
}

}  // namespace

void install_grpc_transport() noexcept { install_grpc_serve(&serve_grpc); }

}  // namespace polyglot::detail
