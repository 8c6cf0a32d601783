// Reading arguments out of params (see args.hpp).
#include "polyglot/args.hpp"

#include <limits>

namespace polyglot {

namespace {

std::string backticked(std::string_view name) { return "`" + std::string(name) + "`"; }

Error wrong_type(std::string_view name, const char* want, const Value& got) {
    return Error::invalid_params(backticked(name) + " must be " + want + ", not " + type_name(got));
}

}  // namespace

const Value* opt_arg(const Value& params, std::size_t index, std::string_view name) noexcept {
    const Value* found = nullptr;
    if (params.is_array()) {
        if (index < params.size()) found = &params[index];
    } else if (params.is_object()) {
        const auto it = params.find(name);
        if (it != params.end()) found = &*it;
    } else if (!params.is_null() && index == 0) {
        found = &params;
    }
    return (found != nullptr && !found->is_null()) ? found : nullptr;
}

const Value& arg(const Value& params, std::size_t index, std::string_view name) {
    if (params.is_array()) {
        if (index < params.size()) return params[index];
    } else if (params.is_object()) {
        const auto it = params.find(name);
        if (it != params.end()) return *it;
    } else if (!params.is_null() && index == 0) {
        return params;
    }
    throw Error::invalid_params("missing argument " + backticked(name));
}

const std::string& arg_string(const Value& params, std::size_t index, std::string_view name) {
    const Value& v = arg(params, index, name);
    if (!v.is_string()) throw wrong_type(name, "a string", v);
    return v.get_ref<const std::string&>();
}

std::int64_t arg_int(const Value& params, std::size_t index, std::string_view name) {
    const Value& v = arg(params, index, name);
    if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return static_cast<std::int64_t>(u);
        }
        throw Error::invalid_params(backticked(name) + " is out of the signed 64-bit range");
    }
    throw wrong_type(name, "an integer", v);
}

std::uint64_t arg_uint(const Value& params, std::size_t index, std::string_view name) {
    const Value& v = arg(params, index, name);
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        return static_cast<std::uint64_t>(v.get<std::int64_t>());
    }
    throw wrong_type(name, "a non-negative integer", v);
}

double arg_number(const Value& params, std::size_t index, std::string_view name) {
    const Value& v = arg(params, index, name);
    if (!v.is_number()) throw wrong_type(name, "a number", v);
    return v.get<double>();
}

void check_params(const Value& params, std::string_view method,
                  std::initializer_list<std::string_view> names) {
    const bool scalar = !params.is_null() && !params.is_array() && !params.is_object();
    if (scalar && names.size() == 0) {
        throw Error::invalid_params(std::string(method) + " takes no arguments");
    }
    if (params.is_array() && params.size() > names.size()) {
        throw Error::invalid_params(std::string(method) + " takes at most " +
                                    std::to_string(names.size()) + " argument" +
                                    (names.size() == 1 ? "" : "s") + ", not " +
                                    std::to_string(params.size()));
    }
    if (params.is_object()) {
        for (const auto& item : params.items()) {
            bool known = false;
            for (const auto n : names) known = known || item.key() == n;
            if (!known) {
                throw Error::invalid_params(std::string(method) + " has no argument " +
                                            backticked(item.key()));
            }
        }
    }
}

}  // namespace polyglot
