package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// minRead is how much free space the reader offers each read at least: a Linux pipe's
// default capacity (64 KiB), so a burst of requests is drained in one syscall.
const minRead = 64 << 10

// keepBuffer is the largest buffer kept once it is empty again: after one large frame the
// reader gives its memory back instead of holding it for the rest of the session.
const keepBuffer = 4 << 20

// maxEmptyReads is how many reads in a row may return nothing and no error before the
// reader gives up with io.ErrNoProgress (as bufio does), instead of spinning.
const maxEmptyReads = 100

// Frame is what [FrameReader.Next] yields: a whole frame, or an oversize frame that was
// skipped.
type Frame struct {
	// Payload is the frame's bytes (for JSON, the line without "\n" or "\r\n"); nil when
	// TooLarge. It is only valid until the next call of Next.
	Payload []byte
	// TooLarge reports a frame over the limit that was skipped without being buffered.
	TooLarge bool
	// Size is the frame's size in bytes.
	Size int64
	// ID is, for a frame too large, its id when its first bytes hold one.
	ID ID
}

// skipState is an oversize frame being dropped.
type skipState struct {
	json      bool   // drop until the next newline (JSON), else remaining bytes
	remaining uint64 // MessagePack: bytes still to drop
	size      int64  // the frame's size: counted so far (JSON), declared (MessagePack)
	seen      int64  // bytes dropped so far
	head      []byte // the frame's first HeadBytes bytes, to read its id from
	lastCR    bool   // JSON: the last byte dropped was '\r' (not part of the frame if '\n' follows)
}

func (s *skipState) keep(b []byte) {
	if room := HeadBytes - len(s.head); room > 0 {
		s.head = append(s.head, b[:min(room, len(b))]...)
	}
}

// FrameReader splits a byte stream of one codec into frames. Next returns them one at a
// time; an oversize frame is never buffered whole: the reader keeps its first
// [HeadBytes] bytes (to read its id from), counts and drops the rest, and yields a Frame
// with TooLarge set. The frames after it are read normally.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r          io.Reader
	codec      Codec
	limit      int
	buf        []byte
	start, end int
	scanned    int // JSON: bytes after start known to hold no newline
	skip       *skipState
	err        error // the read error that ended the input (io.EOF for a clean end)
}

// NewFrameReader reads frames of codec from r, refusing frames over limit bytes (limit <
// 1 means [DefaultMaxFrame]).
func NewFrameReader(r io.Reader, codec Codec, limit int) *FrameReader {
	if limit < 1 {
		limit = DefaultMaxFrame
	}
	return &FrameReader{r: r, codec: codec, limit: limit}
}

// Next gives the next frame. At the end of the stream it returns io.EOF for a clean end
// (between frames), a [*TruncatedError] when the stream ended inside a frame, and the
// read error when reading failed; and the same again on every later call.
func (fr *FrameReader) Next() (Frame, error) {
	empty := 0
	for {
		if f, ok := fr.parse(); ok {
			return f, nil
		}
		if fr.err != nil {
			return Frame{}, fr.endError()
		}
		n := fr.fill()
		if n > 0 || fr.err != nil {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			fr.err = io.ErrNoProgress
		}
	}
}

func (fr *FrameReader) endError() error {
	if !errors.Is(fr.err, io.EOF) {
		return fr.err
	}
	pending := int64(fr.end - fr.start)
	if fr.skip != nil {
		return &TruncatedError{Buffered: fr.skip.seen + pending}
	}
	if pending > 0 {
		return &TruncatedError{Buffered: pending}
	}
	return io.EOF
}

// fill reads once into the free space after end, making room first.
func (fr *FrameReader) fill() int {
	if fr.start == fr.end {
		fr.start, fr.end, fr.scanned = 0, 0, 0
		if len(fr.buf) > keepBuffer {
			fr.buf = nil
		}
	}
	if len(fr.buf)-fr.end < minRead {
		if fr.start > 0 {
			copy(fr.buf, fr.buf[fr.start:fr.end])
			fr.end -= fr.start
			fr.start = 0
		}
		if len(fr.buf)-fr.end < minRead {
			grown := make([]byte, max(fr.end+minRead, 2*len(fr.buf)))
			copy(grown, fr.buf[:fr.end])
			fr.buf = grown
		}
	}
	n, err := fr.r.Read(fr.buf[fr.end:])
	fr.end += n
	if err != nil {
		fr.err = err
	}
	return n
}

// parse takes the next frame out of the buffer, if a whole one is there ("need more
// bytes" is the normal state, reported as false).
func (fr *FrameReader) parse() (Frame, bool) {
	for {
		if fr.skip != nil {
			return fr.continueSkip()
		}
		avail := fr.end - fr.start
		switch fr.codec {
		case Msgpack:
			if avail < msgpackPrefix {
				return Frame{}, false
			}
			n := binary.BigEndian.Uint32(fr.buf[fr.start:])
			if uint64(n) > uint64(fr.limit) {
				fr.start += msgpackPrefix
				fr.skip = &skipState{remaining: uint64(n), size: int64(n)}
				continue
			}
			if avail < msgpackPrefix+int(n) {
				return Frame{}, false
			}
			body := fr.start + msgpackPrefix
			fr.start = body + int(n)
			return Frame{Payload: fr.buf[body:fr.start:fr.start], Size: int64(n)}, true
		default:
			from := fr.start + fr.scanned
			i := bytes.IndexByte(fr.buf[from:fr.end], '\n')
			if i < 0 {
				// One byte of slack: a line of exactly the limit may have its '\r' here
				// and its '\n' in the next read.
				if avail > fr.limit+1 {
					fr.skip = &skipState{json: true}
					fr.scanned = 0
					continue
				}
				fr.scanned = avail
				return Frame{}, false
			}
			nl := from + i
			lineEnd := nl
			if lineEnd > fr.start && fr.buf[lineEnd-1] == '\r' {
				lineEnd--
			}
			s := fr.start
			fr.start = nl + 1
			fr.scanned = 0
			size := lineEnd - s
			if size == 0 {
				continue // blank lines carry nothing
			}
			if size > fr.limit {
				id, _ := IDFromHead(JSON, fr.buf[s:min(lineEnd, s+HeadBytes)])
				return Frame{TooLarge: true, Size: int64(size), ID: id}, true
			}
			return Frame{Payload: fr.buf[s:lineEnd:lineEnd], Size: int64(size)}, true
		}
	}
}

