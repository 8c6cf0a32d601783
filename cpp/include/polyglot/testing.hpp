// polyglot/testing.hpp: TEST-ONLY hooks that make a worker break the protocol on purpose,
// for the host's tests. A real worker never needs them.
#pragma once

#include <cstdint>
#include <string_view>

#include "polyglot/call.hpp"
#include "polyglot/value.hpp"
#include "polyglot/worker.hpp"

namespace polyglot::testing {

/// TEST ONLY: writes `bytes` as-is to the protocol stream, in order with the worker's
/// other output (e.g. a line that is not a frame).
void write_raw(Call& call, std::string_view bytes);

/// TEST ONLY: writes `message` as one frame of the worker's codec, unchecked against the
/// calls in flight (e.g. a response to an id the host never issued).
void write_message(Call& call, const Value& message);

/// TEST ONLY: makes the handshake announce protocol version `version` instead of the one
/// this SDK speaks (the worker then serves as usual).
void announce_protocol_version(Worker& worker, std::uint64_t version);

}  // namespace polyglot::testing
