package protocol

// Replays every case of tests/vectors/ (values, requests, messages, handshakes, frames)
// through this package's real decoders, encoders and frame reader. sessions.json is
// replayed by package worker, through the worker's dispatch.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// vectorsDir is tests/vectors at the root of the repository, found from this file.
func vectorsDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate this test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "tests", "vectors")
}

type vectorFile struct {
	Cases []map[string]json.RawMessage `json:"cases"`
}

func loadCases(t *testing.T, name string) []map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir(t), name))
	if err != nil {
		t.Fatalf("reading the vectors: %v", err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s holds no cases", name)
	}
	return f.Cases
}

// str reads a string field of a case.
func str(t *testing.T, c map[string]json.RawMessage, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(c[key], &s); err != nil {
		t.Fatalf("field %s: %v", key, err)
	}
	return s
}

func boolField(c map[string]json.RawMessage, key string, def bool) bool {
	raw, ok := c[key]
	if !ok {
		return def
	}
	var b bool
	_ = json.Unmarshal(raw, &b)
	return b
}

// fromJSONForm reads a vector's JSON-form value into the decoded form with encoding/json
// and a conversion of its own, independent of the decoder under test.
func fromJSONForm(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("vector value %s: %v", raw, err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			s := string(x)
			if strings.ContainsAny(s, ".eE") {
				f, _ := strconv.ParseFloat(s, 64)
				return f
			}
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
			u, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("vector number %s: %v", s, err)
			}
			return u
		case []any:
			for i := range x {
				x[i] = conv(x[i])
			}
			return x
		case map[string]any:
			if b, ok := x[BytesKey].(string); ok && len(x) == 1 {
				out, err := base64.StdEncoding.DecodeString(b)
				if err != nil {
					t.Fatalf("vector $bytes %q: %v", b, err)
				}
				return out
			}
			for k := range x {
				x[k] = conv(x[k])
			}
			return x
		}
		return v
	}
	return conv(v)
}

// payload is a case's frame as bytes: JSON text, or MessagePack hex.
func payload(t *testing.T, c map[string]json.RawMessage) (Codec, []byte) {
	t.Helper()
	codec, err := ParseCodec(str(t, c, "codec"))
	if err != nil {
		t.Fatal(err)
	}
	frame := str(t, c, "frame")
	if codec == JSON {
		return codec, []byte(frame)
	}
	b, err := hex.DecodeString(frame)
	if err != nil {
		t.Fatal(err)
	}
	return codec, b
}

func mustMention(t *testing.T, err error, c map[string]json.RawMessage) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted an invalid case")
	}
	want := str(t, c, "errorMentions")
	if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

func sameValue(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %#v, want %#v", what, got, want)
	}
}

func TestVectorsValues(t *testing.T) {
	for _, c := range loadCases(t, "values.json") {
		t.Run(str(t, c, "name"), func(t *testing.T) {
			text := []byte(str(t, c, "json"))
			if !boolField(c, "valid", true) {
				_, err := JSON.Decode(text)
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("decoded an invalid value (err %v)", err)
				}
				if !strings.Contains(strings.ToLower(err.Error()), "bytes") {
					t.Fatalf("error %q does not name $bytes", err)
				}
				return
			}
			want := fromJSONForm(t, c["value"])
			mp, err := hex.DecodeString(str(t, c, "msgpack"))
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := JSON.Decode(text)
			if err != nil {
				t.Fatalf("json: %v", err)
			}
			sameValue(t, "decoded from json", fromJSON, want)
			fromMsgpack, err := Msgpack.Decode(mp)
			if err != nil {
				t.Fatalf("msgpack: %v", err)
			}
			sameValue(t, "decoded from msgpack", fromMsgpack, want)
			// Encoding gives the vector's bytes (compact JSON, sorted keys; the smallest
			// MessagePack forms) and decodes back to the value.
			gotJSON, err := JSON.Encode(want)
			if err != nil || string(gotJSON) != string(text) {
				t.Fatalf("json encoding: got %s (%v), want %s", gotJSON, err, text)
			}
			gotMsgpack, err := Msgpack.Encode(want)
			if err != nil || !bytes.Equal(gotMsgpack, mp) {
				t.Fatalf("msgpack encoding: got %x (%v), want %x", gotMsgpack, err, mp)
			}
			for _, codec := range []Codec{JSON, Msgpack} {
				enc, _ := codec.Encode(want)
				back, err := codec.Decode(enc)
				if err != nil {
					t.Fatalf("%v round trip: %v", codec, err)
				}
				sameValue(t, codec.String()+" round trip", back, want)
			}
			norm, err := Normalize(want)
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, "normalized", norm, want)
		})
	}
}

