// polyglot/handshake.hpp: the first line a worker sends, always JSON (docs/protocol.md,
// section 2), and the host's rules for accepting it (for tests and tools).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "polyglot/codec.hpp"

namespace polyglot {

/// The protocol version this SDK speaks.
inline constexpr std::uint64_t kProtocolVersion = 1;

/// The environment variables the host sets for a worker (docs/protocol.md, section 1).
namespace env {
inline constexpr const char* PROTOCOL = "POLYGLOT_PROTOCOL";
inline constexpr const char* MODULE = "POLYGLOT_MODULE";
inline constexpr const char* VERSION = "POLYGLOT_VERSION";
inline constexpr const char* CODEC = "POLYGLOT_CODEC";
inline constexpr const char* TRANSPORT = "POLYGLOT_TRANSPORT";
inline constexpr const char* SOCKET = "POLYGLOT_SOCKET";
inline constexpr const char* MAX_FRAME = "POLYGLOT_MAX_FRAME";
inline constexpr const char* INSTANCE = "POLYGLOT_INSTANCE";
/// gRPC, a remote worker (section 10): where it listens, `host:port` or `unix:/path`.
inline constexpr const char* GRPC_LISTEN = "POLYGLOT_GRPC_LISTEN";
}  // namespace env

/// A handshake the host refuses; the text says which rule was broken.
class HandshakeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What the host expects of a handshake, from the module's manifest.
struct ExpectedWorker {
    std::string module;                 ///< the manifest's `name`
    Codec codec = Codec::json;          ///< the manifest's `codec`
    std::vector<std::string> capabilities;  ///< methods the worker must serve
};

/// A worker's handshake.
struct Handshake {
    std::uint64_t protocol = kProtocolVersion;
    std::string module;
    std::string version;
    std::optional<std::string> language;
    Codec codec = Codec::json;
    std::vector<std::string> methods;
    std::uint64_t max_concurrency = 1;
    std::optional<std::uint64_t> pid;
    /// `"grpc"` when the worker serves gRPC (docs/protocol.md, section 10).
    std::optional<std::string> transport;
    /// With gRPC: where it listens, `unix:/absolute/path` or `host:port`.
    std::optional<std::string> address;

    /// Parses a handshake line, filling in defaults.
    /// @throws HandshakeError naming the field that is missing or wrong, or the protocol
    ///         version the host does not speak.
    static Handshake parse(std::string_view line);

    /// Checks the handshake against the manifest.
    /// @throws HandshakeError for another module, another codec, or capabilities the worker
    ///         does not serve (all of them named).
    void check(const ExpectedWorker& expected) const;

    /// The line a worker writes, with its `\n`.
    std::string to_line() const;
};

}  // namespace polyglot
