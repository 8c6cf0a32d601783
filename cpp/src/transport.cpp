// Descriptor-backed transports: stdio and the host's socket (see transport.hpp).
#include "transport.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "log.hpp"

namespace polyglot::detail {

namespace {

/// iovecs per writev(): the POSIX minimum of IOV_MAX, so it works everywhere.
constexpr std::size_t kMaxIov = 1024;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

// ---------------------------------------------------------------------------- WakePipe

WakePipe::WakePipe() {
    if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
    }
}

WakePipe::~WakePipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
}

void WakePipe::signal() const noexcept {
    const int saved = errno;  // callable from a signal handler
    const char b = 1;
    [[maybe_unused]] const ssize_t n = ::write(fds_[1], &b, 1);
    errno = saved;
}

void WakePipe::drain() const noexcept {
    char buf[64];
    while (::read(fds_[0], buf, sizeof buf) > 0) {
    }
}

// ----------------------------------------------------------------------- FdInput, FdSink

ReadResult FdInput::read(char* buf, std::size_t size) {
    for (;;) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_.read_fd(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log_stderr(std::string("waiting for input failed: ") + std::strerror(errno));
            return {ReadResult::Kind::eof, 0};
        }
        if (fds[1].revents != 0) {
            wake_.drain();
            return {ReadResult::Kind::woken, 0};
        }
        if (fds[0].revents == 0) continue;
        const ssize_t n = ::read(fd_, buf, size);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            log_stderr(std::string("reading the input failed: ") + std::strerror(errno));
            return {ReadResult::Kind::eof, 0};
        }
        if (n == 0) return {ReadResult::Kind::eof, 0};
        return {ReadResult::Kind::data, static_cast<std::size_t>(n)};
    }
}

bool FdSink::write(std::vector<std::string>& batch) {
    std::size_t first = 0;   // the first frame not yet fully written
    std::size_t offset = 0;  // bytes of it already written
    while (first < batch.size()) {
        iovec iov[kMaxIov];
        int count = 0;
        for (std::size_t i = first; i < batch.size() && count < static_cast<int>(kMaxIov); ++i) {
            const std::size_t skip = i == first ? offset : 0;
            if (batch[i].size() == skip) continue;
            iov[count].iov_base = batch[i].data() + skip;
            iov[count].iov_len = batch[i].size() - skip;
            ++count;
        }
        if (count == 0) break;
        const ssize_t n = ::writev(fd_, iov, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking descriptor
                pollfd p{fd_, POLLOUT, 0};
                ::poll(&p, 1, -1);
                continue;
            }
            return false;
        }
        auto left = static_cast<std::size_t>(n);
        while (first < batch.size() && left >= batch[first].size() - offset) {
            left -= batch[first].size() - offset;
            offset = 0;
            ++first;
        }
        offset += left;
    }
    return true;
}

// ------------------------------------------------------------------------- plumbing

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
    s.in = take_stdin();
    return s;
}

int take_stdin() {
    const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) fail("cannot take stdin for the protocol");
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::close(devnull);
    }
    return fd;
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
