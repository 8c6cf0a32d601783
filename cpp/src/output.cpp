// Output: the writer thread (see output.hpp).
#include "output.hpp"

#include <csignal>

#include <pthread.h>

namespace polyglot::detail {

Output::Output(Sink& sink) : sink_(sink) {}

Output::~Output() {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        closed_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Output::on_broken(std::function<void()> callback) { on_broken_ = std::move(callback); }

void Output::start() { thread_ = std::thread([this] { run(); }); }

void Output::send(std::string frame) {
    {
        std::lock_guard<std::mutex> lk(mutex_);
        if (closed_ || broken_) return;
        queue_.push_back(std::move(frame));
    }
    wake_.notify_one();
}

bool Output::close(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mutex_);
    closed_ = true;
    wake_.notify_all();
    if (!thread_.joinable()) return queue_.empty();
    done_.wait_for(lk, timeout, [this] { return finished_; });
    return finished_ && !broken_;
}

bool Output::broken() const {
    std::lock_guard<std::mutex> lk(mutex_);
    return broken_;
}

void Output::run() {
    // A write to a pipe or socket the host closed raises SIGPIPE for this thread: block it
    // here, so the write fails with EPIPE instead of killing the process.
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);

    std::vector<std::string> batch;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(mutex_);
            wake_.wait(lk, [this] { return !queue_.empty() || closed_; });
            if (queue_.empty()) {  // closed, and everything written
                finished_ = true;
                done_.notify_all();
                return;
            }
            batch.swap(queue_);
        }
        if (!sink_.write(batch)) {
            {
                std::lock_guard<std::mutex> lk(mutex_);
                broken_ = true;
                queue_.clear();
            }
            if (on_broken_) on_broken_();
        }
        batch.clear();
    }
}

}  // namespace polyglot::detail
