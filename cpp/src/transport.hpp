// The transports' plumbing (docs/protocol.md, section 1): stdio taken for the protocol
// alone, the host's Unix socket, and dying with the host.
#pragma once

#include <string>

namespace polyglot::detail {

/// The protocol's two descriptors.
struct Streams {
    int in = -1;
    int out = -1;
};

/// Takes stdin and stdout for the protocol. Stdout is moved to a private descriptor and
/// descriptor 1 is pointed at stderr, so a stray printf or std::cout lands in the host's
/// log instead of corrupting the protocol. Stdin is moved the same way and descriptor 0
/// reads /dev/null, so a child process a method starts cannot swallow requests. The
/// private descriptors are not inherited by child processes.
/// @throws std::runtime_error when a descriptor cannot be duplicated.
Streams take_stdio();

/// Connects to the host's Unix domain socket at `path`; one descriptor for both ways.
/// @throws std::runtime_error naming the path and the reason.
Streams connect_socket(const std::string& path);

/// Asks Linux to kill this process when its parent (the host) dies, so a worker never
/// outlives a host that was killed outright. (No getppid() == 1 check: the host may itself
/// be PID 1 in a container. A host that died before this call closed our input, which
/// ends the worker anyway.)
void die_with_parent() noexcept;

}  // namespace polyglot::detail
