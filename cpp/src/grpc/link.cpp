// Compiled into every program that links polyglot::worker_grpc (an INTERFACE source of
// that target): installs the gRPC transport before main(), so Worker::serve() serves gRPC
// when the host asks for it without the program naming anything gRPC. Being part of the
// program itself, this file cannot be dropped by the linker the way an unreferenced member
// of the static library would be.
namespace polyglot::detail {
void install_grpc_transport() noexcept;
}  // namespace polyglot::detail

namespace {

struct InstallGrpcTransport {
    InstallGrpcTransport() noexcept { polyglot::detail::install_grpc_transport(); }
};

const InstallGrpcTransport install_grpc_transport_at_start;

}  // namespace
