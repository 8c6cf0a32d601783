// GrpcServer (see server.hpp).
#include "server.hpp"

#include <algorithm>

namespace polyglot::detail {

GrpcServer::GrpcServer(const Worker& worker, const ServeOptions& options)
    : worker_(worker),
      options_(options),
      call_pool_(worker.max_concurrency()),
      health_pool_(1) {}

void GrpcServer::set_address(std::string address) {
    std::lock_guard<std::mutex> lk(mutex_);
    address_ = std::move(address);
}

std::string GrpcServer::address() const {
    std::lock_guard<std::mutex> lk(mutex_);
    return address_;
}

Handshake GrpcServer::handshake(Codec codec) const {
    Handshake h = worker_.handshake(codec);
    h.transport = "grpc";
    h.address = address();
    return h;
}

void GrpcServer::add_session(Session& session) {
    std::lock_guard<std::mutex> lk(mutex_);
    sessions_.push_back(&session);
}

void GrpcServer::remove_session(Session& session) {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        sessions_.erase(std::remove(sessions_.begin(), sessions_.end(), &session),
                        sessions_.end());
    }
    notify();
}

bool GrpcServer::admit(const std::shared_ptr<Call>& call) {
    std::lock_guard<std::mutex> lk(mutex_);
    if (requested()) return false;
    calls_.insert(call);
    return true;
}

void GrpcServer::answered(const std::shared_ptr<Call>& call) {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        calls_.erase(call);
    }
    notify();
}

bool GrpcServer::idle() {
    std::lock_guard<std::mutex> lk(mutex_);
    return sessions_.empty() && calls_.empty();
}

bool GrpcServer::busy() {
    if (running_.load() > 0) return true;
    std::lock_guard<std::mutex> lk(mutex_);
    return std::any_of(sessions_.begin(), sessions_.end(),
                       [](const Session* s) { return s->busy(); });
}

void GrpcServer::abandon_all() {
    std::lock_guard<std::mutex> lk(mutex_);
    for (Session* s : sessions_) s->abandon();
    for (const auto& call : calls_) call->cancel();
}

void GrpcServer::on_requested() {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        for (Session* s : sessions_) s->wake();
    }
    notify();
}

}  // namespace polyglot::detail
