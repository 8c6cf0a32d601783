// Shared fixtures of the SDK's tests: the vectors, strict value comparison, and Peer, the
// host's side of a worker's streams (a real child process, or Worker::run on a thread).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "polyglot/polyglot.hpp"

namespace support {

using polyglot::Codec;
using polyglot::Value;
using namespace std::chrono_literals;

/// The `cases` of one file in tests/vectors/, read with the SDK's own JSON decoder (so the
/// protocol's JSON form of binary, `{"$bytes": ...}`, is binary here).
std::vector<Value> load_cases(const std::string& file);

std::string from_hex(std::string_view hex);
std::string to_hex(std::string_view bytes);

/// Equality that keeps floats and integers apart (nlohmann's == says 1 == 1.0) while an
/// unsigned and a signed integer of the same value are equal, as on the wire.
bool same(const Value& a, const Value& b);

/// JSON text of a value, for failure messages.
std::string show(const Value& v);

/// Whether `text` contains `needle`, ignoring case.
bool mentions(const std::string& text, const std::string& needle);

/// A temporary directory removed (with its files) at the end of the test.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// The host's side of a served stream: writes requests, reads the handshake and messages.
class Peer {
public:
    /// Takes ownership of both descriptors.
    Peer(int to_worker, int from_worker, Codec codec);
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    virtual ~Peer();

    /// Reads the handshake line (skipping banner lines that are not one).
    polyglot::Handshake handshake(std::chrono::milliseconds timeout = 10s);
    /// Lines before the handshake that were not one.
    const std::vector<std::string>& banners() const { return banners_; }

    void send(const Value& message);
    void send_raw(std::string_view bytes);
    void close_input();

    /// The next message, or nothing when the stream ends or `timeout` passes.
    std::optional<polyglot::WorkerMessage> next(std::chrono::milliseconds timeout = 10s);
    /// The next message; fails the test when there is none.
    polyglot::WorkerMessage expect_next(std::chrono::milliseconds timeout = 10s);
    /// Messages until the response to `id` (progress and logs before it are collected).
    polyglot::WorkerMessage response_to(const polyglot::Id& id,
                                        std::chrono::milliseconds timeout = 10s);
    /// Reads (and decodes) everything until the output ends; false on timeout.
    bool read_to_end(std::chrono::milliseconds timeout = 10s);
    /// Raw frames read so far that did not decode.
    const std::vector<std::string>& undecodable() const { return undecodable_; }
    const std::vector<polyglot::WorkerMessage>& seen() const { return seen_; }

protected:
    /// The handshake, or nothing when the stream ends or `deadline` passes first.
    std::optional<polyglot::Handshake> try_handshake(std::chrono::steady_clock::time_point deadline);
    /// Fills the reader; false on end of stream or timeout.
    bool fill(std::chrono::steady_clock::time_point deadline);
    virtual void on_idle() {}

    int to_worker_;
    int from_worker_;
    Codec codec_;
    polyglot::FrameReader reader_;
    bool handshake_done_ = false;
    bool ended_ = false;
    std::vector<std::string> banners_;
    std::vector<std::string> undecodable_;
    std::vector<polyglot::WorkerMessage> seen_;
};

/// A real worker process (posix_spawn), speaking over pipes.
class Process : public Peer {
public:
    /// Starts `program` with the current environment minus POLYGLOT_* and TEST_*, plus
    /// `env` ("NAME=value"). With `host_env`, POLYGLOT_PROTOCOL=1 and POLYGLOT_CODEC are set.
    Process(const std::string& program, const std::vector<std::string>& env, Codec codec,
            bool host_env = true);
    ~Process() override;

    int pid() const { return pid_; }
    /// The exit status (or 128 + signal), or nothing when it does not exit within `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = 10s);
    /// Everything the process wrote to stderr so far.
    std::string stderr_text();

protected:
    void on_idle() override { drain_stderr(); }

private:
    void drain_stderr();

    int pid_ = -1;
    int err_fd_ = -1;
    std::string stderr_;
    std::optional<int> status_;
};

/// Worker::run() on a thread of this process, over pipes.
class InProcess : public Peer {
public:
    InProcess(const polyglot::Worker& worker, Codec codec,
              std::size_t max_frame = polyglot::kDefaultMaxFrame);
    ~InProcess() override;
    /// How run() ended; waits for it (the input must be closed or `$shutdown` sent).
    polyglot::Ended ended();

private:
    std::thread thread_;
    int worker_in_ = -1;
    int worker_out_ = -1;
    std::optional<polyglot::Ended> ended_how_;
};

/// A request as the host writes it.
Value request(const Value& id, const std::string& method, const Value& params = nullptr);
/// A notification (no id).
Value notification(const std::string& method, const Value& params = nullptr);

}  // namespace support
