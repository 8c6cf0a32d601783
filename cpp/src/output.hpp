// Output: the worker's side of the protocol stream. Frames are queued by any thread; one
// writer thread takes everything queued since its last write and hands it to the Sink in
// one go (one writev(), or one gRPC chunk), so a burst of responses costs one write, not one
// per response, and a frame is never held back while the writer is idle.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport.hpp"

namespace polyglot::detail {

class Output {
public:
    /// An output writing to `sink` (not owned) once start()ed.
    explicit Output(Sink& sink);
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;
    /// Stops taking frames, writes what is queued, and joins the writer.
    ~Output();

    /// Called once, on the writer thread, when a write fails (the host is gone).
    void on_broken(std::function<void()> callback);

    void start();

    /// Queues one whole frame (or raw bytes). Dropped once closed or broken.
    void send(std::string frame);

    /// Stops taking frames and waits up to `timeout` for the queue to be written. Returns
    /// whether everything was written. A writer stuck on a host that stopped reading is
    /// left behind (the caller then ends the process).
    bool close(std::chrono::milliseconds timeout);

    bool broken() const;

private:
    void run();

    Sink& sink_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::string> queue_;
    bool closed_ = false;
    bool finished_ = false;
    bool broken_ = false;
    std::function<void()> on_broken_;
    std::thread thread_;
};

}  // namespace polyglot::detail
