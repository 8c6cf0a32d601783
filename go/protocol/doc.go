// Package protocol is the polyglot wire contract in Go: values, call ids, requests,
// responses, progress and log messages, the handshake, error codes and framing, for both
// codecs (newline-delimited JSON and length-prefixed MessagePack).
//
// The rules live in docs/protocol.md of the polyglot repository; this package's tests
// replay every case of tests/vectors/ so that Go cannot drift from the other SDKs. It
// holds no state and starts no goroutines: the worker SDK (package worker) builds on it,
// and so can a Go program that plays the host (tests, tools).
//
// # Values
//
// Decoding a frame ([Codec.Decode]) gives these Go types, and only these:
//
//	nil, bool, int64, uint64 (only above math.MaxInt64), float64, string,
//	[]byte (binary), []any (array), map[string]any (object)
//
// The same value decodes to the same Go value from either codec: binary is []byte both
// from MessagePack bin and from JSON's {"$bytes": "<base64>"}, and an integer is int64
// (uint64 above math.MaxInt64) whether it came as JSON text without fraction or exponent
// or in any MessagePack integer form. Integers are never read through a float64, so ids
// and 64-bit values keep every digit.
//
// Encoding ([Codec.Encode]) takes those types and, like encoding/json, any other Go value:
// integers and floats of every size, named types, pointers, structs (with `json` tags:
// names, "-", omitempty, omitzero), slices and arrays, maps with string, integer or
// encoding.TextMarshaler keys, json.Number, json.Marshaler and encoding.TextMarshaler.
// A nil slice, map or pointer encodes as null; []byte encodes as binary. NaN, the
// infinities, channels, functions and complex numbers cannot be sent ([EncodeError]).
// Object keys are written sorted, so encodings are deterministic.
//
// [Bind] goes the other way: it stores a decoded value into typed Go values (structs,
// slices, maps, numbers), checking types and naming the path of anything that does not
// fit.
//
// # Layout
//
//   - codec.go: [Codec] (json or msgpack), Encode/Decode/EncodeFrame, the limits.
//   - value.go: the encoder's walk over any Go value; [Normalize].
//   - json.go, msgpack.go: the two codecs' writers and decoders.
//   - bind.go: [Bind], decoded values into typed Go values.
//   - id.go: [ID], a call id (integer or string), echoed verbatim.
//   - envelope.go: [Request], [Response], [Progress], [Log]: build, encode, validate.
//   - handshake.go: [Handshake]: the worker's first line, and the host's checks.
//   - frame.go: [FrameReader], a byte stream into frames, oversize frames skipped.
//   - code.go: the protocol's error codes and environment variables.
//   - errors.go: the error types, each naming what was wrong.
package protocol
