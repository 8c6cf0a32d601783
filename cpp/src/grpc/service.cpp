// The service polyglot.v1.Worker: routes each RPC to the function that serves it
// (see rpcs.hpp).
#include "rpcs.hpp"

namespace polyglot::detail {

namespace {

class WorkerService final : public v1::Worker::CallbackService {
public:
    explicit WorkerService(GrpcServer& server) : server_(server) {}

    ::grpc::ServerBidiReactor<v1::Chunk, v1::Chunk>* Session(
        ::grpc::CallbackServerContext* ctx) override {
        return start_session(server_, ctx);
    }

    ::grpc::ServerUnaryReactor* Describe(::grpc::CallbackServerContext* ctx,
                                         const v1::DescribeRequest*,
                                         v1::DescribeResponse* response) override {
        return describe(server_, ctx, response);
    }

    ::grpc::ServerUnaryReactor* Call(::grpc::CallbackServerContext* ctx,
                                     const v1::WorkerCallRequest* request,
                                     v1::WorkerCallResponse* response) override {
        return start_call(server_, ctx, request, response);
    }

    ::grpc::ServerWriteReactor<v1::WorkerCallEvent>* CallStream(
        ::grpc::CallbackServerContext* ctx, const v1::WorkerCallRequest* request) override {
        return start_call_stream(server_, ctx, request);
    }

    ::grpc::ServerUnaryReactor* Health(::grpc::CallbackServerContext* ctx,
                                       const v1::WorkerHealthRequest*,
                                       v1::WorkerHealthResponse* response) override {
        return health(server_, ctx, response);
    }

    ::grpc::ServerUnaryReactor* Shutdown(::grpc::CallbackServerContext* ctx,
                                         const v1::WorkerShutdownRequest*,
                                         v1::WorkerShutdownResponse*) override {
        return shutdown(server_, ctx);
    }

private:
    GrpcServer& server_;
};

}  // namespace

std::unique_ptr<::grpc::Service> make_service(GrpcServer& server) {
    return std::make_unique<WorkerService>(server);
}

}  // namespace polyglot::detail
