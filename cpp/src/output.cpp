// Output: the writer thread (see output.hpp).
#include "output.hpp"

#include <climits>
#include <csignal>
#include <cerrno>

#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

namespace polyglot::detail {

namespace {

/// iovecs per writev(): the POSIX minimum of IOV_MAX, so it works everywhere.
constexpr std::size_t kMaxIov = 1024;

}  // namespace

Output::Output(int fd) : fd_(fd) {}

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
        if (!write_batch(batch)) {
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

bool Output::write_batch(std::vector<std::string>& batch) {
    std::size_t first = 0;     // the first frame not yet fully written
    std::size_t offset = 0;    // bytes of it already written
    while (first < batch.size()) {
        iovec iov[kMaxIov];
        int count = 0;
        for (std::size_t i = first; i < batch.size() && count < static_cast<int>(kMaxIov); ++i) {
            const std::size_t skip = i == first ? offset : 0;
            if (batch[i].size() == skip) continue;
            iov[count].iov_base = batch[i].data() + skip;
            iov[count].iov_len = batch[i].size() - skip;
            ++count;
        }
        if (count == 0) break;
        const ssize_t n = ::writev(fd_, iov, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking descriptor
                pollfd p{fd_, POLLOUT, 0};
                ::poll(&p, 1, -1);
                continue;
            }
            return false;
        }
        auto left = static_cast<std::size_t>(n);
        while (first < batch.size() && left >= batch[first].size() - offset) {
            left -= batch[first].size() - offset;
            offset = 0;
            ++first;
        }
        offset += left;
    }
    return true;
}

}  // namespace polyglot::detail
