// signal-cpp's methods: params, forms of samples, errors, and one session through the
// SDK's real dispatch in MessagePack, as the host speaks to the module.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include <gtest/gtest.h>

#include "methods.hpp"
#include "polyglot/polyglot.hpp"
#include "samples.hpp"

namespace {

using polyglot::Call;
using polyglot::Error;
using polyglot::Value;

Value call(polyglot::Value (*method)(const Value&, Call&), const Value& params) {
    auto c = Call::detached();
    return method(params, *c);
}

std::string code_of(polyglot::Value (*method)(const Value&, Call&), const Value& params,
                    std::string* message = nullptr) {
    try {
        call(method, params);
    } catch (const Error& e) {
        if (message != nullptr) *message = e.message;
        return e.code;
    }
    return "no error";
}

Value f32_bytes(const std::vector<float>& v) { return signal_cpp::write_samples(v, true); }

TEST(Methods, ResultsComeBackInTheFormOfTheInput) {
    EXPECT_EQ(call(signal_cpp::fir_method, {Value::array({1, 2, 3}), Value::array({1, 1})}),
              Value::array({1.0, 3.0, 5.0}));
    const Value bin = call(signal_cpp::fir_method, {f32_bytes({1, 2, 3}), Value::array({1, 1})});
    ASSERT_TRUE(bin.is_binary());
    EXPECT_EQ(signal_cpp::read_samples(bin, "r").values, (std::vector<float>{1, 3, 5}));
    EXPECT_EQ(call(signal_cpp::moving_average_method, {{"samples", {2, 4}}, {"window", 2}}),
              Value::array({2.0, 3.0}));
    EXPECT_EQ(call(signal_cpp::resample_method, {f32_bytes({0, 2}), 1, 2}),
              f32_bytes({0, 1, 2, 2}));
    EXPECT_DOUBLE_EQ(call(signal_cpp::rms_method, Value::array({Value::array({3, 4})})).get<double>(),
                     std::sqrt(12.5));
    EXPECT_DOUBLE_EQ(call(signal_cpp::rms_method, Value::array({f32_bytes({3, 4})})).get<double>(),
                     std::sqrt(12.5));
}

TEST(Methods, BinaryIsLittleEndianFloat32) {
    const Value v = f32_bytes({1.0f});
    const auto& b = v.get_binary();
    EXPECT_EQ(polyglot::Bytes(b.begin(), b.end()), (polyglot::Bytes{0x00, 0x00, 0x80, 0x3f}));
}

TEST(Methods, EmptyInputGivesEmptyOutput) {
    EXPECT_EQ(call(signal_cpp::fir_method, {Value::array(), Value::array({1})}), Value::array());
    EXPECT_EQ(call(signal_cpp::moving_average_method, {Value::array(), 5}), Value::array());
    EXPECT_EQ(call(signal_cpp::resample_method, {f32_bytes({}), 8000, 48000}), f32_bytes({}));
    EXPECT_EQ(call(signal_cpp::rms_method, Value::array({Value::array()})), Value(0.0));
}

TEST(Methods, InvalidParamsNameTheProblem) {
    struct Case {
        polyglot::Value (*method)(const Value&, Call&);
        Value params;
        std::string mention;
    };
    const std::vector<Case> cases = {
        {signal_cpp::rms_method, Value::array({"not samples"}), "samples"},
        {signal_cpp::rms_method, Value::array({Value::array({1, "x"})}), "samples`[1]"},
        {signal_cpp::rms_method, Value::array({Value::array({1e300})}), "float32 range"},
        {signal_cpp::rms_method, Value::array({polyglot::bytes("abc", 3)}), "3 bytes"},
        {signal_cpp::rms_method, nullptr, "missing argument `samples`"},
        {signal_cpp::rms_method, {{"samples", Value::array()}, {"extra", 1}}, "extra"},
        {signal_cpp::fir_method, Value::array({Value::array({1}), Value::array()}), "taps"},
        {signal_cpp::fir_method, Value::array({Value::array({1})}), "taps"},
        {signal_cpp::moving_average_method, Value::array({Value::array({1}), 0}), "window"},
        {signal_cpp::moving_average_method, Value::array({Value::array({1}), 1.5}), "window"},
        {signal_cpp::moving_average_method, Value::array({Value::array({1}), -3}), "window"},
        {signal_cpp::resample_method, Value::array({Value::array({1}), 0, 1}), "fromRate"},
        {signal_cpp::resample_method, Value::array({Value::array({1}), 1, 44100.5}), "toRate"},
        {signal_cpp::resample_method, Value::array({Value::array({1, 2}), 1, 1000000000}),
         "more than"},
    };
    for (const auto& c : cases) {
        std::string message;
        EXPECT_EQ(code_of(c.method, c.params, &message), "INVALID_PARAMS") << c.params.dump();
        EXPECT_NE(message.find(c.mention), std::string::npos) << message;
    }
}

TEST(Methods, CancelledCallsStop) {
    auto c = Call::detached("fir");
    c->cancel();
    const Value x = f32_bytes(std::vector<float>(200000, 1.0f));
    try {
        signal_cpp::fir_method(Value::array({x, Value::array({1, 2})}), *c);
        ADD_FAILURE() << "should stop";
    } catch (const Error& e) {
        EXPECT_EQ(e.code, "CANCELLED");
    }
}

/// A whole session through the SDK's real dispatch, in MessagePack as the host speaks to
/// this module: requests from a file, responses to a file.
TEST(Methods, ServedOverMsgpack) {
    polyglot::Worker worker("signal-cpp", "1.0.0");
    signal_cpp::add_methods(worker);
    EXPECT_EQ(worker.methods(),
              (std::vector<std::string>{"fir", "movingAverage", "resample", "rms"}));
    std::FILE* in = std::tmpfile();
    std::FILE* out = std::tmpfile();
    ASSERT_TRUE(in != nullptr && out != nullptr);
    std::string stream;
    const auto add = [&stream](const Value& message) {
        polyglot::append_frame(polyglot::Codec::msgpack, polyglot::encode_msgpack(message), stream);
    };
    add({{"id", 1}, {"method", "rms"}, {"params", Value::array({Value::array({3, 4})})}});
    add({{"id", 2}, {"method", "resample"}, {"params", {f32_bytes({0, 2}), 1, 2}}});
    add({{"id", 3}, {"method", "fir"}, {"params", {Value::array({1}), "no taps"}}});
    add({{"method", "$shutdown"}});
    ASSERT_EQ(std::fwrite(stream.data(), 1, stream.size(), in), stream.size());
    std::fflush(in);
    std::rewind(in);
    EXPECT_EQ(worker.run(fileno(in), fileno(out), polyglot::Codec::msgpack),
              polyglot::Ended::shutdown);
    std::rewind(out);
    std::string written;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) written.append(buf, n);
    std::fclose(in);
    std::fclose(out);

    const auto nl = written.find('\n');
    ASSERT_NE(nl, std::string::npos);
    EXPECT_EQ(polyglot::Handshake::parse(written.substr(0, nl)).codec, polyglot::Codec::msgpack);
    polyglot::FrameReader reader(polyglot::Codec::msgpack, polyglot::kDefaultMaxFrame);
    reader.extend(std::string_view(written).substr(nl + 1));
    std::map<std::uint64_t, polyglot::WorkerMessage> got;
    while (const auto f = reader.next_frame()) {
        const auto m = polyglot::decode_message(polyglot::Codec::msgpack, f->data);
        got.emplace(m.id->to_value().get<std::uint64_t>(), m);
    }
    ASSERT_EQ(got.size(), 3u);
    EXPECT_DOUBLE_EQ(got.at(1).result->get<double>(), std::sqrt(12.5));
    EXPECT_EQ(*got.at(2).result, f32_bytes({0, 1, 2, 2}));
    EXPECT_EQ(got.at(3).error->code, "INVALID_PARAMS");
}

}  // namespace
