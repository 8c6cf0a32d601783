// Requests, responses, progress and logs: encoders (`id` first) and validating decoders
// whose errors name the field at fault (docs/protocol.md, section 4).
#include "polyglot/envelope.hpp"

#include <chrono>

#include "codec_impl.hpp"
#include "envelope_impl.hpp"
#include "polyglot/frame.hpp"

namespace polyglot {

namespace {

/// Decodes a payload that must hold one object.
Value decode_object(Codec codec, std::string_view payload) {
    Value v = decode(codec, payload);
    if (!v.is_object()) {
        throw DecodeError(std::string(codec == Codec::json
                                          ? "a message must be a JSON object, not "
                                          : "a message must be a MessagePack map (an object), not ") +
                          type_name(v));
    }
    return v;
}

/// The field `key` as a non-negative integer, when present.
std::optional<std::uint64_t> count_field(const Value& obj, const char* key, const char* meaning) {
    const auto it = obj.find(key);
    if (it == obj.end()) return std::nullopt;
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer() && it->get<std::int64_t>() >= 0) {
        return static_cast<std::uint64_t>(it->get<std::int64_t>());
    }
    throw DecodeError(std::string("`") + key + "` must be a non-negative integer (" + meaning +
                      "), not " + (it->is_number() ? encode_json(*it) : type_name(*it)));
}

}  // namespace

const char* to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace: return "trace";
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "info";
}

std::uint64_t now_ms() {
    const auto since = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(since).count());
}

// ------------------------------------------------------------------------------ requests

Request decode_request(Codec codec, std::string_view payload) {
    Value obj;
    try {
        obj = decode_object(codec, payload);
    } catch (const DecodeError& e) {
        // Still answerable when the frame starts with its id, as writers make it.
        throw InvalidRequest(e.what(), id_from_head(codec, payload));
    }
    Request req;
    const auto id_it = obj.find("id");
    if (id_it != obj.end()) {
        req.id = Id::from_value(*id_it);
        if (!req.id) {
            const std::string got = id_it->is_number_float() ? "the float " + encode_json(*id_it)
                                                             : std::string(type_name(*id_it));
            throw InvalidRequest("`id` must be an integer or a string, not " + got, std::nullopt);
        }
    }
    const auto method = obj.find("method");
    if (method == obj.end()) throw InvalidRequest("a request needs a `method`", req.id);
    if (!method->is_string()) {
        throw InvalidRequest(std::string("`method` must be a string, not ") + type_name(*method),
                             req.id);
    }
    req.method = method->get<std::string>();
    const auto params = obj.find("params");
    if (params != obj.end()) req.params = std::move(*params);
    try {
        req.timestamp = count_field(obj, "timestamp", "ms since the epoch");
        req.timeout_ms = count_field(obj, "timeoutMs", "milliseconds");
    } catch (const DecodeError& e) {
        throw InvalidRequest(e.what(), req.id);
    }
    return req;
}

std::string encode_request(Codec codec, const Request& r) {
    std::string out;
    const std::size_t n = 2 + (r.id ? 1 : 0) + (r.timestamp ? 1 : 0) + (r.timeout_ms ? 1 : 0);
    detail::MapWriter w(codec, out, n);
    if (r.id) w.key("id").id(*r.id);
    w.key("method").string(r.method);
    w.key("params").value(r.params);
    if (r.timestamp) w.key("timestamp").uint(*r.timestamp);
    if (r.timeout_ms) w.key("timeoutMs").uint(*r.timeout_ms);
    w.end();
    return out;
}

// ------------------------------------------------------------------------ worker messages

namespace detail {

void write_response(Codec codec, std::string& out, const Id& id, const Value* result,
                    const ErrorObject* error, std::optional<std::uint64_t> timestamp,
                    std::optional<std::uint64_t> execution_us) {
    const std::size_t n = 2 + (timestamp ? 1 : 0) + (execution_us ? 1 : 0);
    MapWriter w(codec, out, n);
    w.key("id").id(id);
    if (error != nullptr) {
        const bool has_data = error->data.has_value();
        w.key("error").begin_map(has_data ? 3 : 2);
        w.key("code").string(error->code);
        w.key("message").string(error->message);
        if (has_data) w.key("data").value(*error->data);
        w.end();
    } else {
        static const Value null_value;
        w.key("result").value(result != nullptr ? *result : null_value);
    }
    if (timestamp) w.key("timestamp").uint(*timestamp);
    if (execution_us) w.key("executionTime").uint(*execution_us);
    w.end();
}

void write_progress(Codec codec, std::string& out, const Id& id, const Value& progress) {
    MapWriter w(codec, out, 2);
    w.key("id").id(id).key("progress").value(progress).end();
}

void write_log(Codec codec, std::string& out, LogLevel level, std::string_view message,
               const Value& fields) {
    MapWriter w(codec, out, 1);
    w.key("log").begin_map(fields.is_null() ? 2 : 3);
    w.key("level").string(to_string(level));
    w.key("message").string(message);
    if (!fields.is_null()) w.key("fields").value(fields);
    w.end().end();
}

}  // namespace detail

