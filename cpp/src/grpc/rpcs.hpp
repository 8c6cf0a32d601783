// The RPCs of polyglot.v1.Worker (proto/polyglot/v1/worker.proto; docs/protocol.md,
// section 10), each started by a function that returns its callback reactor, and the
// service that routes them. `Session` is in session_rpc.cpp, the unary RPCs in
// unary_rpcs.cpp.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "polyglot/v1/worker.grpc.pb.h"
#include "server.hpp"

namespace polyglot::detail {

/// A sender puts at most this much in one chunk of a `Session` stream (section 10).
inline constexpr std::size_t kMaxChunkBytes = 1u << 20;

/// What a receiver accepts in one chunk, at least: 4 MiB (section 10).
inline constexpr std::size_t kMinReceiveChunkBytes = 4u << 20;

/// The request metadata that names a session's codec.
inline constexpr const char* kCodecMetadata = "polyglot-codec";

::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk>* start_session(GrpcServer& server,
                                                                ::grpc::CallbackServerContext* ctx);

::grpc::ServerUnaryReactor* describe(GrpcServer& server, ::grpc::CallbackServerContext* ctx,
                                     v1::DescribeResponse* response);

::grpc::ServerUnaryReactor* start_call(GrpcServer& server, ::grpc::CallbackServerContext* ctx,
                                       const v1::WorkerCallRequest* request,
                                       v1::WorkerCallResponse* response);

::grpc::ServerWriteReactor<v1::WorkerCallEvent>* start_call_stream(
    GrpcServer& server, ::grpc::CallbackServerContext* ctx, const v1::WorkerCallRequest* request);

::grpc::ServerUnaryReactor* health(GrpcServer& server, ::grpc::CallbackServerContext* ctx,
                                   v1::WorkerHealthResponse* response);

::grpc::ServerUnaryReactor* shutdown(GrpcServer& server, ::grpc::CallbackServerContext* ctx);

/// The service polyglot.v1.Worker, answering with the functions above.
std::unique_ptr<::grpc::Service> make_service(GrpcServer& server);

}  // namespace polyglot::detail
