// Replays every case of tests/vectors/ (sessions.json is in sessions_test.cpp) through the
// SDK's real decoders, encoders and frame reader.
#include <gtest/gtest.h>

#include "support.hpp"

namespace {

using namespace support;
using polyglot::Frame;
using polyglot::FrameReader;
using polyglot::Id;
using polyglot::WorkerMessage;

Codec codec_of(const Value& c) {
    const auto codec = polyglot::parse_codec(c.at("codec").get<std::string>());
    if (!codec) throw std::runtime_error("unknown codec in a vector");
    return *codec;
}

/// A case's `frame` as bytes: the JSON line's text, or the MessagePack payload's hex.
std::string frame_bytes(const Value& c) {
    const auto& frame = c.at("frame").get_ref<const std::string&>();
    return codec_of(c) == Codec::json ? frame : from_hex(frame);
}

bool valid(const Value& c) { return c.value("valid", true); }

std::string name_of(const Value& c) { return c.at("name").get<std::string>(); }

Id id_of(const Value& v) {
    auto id = Id::from_value(v);
    if (!id) throw std::runtime_error("not an id: " + show(v));
    return *id;
}

/// The one frame `payload` makes, read back through a FrameReader.
std::string reframed(Codec codec, const std::string& payload) {
    std::string stream;
    polyglot::append_frame(codec, payload, stream);
    FrameReader r(codec, 1 << 20);
    r.extend(stream);
    const auto f = r.next_frame();
    if (!f || f->kind != Frame::Kind::data) throw std::runtime_error("no frame");
    return std::string(f->data);
}

TEST(Vectors, Values) {
    for (const auto& c : load_cases("values.json")) {
        SCOPED_TRACE(name_of(c));
        const auto& json = c.at("json").get_ref<const std::string&>();
        if (!valid(c)) {
            EXPECT_THROW(polyglot::decode_json(json), polyglot::DecodeError);
            continue;
        }
        const Value& expect = c.at("value");
        const Value from_json = polyglot::decode_json(json);
        const Value from_mp = polyglot::decode_msgpack(from_hex(c.at("msgpack").get<std::string>()));
        EXPECT_TRUE(same(from_json, expect)) << show(from_json);
        EXPECT_TRUE(same(from_mp, expect)) << show(from_mp);
        // Our encoders write what the reference encoders wrote, byte for byte.
        EXPECT_EQ(to_hex(polyglot::encode_msgpack(expect)), c.at("msgpack").get<std::string>());
        const Value again_json = polyglot::decode_json(polyglot::encode_json(expect));
        const Value again_mp = polyglot::decode_msgpack(polyglot::encode_msgpack(expect));
        EXPECT_TRUE(same(again_json, expect)) << show(again_json);
        EXPECT_TRUE(same(again_mp, expect)) << show(again_mp);
    }
}

TEST(Vectors, Requests) {
    for (const auto& c : load_cases("requests.json")) {
        SCOPED_TRACE(name_of(c));
        const Codec codec = codec_of(c);
        const std::string bytes = frame_bytes(c);
        if (!valid(c)) {
            try {
                polyglot::decode_request(codec, bytes);
                ADD_FAILURE() << "should be refused";
            } catch (const polyglot::InvalidRequest& e) {
                EXPECT_TRUE(mentions(e.what(), c.at("errorMentions").get<std::string>()))
                    << "error: " << e.what();
            }
            continue;
        }
        const polyglot::Request req = polyglot::decode_request(codec, bytes);
        const Value& exp = c.at("expect");
        if (exp.contains("id")) {
            ASSERT_TRUE(req.id.has_value());
            EXPECT_EQ(*req.id, id_of(exp["id"]));
        } else {
            EXPECT_FALSE(req.id.has_value());
        }
        EXPECT_EQ(req.method, exp.at("method").get<std::string>());
        EXPECT_TRUE(same(req.params, exp.at("params"))) << show(req.params);
        EXPECT_EQ(req.timestamp, exp.contains("timestamp")
                                     ? std::optional<std::uint64_t>(exp["timestamp"].get<std::uint64_t>())
                                     : std::nullopt);
        EXPECT_EQ(req.timeout_ms, exp.contains("timeoutMs")
                                      ? std::optional<std::uint64_t>(exp["timeoutMs"].get<std::uint64_t>())
                                      : std::nullopt);
        EXPECT_EQ(req.notification(), exp.at("notification").get<bool>());
        // What we encode decodes to the same request.
        const polyglot::Request again =
            polyglot::decode_request(codec, reframed(codec, polyglot::encode_request(codec, req)));
        EXPECT_EQ(again.id, req.id);
        EXPECT_EQ(again.method, req.method);
        EXPECT_TRUE(same(again.params, req.params));
        EXPECT_EQ(again.timestamp, req.timestamp);
        EXPECT_EQ(again.timeout_ms, req.timeout_ms);
    }
}

/// Re-encodes a decoded worker message with the SDK's own encoders.
std::string encode_message(Codec codec, const WorkerMessage& m) {
    switch (m.kind) {
        case WorkerMessage::Kind::response:
            return polyglot::encode_response(codec, *m.id, m.result ? &*m.result : nullptr,
                                             m.error ? &*m.error : nullptr, m.timestamp,
                                             m.execution_time);
        case WorkerMessage::Kind::progress: return polyglot::encode_progress(codec, *m.id, m.progress);
        case WorkerMessage::Kind::log:
            return polyglot::encode_log(codec, m.level, m.message, m.fields.value_or(nullptr));
    }
    return {};
}

void expect_message(const WorkerMessage& m, const Value& exp) {
    const std::string kind = exp.at("kind").get<std::string>();
    if (kind == "response") {
        ASSERT_EQ(m.kind, WorkerMessage::Kind::response);
        EXPECT_EQ(*m.id, id_of(exp.at("id")));
        if (exp.contains("result")) {
            ASSERT_TRUE(m.result.has_value());
            EXPECT_FALSE(m.error.has_value());
            EXPECT_TRUE(same(*m.result, exp["result"])) << show(*m.result);
        } else {
            ASSERT_TRUE(m.error.has_value());
            EXPECT_FALSE(m.result.has_value());
            const Value& e = exp.at("error");
            EXPECT_EQ(m.error->code, e.at("code").get<std::string>());
            EXPECT_EQ(m.error->message, e.at("message").get<std::string>());
            EXPECT_EQ(m.error->data.has_value(), e.contains("data"));
            if (e.contains("data") && m.error->data) {
                EXPECT_TRUE(same(*m.error->data, e["data"]));
            }
        }
        EXPECT_EQ(m.execution_time,
                  exp.contains("executionTime")
                      ? std::optional<std::uint64_t>(exp["executionTime"].get<std::uint64_t>())
                      : std::nullopt);
    } else if (kind == "progress") {
        ASSERT_EQ(m.kind, WorkerMessage::Kind::progress);
        EXPECT_EQ(*m.id, id_of(exp.at("id")));
        EXPECT_TRUE(same(m.progress, exp.at("progress"))) << show(m.progress);
    } else {
        ASSERT_EQ(kind, "log");
        ASSERT_EQ(m.kind, WorkerMessage::Kind::log);
        EXPECT_EQ(polyglot::to_string(m.level), exp.at("level").get<std::string>());
        EXPECT_EQ(m.message, exp.at("message").get<std::string>());
        EXPECT_EQ(m.fields.has_value(), exp.contains("fields"));
        if (m.fields && exp.contains("fields")) {
            EXPECT_TRUE(same(*m.fields, exp["fields"]));
        }
    }
}

TEST(Vectors, Messages) {
    for (const auto& c : load_cases("messages.json")) {
        SCOPED_TRACE(name_of(c));
        const Codec codec = codec_of(c);
        const std::string bytes = frame_bytes(c);
        if (!valid(c)) {
            try {
                polyglot::decode_message(codec, bytes);
                ADD_FAILURE() << "should be refused";
            } catch (const polyglot::DecodeError& e) {
                EXPECT_TRUE(mentions(e.what(), c.at("errorMentions").get<std::string>()))
                    << "error: " << e.what();
            }
            continue;
        }
        const WorkerMessage m = polyglot::decode_message(codec, bytes);
        expect_message(m, c.at("expect"));
        // What we encode decodes to the same message, and starts with its id.
        const std::string again = reframed(codec, encode_message(codec, m));
        expect_message(polyglot::decode_message(codec, again), c.at("expect"));
        if (m.id) {
            EXPECT_EQ(polyglot::id_from_head(codec, again), m.id);
        }
    }
}

TEST(Vectors, Handshakes) {
    for (const auto& c : load_cases("handshakes.json")) {
        SCOPED_TRACE(name_of(c));
        const Value& m = c.at("manifest");
        polyglot::ExpectedWorker expected;
        expected.module = m.at("name").get<std::string>();
        expected.codec = *polyglot::parse_codec(m.at("codec").get<std::string>());
        expected.capabilities = m.at("capabilities").get<std::vector<std::string>>();
        const auto& line = c.at("line").get_ref<const std::string&>();
        if (!valid(c)) {
            try {
                polyglot::Handshake::parse(line).check(expected);
                ADD_FAILURE() << "should be refused";
            } catch (const polyglot::HandshakeError& e) {
                EXPECT_TRUE(mentions(e.what(), c.at("errorMentions").get<std::string>()))
                    << "error: " << e.what();
            }
            continue;
        }
        const polyglot::Handshake h = polyglot::Handshake::parse(line);
        EXPECT_NO_THROW(h.check(expected));
        const Value& exp = c.at("expect");
        EXPECT_EQ(h.protocol, exp.at("polyglot").get<std::uint64_t>());
        EXPECT_EQ(h.module, exp.at("module").get<std::string>());
        EXPECT_EQ(h.version, exp.at("version").get<std::string>());
        EXPECT_EQ(polyglot::to_string(h.codec), exp.at("codec").get<std::string>());
        EXPECT_EQ(h.max_concurrency, exp.at("maxConcurrency").get<std::uint64_t>());
        EXPECT_EQ(h.methods, exp.at("methods").get<std::vector<std::string>>());
        // Our line parses back to the same handshake.
        const std::string out = h.to_line();
        ASSERT_EQ(out.back(), '\n');
        const polyglot::Handshake again =
            polyglot::Handshake::parse(std::string_view(out).substr(0, out.size() - 1));
        EXPECT_EQ(again.module, h.module);
        EXPECT_EQ(again.version, h.version);
        EXPECT_EQ(again.language, h.language);
        EXPECT_EQ(again.codec, h.codec);
        EXPECT_EQ(again.methods, h.methods);
        EXPECT_EQ(again.max_concurrency, h.max_concurrency);
        EXPECT_EQ(again.pid, h.pid);
    }
}

TEST(Vectors, Frames) {
    for (const auto& c : load_cases("frames.json")) {
        SCOPED_TRACE(name_of(c));
        const Codec codec = codec_of(c);
        const auto limit = c.at("limit").get<std::size_t>();
        const std::string stream = from_hex(c.at("stream").get<std::string>());
        // Every read size gives the same frames: one byte at a time, a few, and all at once.
        for (const std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{7},
                                        std::max<std::size_t>(stream.size(), 1)}) {
            SCOPED_TRACE("reads of " + std::to_string(chunk) + " bytes");
            FrameReader r(codec, limit);
            Value got = Value::array();
            for (std::size_t at = 0; at < stream.size(); at += chunk) {
                r.extend(std::string_view(stream).substr(at, chunk));
                while (const auto f = r.next_frame()) {
                    if (f->kind == Frame::Kind::data) {
                        got.push_back({{"frame", to_hex(f->data)}});
                    } else {
                        got.push_back({{"tooLarge", true},
                                       {"size", f->size},
                                       {"id", f->id ? f->id->to_value() : Value(nullptr)}});
                    }
                }
            }
            if (r.finish()) got.push_back({{"truncated", true}});
            EXPECT_TRUE(same(got, c.at("frames"))) << show(got);
        }
    }
}

}  // namespace
