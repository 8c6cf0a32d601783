// ThreadPool: a fixed number of threads running queued tasks, oldest first. The worker runs
// its calls on one of max_concurrency threads (the host never sends more calls at once, so
// the queue is short), and `$health` on a pool of its own, outside the method slots.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace polyglot::detail {

class ThreadPool {
public:
    /// Starts `threads` threads (at least 1).
    explicit ThreadPool(std::size_t threads);
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    /// Drops the tasks not started and joins the threads (waiting for running tasks).
    ~ThreadPool();

    void submit(std::function<void()> task);

private:
    void run();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace polyglot::detail
