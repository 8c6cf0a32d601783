package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DecodeError is a frame that does not decode with its codec: not JSON, not MessagePack,
// a bad {"$bytes": ...}, an integer outside 64 bits.
type DecodeError struct {
	// Codec is the codec the frame was read with.
	Codec Codec
	// Problem says what is wrong, for people.
	Problem string
	// Err is the underlying error, when there is one.
	Err error
}

func (e *DecodeError) Error() string {
	what := "JSON"
	if e.Codec == Msgpack {
		what = "MessagePack"
	}
	return fmt.Sprintf("frame is not valid %s: %s", what, e.Problem)
}

// Unwrap gives the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// InvalidRequestError is a decoded request that is not a valid envelope. ID is the
// request's id when it could be read, so that the worker can answer INVALID_REQUEST.
type InvalidRequestError struct {
	// ID is the request's id; not valid when it could not be read.
	ID ID
	// Problem names the broken field.
	Problem string
}

func (e *InvalidRequestError) Error() string { return "invalid request: " + e.Problem }

// InvalidMessageError is a decoded worker message (response, progress, log) that is not
// valid: what a host refuses.
type InvalidMessageError struct {
	// Problem names the broken field.
	Problem string
}

func (e *InvalidMessageError) Error() string { return "invalid message: " + e.Problem }

// HandshakeError is a handshake line that is malformed, or that a host refuses for a
// module's manifest. Problem says which rule was broken.
type HandshakeError struct {
	// Problem says which rule was broken.
	Problem string
}

func (e *HandshakeError) Error() string { return "handshake refused: " + e.Problem }

// EncodeError is a value that cannot be sent: outside the protocol's data model
// (docs/protocol.md, section 7).
type EncodeError struct {
	// Path is where in the value the problem is, relative to it: "" for the value
	// itself, ".a[3]" for element 3 of its key "a".
	Path string
	// Problem says what cannot be sent.
	Problem string
	// Err is the underlying error (from a json.Marshaler, say), when there is one.
	Err error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("cannot encode $%s: %s", e.Path, e.Problem)
}

// Unwrap gives the underlying error.
func (e *EncodeError) Unwrap() error { return e.Err }

// FrameTooLargeError is a message whose frame would exceed the frame size limit.
type FrameTooLargeError struct {
	// Size is the frame's size in bytes (without "\n" or length prefix).
	Size int
	// Limit is the frame size limit in bytes.
	Limit int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("the message is %d bytes, over the frame limit of %d bytes", e.Size, e.Limit)
}

// TruncatedError is returned by [FrameReader.Next] when the stream ended inside a frame.
type TruncatedError struct {
	// Buffered is how many bytes of the unfinished frame had arrived.
	Buffered int64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("the stream ended inside a frame (%d bytes of an unfinished frame)", e.Buffered)
}

// BindError is a decoded value that does not fit the Go value [Bind] stores it into.
type BindError struct {
	// Path is where in the value the problem is, relative to it: "" for the value
	// itself, ".pattern" for a struct field (by its wire name), "[2]" for an element.
	Path string
	// Problem says what does not fit.
	Problem string
}

func (e *BindError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return strings.TrimPrefix(e.Path, ".") + ": " + e.Problem
}

// withEncodePath prefixes an EncodeError's path with seg while the walk unwinds.
func withEncodePath(err error, seg string) error {
	if e, ok := err.(*EncodeError); ok {
		e.Path = seg + e.Path
	}
	return err
}

// withBindPath prefixes a BindError's path with seg while the walk unwinds.
func withBindPath(err error, seg string) error {
	if e, ok := err.(*BindError); ok {
		e.Path = seg + e.Path
	}
	return err
}

// TypeName is the protocol's name for the type of a decoded value, for error messages:
// null, boolean, integer, float, string, binary, array, object.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64, uint64, int, int32, uint32, int16, uint16, int8, uint8, uint:
		return "integer"
	case float64, float32:
		return "float"
	case string:
		return "string"
	case []byte:
		return "binary"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
