// UTF-8 validation: protocol strings are UTF-8 in both codecs (JSON requires it; the host's
// MessagePack decoder refuses a `str` that is not), so the SDK checks what it writes and
// what it reads in MessagePack (nlohmann's JSON parser checks JSON input itself).
#pragma once

#include <cstddef>
#include <string_view>

namespace polyglot::detail {

/// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past
/// U+10FFFF).
inline bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;  // no surrogates
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            return false;
        }
        if (i + len > n) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (std::size_t k = 2; k < len; ++k) {
            if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
        }
        i += len;
    }
    return true;
}

}  // namespace polyglot::detail
