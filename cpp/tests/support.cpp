// Shared fixtures of the SDK's tests (see support.hpp).
#include "support.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

extern char** environ;

namespace support {

std::vector<Value> load_cases(const std::string& file) {
    const std::string path = std::string(POLYGLOT_VECTORS_DIR) + "/" + file;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    const Value doc = polyglot::decode_json(text.str());
    std::vector<Value> cases(doc.at("cases").begin(), doc.at("cases").end());
    if (cases.empty()) throw std::runtime_error(path + " has no cases");
    return cases;
}

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

std::string to_hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 15]);
    }
    return out;
}

bool same(const Value& a, const Value& b) {
    const bool a_int = a.is_number_integer();  // signed or unsigned
    const bool b_int = b.is_number_integer();
    if (a_int || b_int) {
        if (!(a_int && b_int)) return false;
        const bool a_neg = !a.is_number_unsigned() && a.get<std::int64_t>() < 0;
        const bool b_neg = !b.is_number_unsigned() && b.get<std::int64_t>() < 0;
        if (a_neg != b_neg) return false;
        return a_neg ? a.get<std::int64_t>() == b.get<std::int64_t>()
                     : a.get<std::uint64_t>() == b.get<std::uint64_t>();
    }
    if (a.type() != b.type()) return false;
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (!same(a[i], b[i])) return false;
        }
        return true;
    }
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (const auto& item : a.items()) {
            const auto it = b.find(item.key());
            if (it == b.end() || !same(item.value(), *it)) return false;
        }
        return true;
    }
    if (a.is_binary()) return a.get_binary() == b.get_binary();
    return a == b;
}

std::string show(const Value& v) {
    try {
        return polyglot::encode_json(v);
    } catch (const std::exception& e) {
        return std::string("<") + e.what() + ">";
    }
}

bool mentions(const std::string& text, const std::string& needle) {
    const auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s;
    };
    return lower(text).find(lower(needle)) != std::string::npos;
}

// ---------------------------------------------------------------------------- TempDir

TempDir::TempDir() {
    char tmpl[] = "/tmp/polyglot-cpp-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
}

TempDir::~TempDir() {
    if (DIR* d = ::opendir(path_.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
        }
        ::closedir(d);
    }
    ::rmdir(path_.c_str());
}

// ------------------------------------------------------------------------------- Peer

namespace {

void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

/// How long one poll() waits before the peer's idle work (draining stderr) runs.
constexpr int kPollSliceMs = 20;

}  // namespace

Peer::Peer(int to_worker, int from_worker, Codec codec)
    : to_worker_(to_worker),
      from_worker_(from_worker),
      codec_(codec),
      reader_(Codec::json, polyglot::kDefaultMaxFrame) {}

Peer::~Peer() {
    if (to_worker_ >= 0) ::close(to_worker_);
    if (from_worker_ >= 0) ::close(from_worker_);
}

bool Peer::fill(std::chrono::steady_clock::time_point deadline) {
    while (!ended_) {
        on_idle();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{from_worker_, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), kPollSliceMs)));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        const auto space = reader_.read_buf();
        const ssize_t n = ::read(from_worker_, space.data, space.size);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            ended_ = true;
            return false;
        }
        reader_.filled(static_cast<std::size_t>(n));
        return true;
    }
    return false;
}

polyglot::Handshake Peer::handshake(std::chrono::milliseconds timeout) {
    auto h = try_handshake(std::chrono::steady_clock::now() + timeout);
    if (!h) throw std::runtime_error("no handshake arrived");
    return *h;
}

std::optional<polyglot::Handshake> Peer::try_handshake(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        while (const auto f = reader_.next_frame()) {
            const std::string line(f->data);
            Value v;
            try {
                v = polyglot::decode_json(line);
            } catch (const polyglot::DecodeError&) {
            }
            if (!v.is_object() || !v.contains("polyglot")) {
                banners_.push_back(line);
                continue;
            }
            handshake_done_ = true;
            reader_.set_codec(codec_);
            if (v["polyglot"] != 1) {  // not one we accept: hand it over unparsed
                polyglot::Handshake h;
                h.protocol = v["polyglot"].get<std::uint64_t>();
                return h;
            }
            return polyglot::Handshake::parse(line);
        }
        if (!fill(deadline)) return std::nullopt;
    }
}

void Peer::send(const Value& message) {
    std::string frame;
    polyglot::append_frame(codec_, polyglot::encode(codec_, message), frame);
    write_all(to_worker_, frame);
}

void Peer::send_raw(std::string_view bytes) { write_all(to_worker_, bytes); }

