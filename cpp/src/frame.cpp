// FrameReader (see frame.hpp), append_frame, and reading an id from a frame's first bytes.
// The same algorithm as the Rust protocol crate's frame.rs, so both read any stream alike.
#include "polyglot/frame.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "codec_impl.hpp"

namespace polyglot {

namespace {

/// How much free space read_buf() offers at least: one read takes up to a pipe's default
/// capacity (64 KiB on Linux), so a burst is drained in one syscall.
constexpr std::size_t kMinRead = 64 * 1024;

/// Length of the MessagePack frame prefix.
constexpr std::size_t kPrefix = 4;

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::optional<Id> json_id_from_head(std::string_view head) {
    std::size_t i = 0;
    const auto skip_ws = [&] {
        while (i < head.size() && is_json_space(head[i])) ++i;
    };
    const auto expect = [&](std::string_view lit) {
        if (head.substr(i, lit.size()) != lit) return false;
        i += lit.size();
        return true;
    };
    skip_ws();
    if (!expect("{")) return std::nullopt;
    skip_ws();
    if (!expect("\"id\"")) return std::nullopt;
    skip_ws();
    if (!expect(":")) return std::nullopt;
    skip_ws();
    const std::size_t start = i;
    if (i < head.size() && head[i] == '"') {
        ++i;
        while (i < head.size()) {
            if (head[i] == '\\') {
                i += 2;
            } else if (head[i] == '"') {
                try {
                    const Value v = decode_json(head.substr(start, i + 1 - start));
                    if (v.is_string()) return Id(v.get<std::string>());
                } catch (const DecodeError&) {
                }
                return std::nullopt;
            } else {
                ++i;
            }
        }
        return std::nullopt;
    }
    while (i < head.size() && (head[i] == '-' || (head[i] >= '0' && head[i] <= '9'))) ++i;
    // The number must end inside the head, or it may have been cut.
    if (i >= head.size() || i == start) return std::nullopt;
    const char next = head[i];
    if (!(next == ',' || next == '}' || is_json_space(next))) return std::nullopt;
    try {
        return Id::from_value(decode_json(head.substr(start, i - start)));
    } catch (const DecodeError&) {
        return std::nullopt;
    }
}

}  // namespace

std::optional<Id> id_from_head(Codec codec, std::string_view head) {
    head = head.substr(0, kHeadBytes);
    return codec == Codec::msgpack ? detail::msgpack_id_from_head(head) : json_id_from_head(head);
}

void append_frame(Codec codec, std::string_view payload, std::string& out) {
    if (codec == Codec::json) {
        out.reserve(out.size() + payload.size() + 1);
        out.append(payload);
        out.push_back('\n');
        return;
    }
    if (payload.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw EncodeError("a MessagePack frame holds at most 4 GiB");
    }
    const auto n = static_cast<std::uint32_t>(payload.size());
    const char prefix[kPrefix] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                  static_cast<char>(n >> 8), static_cast<char>(n)};
    out.reserve(out.size() + kPrefix + payload.size());
    out.append(prefix, kPrefix);
    out.append(payload);
}

FrameReader::FrameReader(Codec codec, std::size_t limit) : codec_(codec), limit_(limit) {}

void FrameReader::set_codec(Codec codec) {
    codec_ = codec;
    scanned_ = 0;
}

FrameReader::Space FrameReader::read_buf() {
    if (start_ == end_) {
        start_ = 0;
        end_ = 0;
        scanned_ = 0;
    }
    if (buf_.size() - end_ < kMinRead) {
        if (start_ > 0) {
            std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
            end_ -= start_;
            start_ = 0;
        }
        if (buf_.size() - end_ < kMinRead) {
            buf_.resize(std::max(end_ + kMinRead, buf_.size() * 2));
        }
    }
    return Space{buf_.data() + end_, buf_.size() - end_};
}

void FrameReader::filled(std::size_t n) { end_ += n; }

void FrameReader::extend(std::string_view bytes) {
    while (!bytes.empty()) {
        const Space spare = read_buf();
        const std::size_t n = std::min(spare.size, bytes.size());
        std::memcpy(spare.data, bytes.data(), n);
        filled(n);
        bytes.remove_prefix(n);
    }
}

