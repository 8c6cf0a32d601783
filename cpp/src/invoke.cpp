// invoke(), not_served() (see invoke.hpp).
#include "invoke.hpp"

#include "log.hpp"
#include "polyglot/error.hpp"

namespace polyglot::detail {

const Method* WorkerAccess::method(const Worker& worker, const std::string& name) {
    const auto it = worker.methods_.find(name);
    return it == worker.methods_.end() ? nullptr : &it->second;
}

Value WorkerAccess::health(const Worker& worker) {
    if (!worker.health_) return Value{{"status", "ok"}};
    Value got = worker.health_();
    Value status = {{"status", "ok"}};
    if (got.is_null()) return status;
    if (!got.is_object()) {
        throw Error(code::UNHEALTHY, std::string("the health check returned ") + type_name(got) +
                                         ", not an object");
    }
    for (auto& item : got.items()) status[item.key()] = std::move(item.value());
    return status;
}

Outcome invoke(const Worker& worker, const Method* method, Call& call, const Value& params) {
    const bool health = method == nullptr;
    Outcome out;
    try {
        out.result = health ? WorkerAccess::health(worker) : (*method)(params, call);
        out.ok = true;
    } catch (const Error& e) {
        out.error = ErrorObject{e.code, e.message,
                                e.data.is_null() ? std::nullopt : std::optional<Value>(e.data)};
    } catch (const std::exception& e) {
        if (!health) log_stderr("method " + call.method() + " failed: " + e.what());
        out.error = ErrorObject{health ? code::UNHEALTHY : code::INTERNAL, e.what(), std::nullopt};
    } catch (...) {
        out.error = ErrorObject{health ? code::UNHEALTHY : code::INTERNAL,
                                "the method threw something that is not a std::exception",
                                std::nullopt};
    }
    return out;
}

std::string not_served(const Worker& worker, const std::string& method) {
    std::string served;
    for (const auto& m : worker.methods()) served += (served.empty() ? "" : ", ") + m;
    return "this worker (" + worker.module() + ") does not serve " + quoted(method) +
           "; it serves " + (served.empty() ? "nothing" : served);
}

std::string quoted(const std::string& name) {
    try {
        return encode_json(Value(name));
    } catch (const EncodeError&) {
        return "(a name that is not UTF-8)";
    }
}

}  // namespace polyglot::detail
