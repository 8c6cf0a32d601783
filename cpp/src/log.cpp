// log_stderr() (see log.hpp).
#include "log.hpp"

#include <cerrno>

#include <unistd.h>

namespace polyglot::detail {

void log_stderr(const std::string& message) noexcept {
    try {
        const std::string line = "polyglot worker: " + message + "\n";
        std::size_t done = 0;
        while (done < line.size()) {
            const ssize_t n = ::write(2, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            done += static_cast<std::size_t>(n);
        }
    } catch (...) {  // out of memory: nowhere left to report
    }
}

}  // namespace polyglot::detail
