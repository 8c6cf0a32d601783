// The seam between polyglot::worker and polyglot::worker_grpc. Worker::serve() hands a
// worker the host started with POLYGLOT_TRANSPORT=grpc to the gRPC transport, which
// polyglot::worker_grpc installs before main() in every program that links it
// (src/grpc/link.cpp). polyglot::worker itself never depends on gRPC.
#pragma once

#include <cstddef>

#include "polyglot/codec.hpp"
#include "polyglot/worker.hpp"

namespace polyglot::detail {

/// What serve() read from the environment that every transport uses.
struct ServeOptions {
    Codec codec = Codec::json;
    std::size_t max_frame = kDefaultMaxFrame;
};

/// Serves `worker` over gRPC (docs/protocol.md, section 10); returns the exit status when
/// it cannot start (it ends the process itself once serving).
using GrpcServe = int (*)(const Worker& worker, const ServeOptions& options);

/// Installs the gRPC transport (called by polyglot::worker_grpc).
void install_grpc_serve(GrpcServe serve) noexcept;

/// The installed gRPC transport, or nullptr when the program does not link it.
GrpcServe installed_grpc_serve() noexcept;

/// Defined by polyglot::worker_grpc (src/grpc/serve.cpp): installs its transport.
void install_grpc_transport() noexcept;

}  // namespace polyglot::detail