// continueSkip drops what is buffered of an oversize frame; at its end it yields it.
func (fr *FrameReader) continueSkip() (Frame, bool) {
	s := fr.skip
	avail := fr.buf[fr.start:fr.end]
	if s.json {
		i := bytes.IndexByte(avail, '\n')
		if i < 0 {
			s.keep(avail)
			s.size += int64(len(avail))
			s.seen += int64(len(avail))
			if len(avail) > 0 {
				s.lastCR = avail[len(avail)-1] == '\r'
			}
			fr.start = fr.end
			return Frame{}, false
		}
		body := i
		if i > 0 && avail[i-1] == '\r' {
			body = i - 1
		}
		s.keep(avail[:body])
		s.size += int64(body)
		if i == 0 && s.lastCR {
			s.size-- // the '\r' that ended the previous read
		}
		fr.start += i + 1
		fr.skip = nil
		id, _ := IDFromHead(JSON, s.head)
		return Frame{TooLarge: true, Size: s.size, ID: id}, true
	}
	take := min(s.remaining, uint64(len(avail)))
	s.keep(avail[:take])
	s.remaining -= take
	s.seen += int64(take)
	fr.start += int(take)
	if s.remaining > 0 {
		return Frame{}, false
	}
	fr.skip = nil
	id, _ := IDFromHead(Msgpack, s.head)
	return Frame{TooLarge: true, Size: s.size, ID: id}, true
}

// IDFromHead reads the id from the first bytes of a frame's payload, if the frame starts
// with it, as every writer of this protocol puts it: {"id": <integer or string>, ... in
// JSON, a map whose first key is "id" in MessagePack. It is how a frame that is too large,
// or does not decode, can still be answered.
func IDFromHead(c Codec, head []byte) (ID, bool) {
	if len(head) > HeadBytes {
		head = head[:HeadBytes]
	}
	if c == Msgpack {
		return msgpackIDFromHead(head)
	}
	return jsonIDFromHead(head)
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func jsonIDFromHead(head []byte) (ID, bool) {
	i := 0
	skipSpace := func() {
		for i < len(head) && isJSONSpace(head[i]) {
			i++
		}
	}
	expect := func(lit string) bool {
		if !bytes.HasPrefix(head[i:], []byte(lit)) {
			return false
		}
		i += len(lit)
		return true
	}
	skipSpace()
	if !expect("{") {
		return ID{}, false
	}
	skipSpace()
	if !expect(`"id"`) {
		return ID{}, false
	}
	skipSpace()
	if !expect(":") {
		return ID{}, false
	}
	skipSpace()
	start := i
	if i < len(head) && head[i] == '"' {
		for i++; i < len(head); i++ {
			switch head[i] {
			case '\\':
				i++
			case '"':
				var s string
				if err := json.Unmarshal(head[start:i+1], &s); err != nil {
					return ID{}, false
				}
				return StringID(s), true
			}
		}
		return ID{}, false
	}
	for i < len(head) && (head[i] == '-' || (head[i] >= '0' && head[i] <= '9')) {
		i++
	}
	// The number must end inside the head, or it may have been cut.
	if i >= len(head) || i == start {
		return ID{}, false
	}
	if next := head[i]; next != ',' && next != '}' && !isJSONSpace(next) {
		return ID{}, false
	}
	text := string(head[start:i])
	digits := text
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || bytes.IndexByte([]byte(digits), '-') >= 0 {
		return ID{}, false // not a JSON integer
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return IntID(n), true
	}
	if n, err := strconv.ParseUint(text, 10, 64); err == nil {
		return UintID(n), true
	}
	return ID{}, false
}

func msgpackIDFromHead(head []byte) (ID, bool) {
	d := &msgpackDecoder{b: head}
	if len(head) == 0 {
		return ID{}, false
	}
	c := head[0]
	d.i = 1
	switch {
	case c >= 0x81 && c <= 0x8f:
	case c == 0xde || c == 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil || n == 0 {
			return ID{}, false
		}
	default:
		return ID{}, false
	}
	key, err := d.value()
	if err != nil || key != "id" {
		return ID{}, false
	}
	if d.i >= len(head) {
		return ID{}, false
	}
	// Only an integer or a string: anything else is not an id (and need not fit).
	if t := head[d.i]; !(t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3) || (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb)) {
		return ID{}, false
	}
	v, err := d.value()
	if err != nil {
		return ID{}, false
	}
	return IDFromValue(v)
}