func TestVectorsRequests(t *testing.T) {
	for _, c := range loadCases(t, "requests.json") {
		t.Run(str(t, c, "name"), func(t *testing.T) {
			codec, frame := payload(t, c)
			req, err := DecodeRequest(codec, frame)
			if !boolField(c, "valid", true) {
				mustMention(t, err, c)
				return
			}
			if err != nil {
				t.Fatalf("refused a valid request: %v", err)
			}
			var expect map[string]json.RawMessage
			if err := json.Unmarshal(c["expect"], &expect); err != nil {
				t.Fatal(err)
			}
			if raw, ok := expect["id"]; ok {
				id, ok := IDFromValue(fromJSONForm(t, raw))
				if !ok || req.ID != id {
					t.Fatalf("id: got %v, want %s", req.ID, raw)
				}
				sameValue(t, "id value", req.ID.Value(), fromJSONForm(t, raw))
			} else if req.ID.Valid() {
				t.Fatalf("a notification got id %v", req.ID)
			}
			if want := str(t, expect, "method"); req.Method != want {
				t.Fatalf("method: got %q, want %q", req.Method, want)
			}
			sameValue(t, "params", req.Params, fromJSONForm(t, expect["params"]))
			checkOptional(t, "timestamp", req.Timestamp, expect)
			checkOptional(t, "timeoutMs", req.TimeoutMs, expect)
			if want := boolField(expect, "notification", false); req.IsNotification() != want {
				t.Fatalf("notification: got %v, want %v", req.IsNotification(), want)
			}
		})
	}
}

func checkOptional(t *testing.T, key string, got *int64, expect map[string]json.RawMessage) {
	t.Helper()
	raw, ok := expect[key]
	if !ok {
		if got != nil {
			t.Fatalf("%s: got %d, want it absent", key, *got)
		}
		return
	}
	if got == nil {
		t.Fatalf("%s: absent, want %s", key, raw)
	}
	sameValue(t, key, *got, fromJSONForm(t, raw))
}

