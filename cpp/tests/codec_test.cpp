// Unit tests of the codecs, base64, ids and the frame reader, beyond the vectors.
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "support.hpp"

namespace {

using namespace support;
using polyglot::Frame;
using polyglot::FrameReader;
using polyglot::Id;

TEST(Base64, RoundTripsEveryLengthAndRefusesNonCanonicalText) {
    polyglot::Bytes data;
    for (int n = 0; n < 64; ++n) {
        polyglot::Bytes back;
        const std::string text = polyglot::base64_encode(data.data(), data.size());
        ASSERT_TRUE(polyglot::base64_decode(text, back)) << text;
        EXPECT_EQ(back, data);
        data.push_back(static_cast<std::uint8_t>(n * 37 + 11));
    }
    polyglot::Bytes out;
    EXPECT_TRUE(polyglot::base64_decode("aGk=", out));
    EXPECT_FALSE(polyglot::base64_decode("aGl=", out));   // unused bits set
    EXPECT_FALSE(polyglot::base64_decode("aGk", out));    // no padding
    EXPECT_FALSE(polyglot::base64_decode("aG=k", out));   // text after '='
    EXPECT_FALSE(polyglot::base64_decode("a===", out));
    EXPECT_FALSE(polyglot::base64_decode("aGk=\n", out));
    EXPECT_FALSE(polyglot::base64_decode("a-_b", out));   // the URL alphabet is not base64
}

TEST(Json, FloatsStayFloatsAndIntegersStayIntegers) {
    EXPECT_EQ(polyglot::encode_json(Value(2.0)), "2.0");
    EXPECT_EQ(polyglot::encode_json(Value(-0.25)), "-0.25");
    EXPECT_EQ(polyglot::encode_json(Value(1e300)), "1e+300");
    EXPECT_TRUE(polyglot::decode_json(polyglot::encode_json(Value(2.0))).is_number_float());
    EXPECT_EQ(polyglot::encode_json(Value(std::numeric_limits<std::int64_t>::min())),
              "-9223372036854775808");
    EXPECT_EQ(polyglot::encode_json(Value(0.1)), "0.1");
}

TEST(Json, RefusesWhatJsonCannotCarry) {
    EXPECT_THROW(polyglot::encode_json(Value(std::numeric_limits<double>::infinity())),
                 polyglot::EncodeError);
    EXPECT_THROW(polyglot::encode_json(Value(std::string("\xff\xfe"))), polyglot::EncodeError);
    EXPECT_THROW(polyglot::encode_json(Value{{"k", std::string("\xc0\x80")}}),
                 polyglot::EncodeError);  // overlong NUL
    EXPECT_THROW(polyglot::decode_json("1e400"), polyglot::DecodeError);
    EXPECT_THROW(polyglot::decode_json(""), polyglot::DecodeError);
    EXPECT_THROW(polyglot::decode_json("{\"a\":1} x"), polyglot::DecodeError);
    EXPECT_THROW(polyglot::decode_json("\"\\ud800\""), polyglot::DecodeError);
}

TEST(Json, EscapesRoundTrip) {
    std::string all;
    for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
    all += "é世🌍";
    const std::string text = polyglot::encode_json(Value(all));
    EXPECT_EQ(text.find('\n'), std::string::npos);  // a line is always a whole message
    EXPECT_EQ(polyglot::decode_json(text), Value(all));
}

TEST(Codec, NestingIsBoundedBothWays) {
    std::string deep_json(600, '[');
    deep_json += std::string(600, ']');
    EXPECT_THROW(polyglot::decode_json(deep_json), polyglot::DecodeError);
    EXPECT_THROW(polyglot::decode_msgpack(std::string(600, '\x91') + '\xc0'), polyglot::DecodeError);
    Value deep = Value::array();
    for (int i = 0; i < 600; ++i) deep = Value::array({deep});
    EXPECT_THROW(polyglot::encode_json(deep), polyglot::EncodeError);
    EXPECT_THROW(polyglot::encode_msgpack(deep), polyglot::EncodeError);
    std::string ok_json(100, '[');
    ok_json += std::string(100, ']');
    EXPECT_NO_THROW(polyglot::decode_json(ok_json));
}

TEST(Msgpack, IntegersUseTheirSmallestForm) {
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(5))), "05");           // signed, positive
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(300))), "cd012c");
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(-1))), "ff");
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(-200))), "d1ff38");
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(std::numeric_limits<std::int64_t>::max()))),
              "cf7fffffffffffffff");
    EXPECT_EQ(to_hex(polyglot::encode_msgpack(Value(std::uint64_t{70000}))), "ce00011170");
}

