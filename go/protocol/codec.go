package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Codec is the encoding of every frame after the handshake (docs/protocol.md, section 3).
// The zero value is JSON, the protocol's default.
type Codec uint8

const (
	// JSON is newline-delimited JSON: one object per line, binary as {"$bytes": base64}.
	JSON Codec = iota
	// Msgpack is length-prefixed MessagePack: a 4-byte big-endian length, then one map.
	Msgpack
)

// DefaultMaxFrame is the default frame size limit, 64 MiB: large enough for real payloads
// (images, model inputs), small enough that a runaway writer cannot exhaust the reader's
// memory. A module sets its own with maxFrameBytes (POLYGLOT_MAX_FRAME).
const DefaultMaxFrame = 64 << 20

// HeadBytes is how much of an oversize frame a reader keeps to read its id from. Writers
// put id first, so a few hundred bytes hold it even when it is a long string. Same value
// as the Rust and Python SDKs.
const HeadBytes = 512

// maxDepth bounds how deeply values nest, when encoding (which also stops pointer cycles)
// and when decoding MessagePack: the same bound as encoding/json's decoder.
const maxDepth = 10000

// msgpackPrefix is the length of the MessagePack frame prefix.
const msgpackPrefix = 4

// String gives the codec's name on the wire and in manifests: json or msgpack.
func (c Codec) String() string {
	switch c {
	case JSON:
		return "json"
	case Msgpack:
		return "msgpack"
	default:
		return fmt.Sprintf("Codec(%d)", uint8(c))
	}
}

// ParseCodec reads a codec name: "json" or "msgpack".
func ParseCodec(name string) (Codec, error) {
	switch name {
	case "json":
		return JSON, nil
	case "msgpack":
		return Msgpack, nil
	default:
		return 0, fmt.Errorf("unknown codec %q: the protocol knows \"json\" and \"msgpack\"", name)
	}
}

// Encode gives the payload holding v (without framing). The error is an [*EncodeError]
// when v is outside the protocol's data model.
func (c Codec) Encode(v any) ([]byte, error) {
	frame, n, err := c.EncodeFrame(nil, v)
	if err != nil {
		return nil, err
	}
	if c == Msgpack {
		return frame[msgpackPrefix:], nil
	}
	return frame[:n], nil
}

// EncodeFrame appends to dst the whole frame holding v (a JSON line with its "\n", or
// a length-prefixed MessagePack map) and returns it with the payload's size, the size the
// frame limit applies to. On error dst is returned unchanged.
func (c Codec) EncodeFrame(dst []byte, v any) ([]byte, int, error) {
	at := len(dst)
	switch c {
	case JSON:
		w := &jsonWriter{buf: dst}
		if err := (&walker{w: w}).value(v); err != nil {
			return dst[:at], 0, err
		}
		n := len(w.buf) - at
		return append(w.buf, '\n'), n, nil
	case Msgpack:
		w := &msgpackWriter{buf: append(dst, 0, 0, 0, 0)}
		if err := (&walker{w: w}).value(v); err != nil {
			return dst[:at], 0, err
		}
		n := len(w.buf) - at - msgpackPrefix
		if uint64(n) > math.MaxUint32 {
			return dst[:at], 0, &EncodeError{Problem: fmt.Sprintf("a MessagePack frame holds at most 4 GiB, not %d bytes", n)}
		}
		binary.BigEndian.PutUint32(w.buf[at:], uint32(n))
		return w.buf, n, nil
	default:
		return dst, 0, fmt.Errorf("encode: unknown codec %v", c)
	}
}

// Frame appends to dst the framing of payload: payload and "\n" for JSON, a 4-byte
// big-endian length and payload for MessagePack.
func (c Codec) Frame(dst, payload []byte) []byte {
	if c == Msgpack {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
		return append(dst, payload...)
	}
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// Decode gives the value in one frame's payload, as the Go types listed in the package
// documentation. The error is a [*DecodeError].
func (c Codec) Decode(payload []byte) (any, error) {
	switch c {
	case JSON:
		return decodeJSON(payload)
	case Msgpack:
		return decodeMsgpack(payload)
	default:
		return nil, fmt.Errorf("decode: unknown codec %v", c)
	}
}
