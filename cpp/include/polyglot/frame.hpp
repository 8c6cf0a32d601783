// polyglot/frame.hpp: FrameReader splits a byte stream into frames, without doing any I/O
// (docs/protocol.md, section 3).
//
// The caller reads into read_buf(), reports how much it read with filled(), then takes
// frames with next_frame() until it returns nothing ("need more bytes": a normal state, not
// an error). At the end of the stream, finish() tells a clean end from one inside a frame.
//
// An oversize frame is never buffered whole: the reader keeps its first kHeadBytes bytes
// (to read its `id`), counts and drops the rest, and yields a too_large frame; the frames
// after it are read normally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyglot/codec.hpp"
#include "polyglot/id.hpp"

namespace polyglot {

/// The default frame size limit: 64 MiB, large enough for real payloads (images, model
/// inputs), small enough that a runaway writer cannot exhaust the reader's memory.
inline constexpr std::size_t kDefaultMaxFrame = 64u * 1024u * 1024u;

/// How much of an oversize frame is kept to read its `id` from. Writers put `id` first, so
/// a few hundred bytes hold it even when it is a long string. Same value as the other SDKs.
inline constexpr std::size_t kHeadBytes = 512;

/// What FrameReader::next_frame() yields.
struct Frame {
    enum class Kind {
        data,       ///< a whole frame; `data` is its payload
        too_large,  ///< a frame over the limit that was skipped
    };
    Kind kind = Kind::data;
    /// The payload (JSON: the line without `\n` or `\r\n`). Valid until the reader is
    /// used again.
    std::string_view data;
    /// too_large: the frame's size in bytes.
    std::uint64_t size = 0;
    /// too_large: its `id`, when its first bytes hold one.
    std::optional<Id> id;
};

/// Splits a byte stream of one codec into frames. See the file comment.
class FrameReader {
public:
    /// A reader of `codec` frames with a size limit of `limit` bytes.
    FrameReader(Codec codec, std::size_t limit);

    /// Switches codec (after the handshake line, which is JSON in every codec).
    void set_codec(Codec codec);

    /// Free space to read into; report what was read with filled().
    struct Space {
        char* data;
        std::size_t size;
    };
    Space read_buf();

    /// Records that `n` bytes were read into read_buf().
    void filled(std::size_t n);

    /// Copies `bytes` in (for callers that already hold the bytes).
    void extend(std::string_view bytes);

    /// The next frame, or nothing when more bytes are needed.
    std::optional<Frame> next_frame();

    /// At the end of the stream: nothing for a clean end, else how many bytes of an
    /// unfinished frame had arrived.
    std::optional<std::uint64_t> finish() const;

private:
    struct Skip {
        std::optional<std::uint64_t> remaining;  // msgpack: bytes still to drop; json: to '\n'
        std::uint64_t size = 0;
        std::string head;
        bool last_cr = false;  // json: the last byte counted was a '\r'
    };

    std::optional<Frame> continue_skip();
    void begin_skip(std::optional<std::uint64_t> remaining, std::uint64_t size);

    Codec codec_;
    std::size_t limit_;
    std::vector<char> buf_;
    std::size_t start_ = 0;
    std::size_t end_ = 0;
    std::size_t scanned_ = 0;  // json: bytes after start_ known to hold no '\n'
    std::optional<Skip> skip_;
};

/// Reads the `id` from the first bytes of a frame, if the frame starts with it (as every
/// writer of this protocol does): `{"id": <integer or string>, ...` or a MessagePack map
/// whose first key is `id`.
std::optional<Id> id_from_head(Codec codec, std::string_view head);

/// Appends the framing of `codec` around `payload` to `out`: `payload\n`, or a 4-byte
/// big-endian length then `payload`.
/// @throws EncodeError when a MessagePack payload is over 4 GiB.
void append_frame(Codec codec, std::string_view payload, std::string& out);

}  // namespace polyglot