std::string encode_response(Codec codec, const Id& id, const Value* result,
                            const ErrorObject* error, std::optional<std::uint64_t> timestamp,
                            std::optional<std::uint64_t> execution_us) {
    std::string out;
    detail::write_response(codec, out, id, result, error, timestamp, execution_us);
    return out;
}

std::string encode_progress(Codec codec, const Id& id, const Value& progress) {
    std::string out;
    detail::write_progress(codec, out, id, progress);
    return out;
}

std::string encode_log(Codec codec, LogLevel level, std::string_view message,
                       const Value& fields) {
    std::string out;
    detail::write_log(codec, out, level, message, fields);
    return out;
}

namespace {

ErrorObject parse_error_object(const Value& v) {
    if (!v.is_object()) {
        throw DecodeError(std::string("`error` must be an object {code, message, data?}, not ") +
                          type_name(v));
    }
    const auto code = v.find("code");
    if (code == v.end() || !code->is_string()) throw DecodeError("`error` needs a string `code`");
    const auto message = v.find("message");
    if (message == v.end() || !message->is_string()) {
        throw DecodeError("`error` needs a string `message`");
    }
    ErrorObject e{code->get<std::string>(), message->get<std::string>(), std::nullopt};
    const auto data = v.find("data");
    if (data != v.end()) e.data = *data;
    return e;
}

void parse_log(const Value& v, WorkerMessage& m) {
    if (!v.is_object()) throw DecodeError("`log` must be an object {level, message, fields?}");
    const auto level = v.find("level");
    if (level == v.end() || !level->is_string()) throw DecodeError("`log` needs a string `level`");
    const auto& name = level->get_ref<const std::string&>();
    if (name == "trace") {
        m.level = LogLevel::trace;
    } else if (name == "debug") {
        m.level = LogLevel::debug;
    } else if (name == "info") {
        m.level = LogLevel::info;
    } else if (name == "warn") {
        m.level = LogLevel::warn;
    } else if (name == "error") {
        m.level = LogLevel::error;
    } else {
        throw DecodeError("`log.level` must be trace, debug, info, warn or error, not " +
                          encode_json(*level));
    }
    const auto message = v.find("message");
    if (message == v.end() || !message->is_string()) {
        throw DecodeError("`log` needs a string `message`");
    }
    m.message = message->get<std::string>();
    const auto fields = v.find("fields");
    if (fields != v.end()) m.fields = *fields;
}

}  // namespace

WorkerMessage decode_message(Codec codec, std::string_view payload) {
    const Value obj = decode_object(codec, payload);
    WorkerMessage m;
    const auto log = obj.find("log");
    if (log != obj.end()) {
        m.kind = WorkerMessage::Kind::log;
        parse_log(*log, m);
        return m;
    }
    const auto id = obj.find("id");
    if (id == obj.end()) {
        throw DecodeError("a response needs an `id` (a message without one must be a `log`)");
    }
    m.id = Id::from_value(*id);
    if (!m.id) {
        throw DecodeError(std::string("`id` must be an integer or a string, not ") + type_name(*id));
    }
    const auto result = obj.find("result");
    const auto error = obj.find("error");
    const auto progress = obj.find("progress");
    const bool has_result = result != obj.end();
    const bool has_error = error != obj.end();
    const bool has_progress = progress != obj.end();
    if (has_result && has_error) {
        throw DecodeError("a response has either `result` or `error`, not both");
    }
    if (has_progress) {
        if (has_result || has_error) {
            throw DecodeError("a progress message carries no `result` or `error`");
        }
        m.kind = WorkerMessage::Kind::progress;
        m.progress = *progress;
        return m;
    }
    if (!has_result && !has_error) {
        throw DecodeError("a message with an `id` needs `result`, `error` or `progress`");
    }
    m.kind = WorkerMessage::Kind::response;
    if (has_result) {
        m.result = *result;
    } else {
        m.error = parse_error_object(*error);
    }
    m.timestamp = count_field(obj, "timestamp", "ms since the epoch");
    m.execution_time = count_field(obj, "executionTime", "microseconds");
    return m;
}

}  // namespace polyglot