TEST(Msgpack, RefusesWhatIsNotAProtocolValue) {
    const auto refused = [](const std::string& hex) {
        EXPECT_THROW(polyglot::decode_msgpack(from_hex(hex)), polyglot::DecodeError) << hex;
    };
    refused("d40100");          // fixext 1: an extension type
    refused("810102");          // map with an integer key
    refused("8191c0c0");        // map with an array key
    refused("a2c328");          // a string that is not UTF-8
    refused("0102");            // trailing bytes
    refused("92c3");            // cut off
    refused("");                // nothing
    refused("c1");              // never used
    EXPECT_EQ(polyglot::decode_msgpack(from_hex("ca3fc00000")), Value(1.5));  // float32
    EXPECT_THROW(polyglot::encode_msgpack(Value(std::string("\xff"))), polyglot::EncodeError);
}

TEST(Msgpack, BytesObjectsAreOnlyBinaryInJson) {
    // In MessagePack binary is `bin`: a map with a `$bytes` key is a map.
    const Value m = polyglot::decode_msgpack(from_hex("81a6246279746573a461476b3d"));
    EXPECT_TRUE(m.is_object());
    EXPECT_TRUE(polyglot::decode_json("{\"$bytes\":\"aGk=\"}").is_binary());
    EXPECT_EQ(polyglot::encode_json(polyglot::bytes("hi", 2)), "{\"$bytes\":\"aGk=\"}");
}

TEST(Ids, CompareByValueWhateverTheirWidth) {
    EXPECT_EQ(Id(std::int64_t{7}), Id(std::uint64_t{7}));
    EXPECT_NE(Id(std::int64_t{-7}), Id(std::uint64_t{7}));
    EXPECT_NE(Id(std::string("7")), Id(std::uint64_t{7}));
    EXPECT_EQ(std::hash<Id>{}(Id(std::int64_t{7})), std::hash<Id>{}(Id(std::uint64_t{7})));
    EXPECT_FALSE(Id::from_value(Value(1.0)).has_value());
    EXPECT_FALSE(Id::from_value(Value(true)).has_value());
    EXPECT_EQ(Id(std::string("a\"b")).to_string(), "\"a\\\"b\"");
}

TEST(IdFromHead, ReadsOnlyWhatTheHeadSurelyHolds) {
    using polyglot::id_from_head;
    EXPECT_EQ(id_from_head(Codec::json, " { \"id\" : \"a\\\"b\", \"x\""), Id(std::string("a\"b")));
    EXPECT_EQ(id_from_head(Codec::json, "{\"id\":-5,"), Id(std::int64_t{-5}));
    EXPECT_FALSE(id_from_head(Codec::json, "{\"id\":123"));  // may have been cut
    EXPECT_FALSE(id_from_head(Codec::json, "{\"method\":\"x\",\"id\":1}"));
    EXPECT_FALSE(id_from_head(Codec::json, "{\"id\":1.5,"));
    EXPECT_FALSE(id_from_head(Codec::json, "{\"id\":\"unterminated"));
    EXPECT_EQ(id_from_head(Codec::msgpack, from_hex("83a26964cd0400a6")), Id(std::uint64_t{1024}));
    EXPECT_EQ(id_from_head(Codec::msgpack, from_hex("82a26964a3616263")), Id(std::string("abc")));
    EXPECT_FALSE(id_from_head(Codec::msgpack, from_hex("82a26964a361")));  // string cut off
    EXPECT_FALSE(id_from_head(Codec::msgpack, from_hex("82a26964c0")));    // null
    EXPECT_FALSE(id_from_head(Codec::msgpack, from_hex("93010203")));      // not a map
}