void Peer::close_input() {
    if (to_worker_ >= 0) ::close(to_worker_);
    to_worker_ = -1;
}

std::optional<polyglot::WorkerMessage> Peer::next(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!handshake_done_ && !try_handshake(deadline)) return std::nullopt;
    for (;;) {
        while (const auto f = reader_.next_frame()) {
            if (f->kind != polyglot::Frame::Kind::data) {
                undecodable_.push_back("(frame over the limit)");
                continue;
            }
            try {
                seen_.push_back(polyglot::decode_message(codec_, f->data));
                return seen_.back();
            } catch (const polyglot::DecodeError&) {
                undecodable_.emplace_back(f->data);
            }
        }
        if (!fill(deadline)) return std::nullopt;
    }
}

polyglot::WorkerMessage Peer::expect_next(std::chrono::milliseconds timeout) {
    auto m = next(timeout);
    if (!m) throw std::runtime_error("no message from the worker");
    return *m;
}

polyglot::WorkerMessage Peer::response_to(const polyglot::Id& id,
                                          std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        auto m = next(std::max(left, std::chrono::milliseconds(0)));
        if (!m) throw std::runtime_error("no response to id " + id.to_string());
        if (m->kind == polyglot::WorkerMessage::Kind::response && m->id == id) return *m;
    }
}

bool Peer::read_to_end(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!handshake_done_) try_handshake(deadline);
    while (!ended_) {
        while (next(0ms)) {
        }
        if (!ended_ && std::chrono::steady_clock::now() >= deadline) return false;
        fill(deadline);
    }
    while (next(0ms)) {
    }
    return true;
}

// ---------------------------------------------------------------------------- Process

Process::Process(const std::string& program, const std::vector<std::string>& env, Codec codec,
                 bool host_env)
    : Peer(-1, -1, codec) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    std::vector<std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string var = *e;
        if (var.rfind("POLYGLOT_", 0) == 0 || var.rfind("TEST_", 0) == 0) continue;
        vars.push_back(var);
    }
    if (host_env) {
        vars.emplace_back("POLYGLOT_PROTOCOL=1");
        vars.push_back(std::string("POLYGLOT_CODEC=") + polyglot::to_string(codec));
        vars.emplace_back("POLYGLOT_MODULE=cpp-test");
    }
    for (const auto& v : env) {  // an override replaces a variable of the same name
        const std::string name = v.substr(0, v.find('=') + 1);
        vars.erase(std::remove_if(vars.begin(), vars.end(),
                                  [&name](const std::string& e) { return e.rfind(name, 0) == 0; }),
                   vars.end());
        vars.push_back(v);
    }
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string prog = program;
    char* argv[] = {prog.data(), nullptr};

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    const int rc = ::posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
        ::close(in[1]);
        ::close(out[0]);
        ::close(err[0]);
        throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
    }
    to_worker_ = in[1];
    from_worker_ = out[0];
    err_fd_ = err[0];
    ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
}

Process::~Process() {
    if (!status_) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
    }
    if (err_fd_ >= 0) ::close(err_fd_);
}

void Process::drain_stderr() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(err_fd_, buf, sizeof buf);
        if (n <= 0) return;
        stderr_.append(buf, static_cast<std::size_t>(n));
    }
}

std::string Process::stderr_text() {
    drain_stderr();
    return stderr_;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        drain_stderr();
        int st = 0;
        const pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            drain_stderr();
            return status_;
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

// -------------------------------------------------------------------------- InProcess

InProcess::InProcess(const polyglot::Worker& worker, Codec codec, std::size_t max_frame)
    : Peer(-1, -1, codec) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    to_worker_ = in[1];
    from_worker_ = out[0];
    worker_in_ = in[0];
    worker_out_ = out[1];
    thread_ = std::thread([this, &worker, codec, max_frame] {
        ended_how_ = worker.run(worker_in_, worker_out_, codec, max_frame);
        ::close(worker_out_);  // the peer sees the end of the output
        worker_out_ = -1;
    });
}

polyglot::Ended InProcess::ended() {
    if (thread_.joinable()) thread_.join();
    return *ended_how_;
}

InProcess::~InProcess() {
    close_input();
    if (thread_.joinable()) thread_.join();
    if (worker_in_ >= 0) ::close(worker_in_);
}

Value request(const Value& id, const std::string& method, const Value& params) {
    Value r = {{"id", id}, {"method", method}};
    if (!params.is_null()) r["params"] = params;
    return r;
}

Value notification(const std::string& method, const Value& params) {
    Value r = {{"method", method}};
    if (!params.is_null()) r["params"] = params;
    return r;
}

}  // namespace support