std::optional<std::uint64_t> FrameReader::finish() const {
    const auto pending = static_cast<std::uint64_t>(end_ - start_);
    if (skip_) {  // bytes of the skipped frame that arrived
        return skip_->remaining ? skip_->size - *skip_->remaining : skip_->size + pending;
    }
    if (pending > 0) return pending;
    return std::nullopt;
}

std::optional<Frame> FrameReader::next_frame() {
    for (;;) {
        if (skip_) return continue_skip();
        const std::size_t avail = end_ - start_;
        if (codec_ == Codec::json) {
            const std::size_t from = start_ + scanned_;
            // (memchr must not see a null pointer, even for zero bytes: an empty buffer.)
            const void* hit = end_ > from ? std::memchr(buf_.data() + from, '\n', end_ - from)
                                          : nullptr;
            if (hit != nullptr) {
                const auto nl = static_cast<std::size_t>(static_cast<const char*>(hit) - buf_.data());
                std::size_t line_end = nl;
                if (line_end > start_ && buf_[line_end - 1] == '\r') --line_end;
                const std::size_t begin = start_;
                start_ = nl + 1;
                scanned_ = 0;
                if (line_end == begin) continue;  // blank lines carry nothing
                const std::string_view line(buf_.data() + begin, line_end - begin);
                if (line.size() > limit_) {
                    Frame f;
                    f.kind = Frame::Kind::too_large;
                    f.size = line.size();
                    f.id = id_from_head(Codec::json, line);
                    return f;
                }
                Frame f;
                f.data = line;
                return f;
            }
            // One byte of slack: a line of exactly `limit` bytes may have its '\r' here and
            // its '\n' in the next read.
            if (avail > limit_ + 1) {
                begin_skip(std::nullopt, 0);
                continue;
            }
            scanned_ = avail;
            return std::nullopt;
        }
        if (avail < kPrefix) return std::nullopt;
        const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + start_);
        const std::uint64_t n = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
                                (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
        if (n > limit_) {
            start_ += kPrefix;
            begin_skip(n, n);
            continue;
        }
        if (avail < kPrefix + n) return std::nullopt;
        Frame f;
        f.data = std::string_view(buf_.data() + start_ + kPrefix, static_cast<std::size_t>(n));
        start_ += kPrefix + static_cast<std::size_t>(n);
        return f;
    }
}

void FrameReader::begin_skip(std::optional<std::uint64_t> remaining, std::uint64_t size) {
    Skip s;
    s.remaining = remaining;
    s.size = remaining ? size : 0;
    s.head.reserve(kHeadBytes);
    skip_ = std::move(s);
    scanned_ = 0;
}

std::optional<Frame> FrameReader::continue_skip() {
    Skip& skip = *skip_;
    const std::string_view avail(buf_.data() + start_, end_ - start_);
    const auto keep_head = [&skip](std::string_view bytes) {
        const std::size_t room = kHeadBytes - skip.head.size();
        skip.head.append(bytes.substr(0, room));
    };
    const auto too_large = [this]() {
        Frame f;
        f.kind = Frame::Kind::too_large;
        f.size = skip_->size;
        f.id = id_from_head(codec_, skip_->head);
        skip_.reset();
        return f;
    };
    if (skip.remaining) {
        const std::uint64_t rem = *skip.remaining;
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(rem, avail.size()));
        keep_head(avail.substr(0, take));
        skip.remaining = rem - take;
        start_ += take;
        if (*skip.remaining > 0) return std::nullopt;
        return too_large();
    }
    const std::size_t nl = avail.find('\n');
    if (nl == std::string_view::npos) {
        keep_head(avail);
        skip.size += avail.size();
        if (!avail.empty()) skip.last_cr = avail.back() == '\r';
        start_ = end_;
        return std::nullopt;
    }
    const std::size_t body = (nl > 0 && avail[nl - 1] == '\r') ? nl - 1 : nl;
    skip.size += body;
    if (nl == 0 && skip.last_cr) skip.size -= 1;  // the '\r' that ended the previous read
    keep_head(avail.substr(0, body));
    start_ += nl + 1;
    return too_large();
}

}  // namespace polyglot