std::vector<std::string> frames(Codec codec, std::size_t limit, const std::string& stream,
                                std::size_t chunk) {
    FrameReader r(codec, limit);
    std::vector<std::string> out;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
        r.extend(std::string_view(stream).substr(at, chunk));
        while (const auto f = r.next_frame()) {
            out.push_back(f->kind == Frame::Kind::data
                              ? std::string(f->data)
                              : "too large " + std::to_string(f->size) + " " +
                                    (f->id ? f->id->to_string() : "-"));
        }
    }
    if (r.finish()) out.emplace_back("truncated");
    return out;
}

TEST(FrameReader, JsonLinesArriveWholeWhateverTheReadSizes) {
    const std::string stream = "{\"id\":1}\n\n{\"id\":2}\r\n";
    for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
        EXPECT_EQ(frames(Codec::json, 64, stream, chunk),
                  (std::vector<std::string>{"{\"id\":1}", "{\"id\":2}"}))
            << chunk;
    }
}

TEST(FrameReader, OversizeJsonLineIsSkippedAtAnyReadSize) {
    const std::string big = "{\"id\":42,\"x\":\"" + std::string(2000, 'a') + "\"}";
    const std::string stream = big + "\n{\"id\":3}\n";
    for (const std::size_t chunk : {1u, 7u, 100u, 5000u}) {
        EXPECT_EQ(frames(Codec::json, 100, stream, chunk),
                  (std::vector<std::string>{"too large " + std::to_string(big.size()) + " 42",
                                            "{\"id\":3}"}))
            << chunk;
    }
}

// Regression (from the Rust reader): a line of exactly the limit, whose '\r' and '\n'
// arrive in different reads, was reported as too large.
TEST(FrameReader, ALineOfExactlyTheLimitPassesWithCrlfSplitAcrossReads) {
    const std::string line = "{\"id\":1,\"x\":\"" + std::string(20, 'a') + "\"}";
    const std::string stream = line + "\r\n{\"id\":2}\n";
    for (std::size_t chunk = 1; chunk < stream.size(); ++chunk) {
        EXPECT_EQ(frames(Codec::json, line.size(), stream, chunk),
                  (std::vector<std::string>{line, "{\"id\":2}"}))
            << chunk;
        EXPECT_EQ(frames(Codec::json, line.size() - 1, stream, chunk)[0],
                  "too large " + std::to_string(line.size()) + " 1")
            << chunk;
    }
}

TEST(FrameReader, BufferDoesNotGrowWithAnOversizeFrame) {
    for (const Codec codec : {Codec::json, Codec::msgpack}) {
        FrameReader r(codec, 1000);
        if (codec == Codec::msgpack) r.extend(std::string("\x7f\xff\xff\xff", 4));
        const std::string chunk(100000, 'x');
        std::size_t largest = 0;
        for (int i = 0; i < 100; ++i) {
            r.extend(chunk);
            EXPECT_FALSE(r.next_frame().has_value());
            largest = std::max(largest, r.read_buf().size);
        }
        EXPECT_LT(largest, 1000000u) << "the buffer grew";
        EXPECT_TRUE(r.finish().has_value());
    }
}

TEST(FrameReader, MsgpackFramesAcrossReadsAndTheLengthPrefix) {
    std::string stream;
    for (int i = 0; i < 5; ++i) {
        polyglot::append_frame(Codec::msgpack,
                               polyglot::encode_msgpack(Value{{"id", i}, {"p", std::string(i * 50, 'z')}}),
                               stream);
    }
    for (std::size_t chunk = 1; chunk <= 9; ++chunk) {
        const auto got = frames(Codec::msgpack, 4096, stream, chunk);
        ASSERT_EQ(got.size(), 5u) << chunk;
        EXPECT_EQ(polyglot::decode_msgpack(got[4])["id"], 4);
    }
}

}  // namespace
