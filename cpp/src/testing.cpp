// TEST-ONLY hooks (see testing.hpp).
#include "polyglot/testing.hpp"

#include "call_host.hpp"
#include "codec_impl.hpp"
#include "envelope_impl.hpp"

namespace polyglot::testing {

/// The one place the hooks reach into Call and Worker.
struct CallAccess {
    static detail::CallHost* host(Call& call) { return call.host_; }
    static void announce(Worker& worker, std::uint64_t version) {
        worker.announced_protocol_ = version;
    }
};

void write_raw(Call& call, std::string_view bytes) {
    if (auto* h = CallAccess::host(call)) h->send_raw(std::string(bytes));
}

void write_message(Call& call, const Value& message) {
    auto* h = CallAccess::host(call);
    if (h == nullptr) return;
    const Codec codec = h->codec();
    std::size_t size = 0;
    h->send_raw(detail::framed(
        codec,
        [&](std::string& out) {
            if (codec == Codec::json) {
                detail::json_value(out, message);
            } else {
                detail::msgpack_value(out, message);
            }
        },
        size));
}

void announce_protocol_version(Worker& worker, std::uint64_t version) {
    CallAccess::announce(worker, version);
}

}  // namespace polyglot::testing