func TestVectorsMessages(t *testing.T) {
	for _, c := range loadCases(t, "messages.json") {
		t.Run(str(t, c, "name"), func(t *testing.T) {
			codec, frame := payload(t, c)
			msg, err := DecodeMessage(codec, frame)
			if !boolField(c, "valid", true) {
				var ie *InvalidMessageError
				if !errors.As(err, &ie) {
					t.Fatalf("want an InvalidMessageError, got %v", err)
				}
				mustMention(t, err, c)
				return
			}
			if err != nil {
				t.Fatalf("refused a valid message: %v", err)
			}
			var expect map[string]json.RawMessage
			if err := json.Unmarshal(c["expect"], &expect); err != nil {
				t.Fatal(err)
			}
			if want := str(t, expect, "kind"); msg.Kind() != want {
				t.Fatalf("kind: got %s, want %s", msg.Kind(), want)
			}
			switch m := msg.(type) {
			case *Response:
				sameValue(t, "id", m.ID.Value(), fromJSONForm(t, expect["id"]))
				checkOptional(t, "executionTime", m.ExecutionTime, expect)
				if raw, ok := expect["result"]; ok {
					if m.Error != nil {
						t.Fatalf("got error %+v, want a result", m.Error)
					}
					sameValue(t, "result", m.Result, fromJSONForm(t, raw))
				} else {
					want := fromJSONForm(t, expect["error"]).(map[string]any)
					if m.Error == nil {
						t.Fatalf("got result %v, want an error", m.Result)
					}
					got := map[string]any{"code": m.Error.Code, "message": m.Error.Message}
					if m.Error.Data != nil {
						got["data"] = m.Error.Data
					}
					sameValue(t, "error", got, want)
				}
			case *Progress:
				sameValue(t, "id", m.ID.Value(), fromJSONForm(t, expect["id"]))
				sameValue(t, "progress", m.Progress, fromJSONForm(t, expect["progress"]))
			case *Log:
				if m.Level != str(t, expect, "level") || m.Message != str(t, expect, "message") {
					t.Fatalf("log: got %s %q", m.Level, m.Message)
				}
				var fields any
				if raw, ok := expect["fields"]; ok {
					fields = fromJSONForm(t, raw)
				}
				if m.Fields == nil {
					sameValue(t, "fields", nil, fields)
				} else {
					sameValue(t, "fields", any(m.Fields), fields)
				}
			}
			// Encoding the message again gives a frame that decodes to the same message.
			again, err := codec.Encode(msg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeMessage(codec, again)
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := msg.(*Response); ok {
				m.Timestamp = back.(*Response).Timestamp // the vector's own may be absent
			}
			sameValue(t, "re-encoded", back, msg)
		})
	}
}

type manifest struct {
	Name         string   `json:"name"`
	Codec        string   `json:"codec"`
	Capabilities []string `json:"capabilities"`
}

func handshakeFields(h *Handshake) map[string]any {
	methods := make([]any, len(h.Methods))
	for i, m := range h.Methods {
		methods[i] = m
	}
	return map[string]any{
		"polyglot": h.Protocol, "module": h.Module, "version": h.Version,
		"codec": h.Codec.String(), "methods": methods, "maxConcurrency": h.MaxConcurrency,
	}
}

// handshakeFieldCases are the cases whose fields are wrong whatever the manifest: the
// parser refuses them on its own (the others break a manifest rule, which needs Check).
var handshakeFieldCases = map[string]bool{
	"wrong protocol version":   true,
	"missing protocol version": true,
	"zero concurrency":         true,
	"unknown codec":            true,
	"methods missing":          true,
}

func TestVectorsHandshakes(t *testing.T) {
	for _, c := range loadCases(t, "handshakes.json") {
		name := str(t, c, "name")
		t.Run(name, func(t *testing.T) {
			var m manifest
			if err := json.Unmarshal(c["manifest"], &m); err != nil {
				t.Fatal(err)
			}
			codec, err := ParseCodec(m.Codec)
			if err != nil {
				t.Fatal(err)
			}
			line := []byte(str(t, c, "line"))
			h, err := ParseHandshake(line)
			if handshakeFieldCases[name] {
				var he *HandshakeError
				if !errors.As(err, &he) {
					t.Fatalf("the parser alone must refuse this, got %v", err)
				}
			}
			if err == nil {
				err = h.Check(m.Name, codec, m.Capabilities)
			}
			if !boolField(c, "valid", true) {
				mustMention(t, err, c)
				return
			}
			if err != nil {
				t.Fatalf("refused a valid handshake: %v", err)
			}
			want := fromJSONForm(t, c["expect"])
			sameValue(t, "handshake", handshakeFields(h), want)
			// A handshake built from the expected fields writes a line that reads back
			// the same.
			built := &Handshake{
				Protocol: h.Protocol, Module: h.Module, Version: h.Version, Methods: h.Methods,
				Codec: h.Codec, MaxConcurrency: h.MaxConcurrency, Language: "go", PID: 4242,
			}
			out := built.Line()
			if !bytes.HasSuffix(out, []byte("\n")) || bytes.Count(out, []byte("\n")) != 1 {
				t.Fatalf("not one line: %q", out)
			}
			back, err := ParseHandshake(out)
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, "rebuilt", handshakeFields(back), want)
			if back.Language != "go" || back.PID != 4242 {
				t.Fatalf("language/pid lost: %+v", back)
			}
		})
	}
}

// chunkReader hands out its data n bytes per read.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// readAll reads a stream in chunks of n bytes and lists what the reader yields, in the
// vectors' form.
func readAll(t *testing.T, codec Codec, limit int, stream []byte, n int) []any {
	t.Helper()
	fr := NewFrameReader(&chunkReader{data: stream, n: n}, codec, limit)
	out := []any{}
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		var te *TruncatedError
		if errors.As(err, &te) {
			return append(out, map[string]any{"truncated": true})
		}
		if err != nil {
			t.Fatalf("read error: %v", err)
		}
		if f.TooLarge {
			out = append(out, map[string]any{"tooLarge": true, "size": f.Size, "id": f.ID.Value()})
		} else {
			out = append(out, map[string]any{"frame": hex.EncodeToString(f.Payload)})
		}
	}
}

func TestVectorsFrames(t *testing.T) {
	for _, c := range loadCases(t, "frames.json") {
		t.Run(str(t, c, "name"), func(t *testing.T) {
			codec, err := ParseCodec(str(t, c, "codec"))
			if err != nil {
				t.Fatal(err)
			}
			var limit int
			if err := json.Unmarshal(c["limit"], &limit); err != nil {
				t.Fatal(err)
			}
			stream, err := hex.DecodeString(str(t, c, "stream"))
			if err != nil {
				t.Fatal(err)
			}
			want := fromJSONForm(t, c["frames"])
			// Whatever the read sizes, the reader yields the same frames.
			for _, n := range []int{max(1, len(stream)), 1, 2, 3, 7, 64} {
				got := readAll(t, codec, limit, stream, n)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("reads of %d bytes: got %v, want %v", n, got, want)
				}
			}
		})
	}
}
