// GrpcServer: what every RPC of a gRPC worker shares (docs/protocol.md, section 10): the
// worker and its options, the address it announces, the worker-wide `$shutdown`, the open
// sessions, the unary calls held, and the threads those calls run on. The main thread
// (serve.cpp) watches it to know when the worker may exit.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../grpc_hook.hpp"
#include "../session.hpp"
#include "../thread_pool.hpp"
#include "../transport.hpp"
#include "polyglot/call.hpp"
#include "polyglot/handshake.hpp"
#include "polyglot/worker.hpp"

namespace polyglot::detail {

class GrpcServer final : public ShutdownSignal {
public:
    /// @throws std::runtime_error when no pipe or thread can be made.
    GrpcServer(const Worker& worker, const ServeOptions& options);
    GrpcServer(const GrpcServer&) = delete;
    GrpcServer& operator=(const GrpcServer&) = delete;
    ~GrpcServer() override = default;

    const Worker& worker() const noexcept { return worker_; }
    const ServeOptions& options() const noexcept { return options_; }

    /// Sets the address the handshakes announce (once the server listens).
    void set_address(std::string address);
    std::string address() const;

    /// The handshake for `codec`: the worker's, with `"transport": "grpc"` and the address.
    Handshake handshake(Codec codec) const;

    // ---- sessions (session_rpc.cpp)
    void add_session(Session& session);
    void remove_session(Session& session);

    // ---- unary calls (unary_rpcs.cpp)
    /// Admits a unary call, or returns false when the worker is shutting down.
    bool admit(const std::shared_ptr<Call>& call);
    /// A call admitted is answered (or its RPC cancelled).
    void answered(const std::shared_ptr<Call>& call);
    /// Method code of a unary call starts (+1) or returns (-1).
    void running(int delta) noexcept { running_ += delta; }
    /// A fresh id for a unary call (progress needs one; it never reaches the wire).
    std::uint64_t next_call_id() noexcept { return next_id_++; }
    ThreadPool& call_pool() noexcept { return call_pool_; }
    ThreadPool& health_pool() noexcept { return health_pool_; }

    // ---- every RPC's reactor: from its start to its OnDone (its last bytes are sent)
    void rpc_started() noexcept { ++rpcs_; }
    void rpc_done() noexcept {
        --rpcs_;
        notify();
    }
    int rpcs_in_flight() const noexcept { return rpcs_.load(); }

    // ---- the main thread
    /// Becomes readable when the state changes (a session ends, a call is answered,
    /// `$shutdown`); drain it with drain_events().
    int events_fd() const noexcept { return events_.read_fd(); }
    void drain_events() const noexcept { events_.drain(); }
    /// Wakes the main thread (also from a signal handler).
    void notify() const noexcept { events_.signal(); }
    /// No session is open and no unary call waits for its answer.
    bool idle();
    /// Method code still runs somewhere.
    bool busy();
    /// The input ended: cancels every call of every session and every unary call (their
    /// answers are dropped).
    void abandon_all();

protected:
    /// `$shutdown` (from any session, the Shutdown RPC, or SIGTERM): wakes every session, so
    /// each ends once its calls are answered, and the main thread.
    void on_requested() override;

private:
    const Worker& worker_;
    const ServeOptions options_;
    mutable std::mutex mutex_;
    std::string address_;
    std::vector<Session*> sessions_;
    std::set<std::shared_ptr<Call>> calls_;  // unary calls not yet answered
    std::atomic<int> running_{0};
    std::atomic<int> rpcs_{0};
    std::atomic<std::uint64_t> next_id_{1};
    WakePipe events_;
    // Last, so they are destroyed (joined) first: their tasks use everything above.
    ThreadPool call_pool_;
    ThreadPool health_pool_;
};

}  // namespace polyglot::detail
