// Running one method or the health check, shared by every way a call arrives (a session's
// request, a gRPC unary Call): exceptions become error objects, the health check's answer
// becomes `{"status": ...}`. WorkerAccess reads a Worker's registrations.
#pragma once

#include <string>

#include "polyglot/call.hpp"
#include "polyglot/envelope.hpp"
#include "polyglot/worker.hpp"

namespace polyglot::detail {

/// How a call ended: a result, or an error object.
struct Outcome {
    bool ok = false;
    Value result;
    ErrorObject error;
};

struct WorkerAccess {
    /// The method called `name`, or nullptr.
    static const Method* method(const Worker& worker, const std::string& name);
    /// Whether the worker has a health check (without one, `$health` is `{"status": "ok"}`).
    static bool has_health(const Worker& worker) { return static_cast<bool>(worker.health_); }
    /// The health check's answer merged into `{"status": "ok"}`.
    /// @throws whatever the check throws; Error(UNHEALTHY) when it returns a non-object.
    static Value health(const Worker& worker);
};

/// Runs `method` with `params` for `call`, or the worker's health check when `method` is
/// null. Never throws for what the method throws: a polyglot::Error keeps its code; any
/// other exception is `INTERNAL` (`UNHEALTHY` for the health check).
Outcome invoke(const Worker& worker, const Method* method, Call& call, const Value& params);

/// The message of the `METHOD_NOT_FOUND` answer to a call of `method`, which `worker`
/// does not serve: it names the methods it does serve.
std::string not_served(const Worker& worker, const std::string& method);

/// `name` as a JSON string, for messages (or a note that it is not UTF-8).
std::string quoted(const std::string& name);

}  // namespace polyglot::detail
