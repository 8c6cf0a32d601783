// The transports (docs/protocol.md, sections 1 and 10): what a session reads the host's
// bytes from (Input) and writes its frames to (Sink), their descriptor-backed forms for
// stdio and the host's Unix socket, and the plumbing around them (taking stdio for the
// protocol, dying with the host). The gRPC transport implements Input and Sink over a
// `Session` stream (src/grpc/session_rpc.*).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace polyglot::detail {

/// What Input::read() got.
struct ReadResult {
    enum class Kind {
        data,   ///< `size` bytes were read
        eof,    ///< the input ended (or failed: already reported on stderr)
        woken,  ///< wake() was called: nothing read, the caller rechecks its state
    };
    Kind kind = Kind::eof;
    std::size_t size = 0;
};

/// Where a session reads the host's bytes from. read() is called by one thread at a time;
/// wake() by any thread.
class Input {
public:
    virtual ~Input() = default;
    /// Waits until bytes arrive, the input ends, or wake() is called, then reads up to
    /// `size` bytes into `buf`.
    virtual ReadResult read(char* buf, std::size_t size) = 0;
    /// Makes the read() in progress, or the next one, return `woken`.
    virtual void wake() noexcept = 0;
};

/// Where a session's frames go. Used by one thread at a time (Output's writer thread).
class Sink {
public:
    virtual ~Sink() = default;
    /// Writes every frame of `batch`, in order. Returns false when the host is gone (no
    /// later write will succeed).
    virtual bool write(std::vector<std::string>& batch) = 0;
};

/// A non-blocking pipe that wakes a thread waiting in poll(), closed when this goes away.
class WakePipe {
public:
    /// @throws std::runtime_error when no pipe can be made.
    WakePipe();
    WakePipe(const WakePipe&) = delete;
    WakePipe& operator=(const WakePipe&) = delete;
    ~WakePipe();
    int read_fd() const noexcept { return fds_[0]; }
    /// Writes one byte (a full pipe already holds a wake-up). Async-signal-safe.
    void signal() const noexcept;
    /// Reads every pending byte.
    void drain() const noexcept;

private:
    int fds_[2];
};

/// An Input reading a descriptor (not owned), woken through a WakePipe.
class FdInput final : public Input {
public:
    /// @throws std::runtime_error when no wake-up pipe can be made.
    explicit FdInput(int fd) : fd_(fd) {}
    ReadResult read(char* buf, std::size_t size) override;
    void wake() noexcept override { wake_.signal(); }

private:
    int fd_;
    WakePipe wake_;
};

/// A Sink writing a descriptor (not owned): each batch with as few writev() calls as it
/// takes.
class FdSink final : public Sink {
public:
    explicit FdSink(int fd) : fd_(fd) {}
    bool write(std::vector<std::string>& batch) override;

private:
    int fd_;
};

/// The protocol's two descriptors.
struct Streams {
    int in = -1;
    int out = -1;
};

/// Takes stdin and stdout for the protocol. Stdout is moved to a private descriptor and
/// descriptor 1 is pointed at stderr, so a stray printf or std::cout lands in the host's
/// log instead of corrupting the protocol. Stdin is moved as take_stdin() does. The
/// private descriptors are not inherited by child processes.
/// @throws std::runtime_error when a descriptor cannot be duplicated.
Streams take_stdio();

/// Moves stdin to a private descriptor (returned; not inherited by child processes) and
/// points descriptor 0 at /dev/null, so a child process a method starts cannot swallow
/// what the host writes.
/// @throws std::runtime_error when the descriptor cannot be duplicated.
int take_stdin();

/// Connects to the host's Unix domain socket at `path`; one descriptor for both ways.
/// @throws std::runtime_error naming the path and the reason.
Streams connect_socket(const std::string& path);

/// Asks Linux to kill this process when its parent (the host) dies, so a worker never
/// outlives a host that was killed outright. (No getppid() == 1 check: the host may itself
/// be PID 1 in a container. A host that died before this call closed our input, which
/// ends the worker anyway.)
void die_with_parent() noexcept;

}  // namespace polyglot::detail
