package protocol

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// ProtocolVersion is the protocol version this package speaks (polyglot in the
// handshake).
const ProtocolVersion = 1

// Handshake is a worker's first message: always one line of JSON, whatever the codec
// (docs/protocol.md, section 2).
type Handshake struct {
	// Protocol is the protocol version the worker speaks ("polyglot" on the wire).
	Protocol int64
	// Module is the module the worker serves.
	Module string
	// Version is the worker's own version.
	Version string
	// Methods are the methods it serves (not the $ ones).
	Methods []string
	// Codec is the codec of every later frame.
	Codec Codec
	// MaxConcurrency is how many calls it takes at once (at least 1).
	MaxConcurrency int64
	// Language is for display; "" leaves it out.
	Language string
	// PID is the worker's process id; 0 leaves it out.
	PID int64
	// Transport is "grpc" when the worker serves gRPC (docs/protocol.md, section 10);
	// "" leaves it out.
	Transport string
	// Address is, with the grpc transport, where the worker listens: "unix:/path" or
	// "host:port"; "" leaves it out.
	Address string
}

// TransportGRPC is the Transport of a worker that serves gRPC.
const TransportGRPC = "grpc"

func (h *Handshake) wire() object {
	o := object{{"polyglot", h.Protocol}, {"module", h.Module}, {"version", h.Version}}
	if h.Language != "" {
		o = append(o, field{"language", h.Language})
	}
	methods := h.Methods
	if methods == nil {
		methods = []string{}
	}
	o = append(o, field{"codec", h.Codec.String()}, field{"methods", methods}, field{"maxConcurrency", h.MaxConcurrency})
	if h.PID != 0 {
		o = append(o, field{"pid", h.PID})
	}
	if h.Transport != "" {
		o = append(o, field{"transport", h.Transport})
	}
	if h.Address != "" {
		o = append(o, field{"address", h.Address})
	}
	return o
}

// Line gives the handshake as the worker writes it: one JSON line ended by "\n".
func (h *Handshake) Line() []byte {
	frame, _, err := JSON.EncodeFrame(nil, h)
	if err != nil {
		// Strings, integers and a list of strings always encode.
		panic("protocol: a handshake failed to encode: " + err.Error())
	}
	return frame
}

// IsHandshakeCandidate reports whether line is meant as a handshake: a JSON object with a
// polyglot field. Lines before the handshake that are not (a library's banner) are
// skipped by the host.
func IsHandshakeCandidate(line []byte) bool {
	v, err := JSON.Decode(bytes.TrimRight(line, "\r\n"))
	if err != nil {
		return false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m["polyglot"]
	return ok
}

// ParseHandshake parses and validates a handshake line (with or without its "\n"):
// required fields, types, defaults (codec json, maxConcurrency 1), and a protocol
// version this package speaks. Unknown fields are ignored. The error is a
// [*HandshakeError] naming the broken field.
func ParseHandshake(line []byte) (*Handshake, error) {
	bad := func(format string, args ...any) error {
		return &HandshakeError{Problem: fmt.Sprintf(format, args...)}
	}
	v, err := JSON.Decode(bytes.TrimRight(line, "\r\n"))
	if err != nil {
		return nil, bad("the handshake is not a JSON line: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad("the handshake must be a JSON object, got %s", article(TypeName(v)))
	}
	// get gives a field's value; null counts as absent.
	get := func(name string) (any, bool) {
		x, ok := m[name]
		return x, ok && x != nil
	}
	h := &Handshake{Codec: JSON, MaxConcurrency: 1}
	p, ok := get("polyglot")
	if !ok {
		return nil, bad("missing \"polyglot\" (the protocol version the worker speaks, an integer)")
	}
	if h.Protocol, ok = p.(int64); !ok {
		return nil, bad("\"polyglot\" must be the protocol version, an integer, got %s", describe(p))
	}
	if h.Protocol != ProtocolVersion {
		return nil, bad("the worker speaks protocol version %d; this side speaks protocol version %d", h.Protocol, ProtocolVersion)
	}
	str := func(name string) (string, error) {
		x, ok := get(name)
		if !ok {
			return "", bad("missing %q (a string)", name)
		}
		s, ok := x.(string)
		if !ok {
			return "", bad("%q must be a string, got %s", name, describe(x))
		}
		return s, nil
	}
	if h.Module, err = str("module"); err != nil {
		return nil, err
	}
	if h.Version, err = str("version"); err != nil {
		return nil, err
	}
	methods, ok := get("methods")
	if !ok {
		return nil, bad("missing \"methods\" (the methods the worker serves, an array of strings)")
	}
	list, ok := methods.([]any)
	if !ok {
		return nil, bad("\"methods\" must be an array of strings, got %s", article(TypeName(methods)))
	}
	h.Methods = make([]string, len(list))
	for i, x := range list {
		if h.Methods[i], ok = x.(string); !ok {
			return nil, bad("\"methods\" must be an array of strings; element %d is %s", i, article(TypeName(x)))
		}
	}
	if c, ok := get("codec"); ok {
		name, _ := c.(string)
		if h.Codec, err = ParseCodec(name); err != nil {
			return nil, bad("\"codec\" must be \"json\" or \"msgpack\", got %s", quoteValue(c))
		}
	}
	if c, ok := get("maxConcurrency"); ok {
		n, ok := c.(int64)
		if !ok || n < 1 {
			return nil, bad("\"maxConcurrency\" must be an integer >= 1, got %s", describe(c))
		}
		h.MaxConcurrency = n
	}
	if l, ok := get("language"); ok {
		if h.Language, ok = l.(string); !ok {
			return nil, bad("\"language\" must be a string, got %s", describe(l))
		}
	}
	if p, ok := get("pid"); ok {
		if h.PID, ok = p.(int64); !ok {
			return nil, bad("\"pid\" must be an integer, got %s", describe(p))
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"transport", &h.Transport}, {"address", &h.Address}} {
		if x, ok := get(f.name); ok {
			if *f.dst, ok = x.(string); !ok {
				return nil, bad("%q must be a string, got %s", f.name, describe(x))
			}
		}
	}
	if h.Transport == TransportGRPC && h.Address == "" {
		return nil, bad("\"transport\" is \"grpc\" but there is no \"address\" (where the worker listens)")
	}
	return h, nil
}

// Check applies the host's manifest rules to a parsed handshake: the module name, the
// codec, and every capability served. The error is a [*HandshakeError] saying which rule
// was broken.
func (h *Handshake) Check(module string, codec Codec, capabilities []string) error {
	if h.Module != module {
		return &HandshakeError{Problem: fmt.Sprintf("the worker serves module %q but the manifest names module %q", h.Module, module)}
	}
	if h.Codec != codec {
		return &HandshakeError{Problem: fmt.Sprintf("the worker speaks codec %s but the manifest's codec is %s", h.Codec, codec)}
	}
	var missing []string
	for _, c := range capabilities {
		if !slices.Contains(h.Methods, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return &HandshakeError{Problem: "the worker does not serve methods listed in the manifest's capabilities: " + strings.Join(missing, ", ")}
	}
	return nil
}
