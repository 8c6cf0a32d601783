// stdio and socket transports (see transport.hpp).
#include "transport.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace polyglot::detail {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

Streams take_stdio() {
    // Text printed before serving goes out before the handshake (a banner the host skips).
    std::cout.flush();
    std::fflush(stdout);
    Streams s;
    s.out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (s.out < 0) fail("cannot take stdout for the protocol");
    if (::dup2(2, 1) < 0) fail("cannot point stdout at stderr");
    // Descriptor 1 is a log now: line-buffer it so each printed line reaches the host's log
    // when printed, not when the buffer fills. (glibc allows setvbuf after the fflush above.)
    std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
    s.in = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (s.in < 0) fail("cannot take stdin for the protocol");
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::close(devnull);
    }
    return s;
}

Streams connect_socket(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("the socket path \"" + path + "\" is empty or longer than " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("cannot create a Unix socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        fail("cannot connect to the host's socket " + path);
    }
    return Streams{fd, fd};
}

void die_with_parent() noexcept {
#if defined(__linux__)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
}

}  // namespace polyglot::detail
