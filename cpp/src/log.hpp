// log_stderr(): the SDK's own diagnostics, one line each on stderr, which the host
// forwards to its log.
#pragma once

#include <string>

namespace polyglot::detail {

/// Writes "polyglot worker: <message>" as one line to stderr, never failing.
void log_stderr(const std::string& message) noexcept;

}  // namespace polyglot::detail
