// TEST-ONLY hooks (see testing.hpp).
#include "polyglot/testing.hpp"

#include "envelope_impl.hpp"
#include "codec_impl.hpp"
#include "session.hpp"

namespace polyglot::testing {

/// The one place the hooks reach into Call and Worker.
struct CallAccess {
    static detail::Session* session(Call& call) { return call.session_; }
    static void announce(Worker& worker, std::uint64_t version) {
        worker.announced_protocol_ = version;
    }
};

void write_raw(Call& call, std::string_view bytes) {
    if (auto* s = CallAccess::session(call)) s->send_raw(std::string(bytes));
}

void write_message(Call& call, const Value& message) {
    auto* s = CallAccess::session(call);
    if (s == nullptr) return;
    const Codec codec = s->codec();
    std::size_t size = 0;
    s->send_raw(detail::framed(
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
