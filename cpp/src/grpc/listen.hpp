// Where a gRPC worker listens (docs/protocol.md, section 10): a Unix socket in a new
// private directory when the host started it, or POLYGLOT_GRPC_LISTEN for a remote worker;
// and the address it then announces.
#pragma once

#include <string>

namespace polyglot::detail {

struct Endpoint {
    /// For grpc::ServerBuilder::AddListeningPort: `unix:/path` or `host:port`.
    std::string uri;
    /// A Unix socket's file, removed at exit (empty for TCP).
    std::string socket_path;
    /// The private directory made for the socket, removed at exit (empty when none).
    std::string private_dir;
};

/// A Unix socket `worker.sock` in a new directory of mode 0700 under $TMPDIR (or /tmp
/// when that path would be too long for a socket address).
/// @throws std::runtime_error when no directory can be made.
Endpoint private_socket();

/// TCP on 127.0.0.1, on a port the system picks: where Unix sockets are unavailable.
Endpoint loopback_tcp();

/// The endpoint POLYGLOT_GRPC_LISTEN names: `host:port` or `unix:/absolute/path`.
/// @throws std::invalid_argument saying what is wrong with `value`.
Endpoint endpoint_from(const std::string& value);

/// The address to announce: the endpoint's, with the port the server picked when it asked
/// for port 0.
std::string announced_address(const Endpoint& endpoint, int selected_port);

/// Removes the socket file and the private directory (never throws).
void remove_endpoint(const Endpoint& endpoint) noexcept;

}  // namespace polyglot::detail
