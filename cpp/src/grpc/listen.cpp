// Endpoints of a gRPC worker (see listen.hpp).
#include "listen.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace polyglot::detail {

namespace {

/// The socket's file name inside its private directory (docs/protocol.md, section 10).
constexpr std::string_view kSocketName = "worker.sock";

/// The private directory's name, made unique by mkdtemp().
constexpr std::string_view kDirPattern = "polyglot-grpc-XXXXXX";

/// The longest path a Unix socket address holds (sun_path less its terminating NUL).
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

bool all_digits(const std::string& s) {
    if (s.empty()) return false;
    for (const char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

}  // namespace

Endpoint private_socket() {
    std::string base = "/tmp";
    const char* tmpdir = std::getenv("TMPDIR");
    const std::size_t suffix = 1 + kDirPattern.size() + 1 + kSocketName.size();  // "/dir/sock"
    if (tmpdir != nullptr && tmpdir[0] == '/' && std::strlen(tmpdir) + suffix <= kMaxSocketPath) {
        base = tmpdir;
        while (base.size() > 1 && base.back() == '/') base.pop_back();
    }
    std::string pattern = base + "/" + std::string(kDirPattern);
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {  // mode 0700
        throw std::runtime_error("cannot make a private directory for the gRPC socket (" +
                                 pattern + "): " + std::strerror(errno));
    }
    Endpoint e;
    e.private_dir = buf.data();
    e.socket_path = e.private_dir + "/" + std::string(kSocketName);
    e.uri = "unix:" + e.socket_path;
    return e;
}

Endpoint loopback_tcp() {
    Endpoint e;
    e.uri = "127.0.0.1:0";
    return e;
}

Endpoint endpoint_from(const std::string& value) {
    Endpoint e;
    if (value.rfind("unix:", 0) == 0) {
        const std::string path = value.substr(5);
        if (path.empty() || path[0] != '/') {
            throw std::invalid_argument("a Unix socket address is unix:/absolute/path");
        }
        if (path.size() > kMaxSocketPath) {
            throw std::invalid_argument("the socket path is longer than " +
                                        std::to_string(kMaxSocketPath) + " bytes");
        }
        e.uri = value;
        e.socket_path = path;
        return e;
    }
    const auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        throw std::invalid_argument("expected host:port (e.g. 0.0.0.0:7070) or unix:/path");
    }
    const std::string port = value.substr(colon + 1);
    if (!all_digits(port) || port.size() > 5 || std::stoi(port) > 65535) {
        throw std::invalid_argument("the port must be a number from 0 to 65535");
    }
    e.uri = value;
    return e;
}

std::string announced_address(const Endpoint& endpoint, int selected_port) {
    if (!endpoint.socket_path.empty()) return "unix:" + endpoint.socket_path;
    const auto colon = endpoint.uri.rfind(':');
    return endpoint.uri.substr(0, colon + 1) + std::to_string(selected_port);
}

void remove_endpoint(const Endpoint& endpoint) noexcept {
    if (!endpoint.socket_path.empty()) {
        struct stat st {};
        if (::lstat(endpoint.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            ::unlink(endpoint.socket_path.c_str());
        }
    }
    if (!endpoint.private_dir.empty()) ::rmdir(endpoint.private_dir.c_str());
}

}  // namespace polyglot::detail
