package worker

// Replays every case of tests/vectors/sessions.json through the worker's real framing,
// decoding and dispatch (ServeIO), with the handlers the file's "handlers" text describes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"polyglot.invalid/go/protocol"
)

// vectorsWorker registers the methods of sessions.json's "handlers" text.
func vectorsWorker() *Worker {
	w := New("vectors", "1.0.0", WithMaxConcurrency(4))
	w.Method("echo", func(_ context.Context, call *Call) (any, error) {
		return call.Params, nil
	})
	w.Method("add", func(_ context.Context, call *Call) (any, error) {
		var args struct {
			A int64 `json:"a"`
			B int64 `json:"b"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		return args.A + args.B, nil
	})
	w.Method("fail", func(_ context.Context, call *Call) (any, error) {
		var args struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		return nil, &Error{Code: args.Code, Message: args.Message}
	})
	w.Method("boom", func(context.Context, *Call) (any, error) {
		panic("boom")
	})
	return w
}

func vectorsPath(t *testing.T, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate this test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "tests", "vectors", name)
}

// jsonForm reads a vector's JSON-form value (binary as {"$bytes": ...}) into the decoded
// form, independently of the codecs under test.
func jsonForm(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return i
			}
			if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
				return u
			}
			f, _ := strconv.ParseFloat(string(x), 64)
			return f
		case []any:
			for i := range x {
				x[i] = conv(x[i])
			}
		case map[string]any:
			if s, ok := x[protocol.BytesKey].(string); ok && len(x) == 1 {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			for k := range x {
				x[k] = conv(x[k])
			}
		}
		return v
	}
	return conv(v)
}

type sessionCase struct {
	Name   string            `json:"name"`
	Codec  string            `json:"codec"`
	Send   []json.RawMessage `json:"send"`
	Expect []json.RawMessage `json:"expect"`
}

func loadSessions(t *testing.T) (string, []sessionCase) {
	t.Helper()
	data, err := os.ReadFile(vectorsPath(t, "sessions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Handlers string        `json:"handlers"`
		Cases    []sessionCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("sessions.json holds no cases")
	}
	return f.Handlers, f.Cases
}

func TestSessionsHandlersTextIsWhatVectorsWorkerRegisters(t *testing.T) {
	// If the vectors' handlers change, this replay must change with them.
	text, _ := loadSessions(t)
	for _, name := range vectorsWorker().Methods() {
		if !strings.Contains(text, "  "+name+"(") {
			t.Errorf("the handlers text does not describe %s", name)
		}
	}
}

// runSession feeds messages (and then $shutdown, which drains the calls held before the
// input ends) to w through ServeIO, and returns the handshake and the messages written.
func runSession(t *testing.T, w *Worker, codec protocol.Codec, messages []any) (*protocol.Handshake, []map[string]any) {
	t.Helper()
	var in bytes.Buffer
	for _, m := range append(messages, map[string]any{"method": "$shutdown"}) {
		frame, _, err := codec.EncodeFrame(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(frame)
	}
	var out bytes.Buffer
	ended, err := w.ServeIO(context.Background(), &in, &out, ServeOptions{Codec: codec})
	if err != nil || ended != Shutdown {
		t.Fatalf("ServeIO ended %v, %v; want shutdown", ended, err)
	}
	br := bufio.NewReader(&out)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	h, err := protocol.ParseHandshake(line)
	if err != nil {
		t.Fatalf("handshake %q: %v", line, err)
	}
	var got []map[string]any
	fr := protocol.NewFrameReader(br, codec, protocol.DefaultMaxFrame)
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || f.TooLarge {
			t.Fatalf("reading the output: %v %+v", err, f)
		}
		v, err := codec.Decode(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.ParseMessage(v); err != nil {
			t.Fatalf("the worker wrote an invalid message: %v", err)
		}
		got = append(got, v.(map[string]any))
	}
	return h, got
}

func TestVectorsSessions(t *testing.T) {
	_, cases := loadSessions(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			codec, err := protocol.ParseCodec(c.Codec)
			if err != nil {
				t.Fatal(err)
			}
			var send []any
			var ids []string
			for _, raw := range c.Send {
				m := jsonForm(t, raw).(map[string]any)
				send = append(send, m)
				if id, ok := m["id"]; ok {
					ids = append(ids, fmtID(id))
				}
			}
			h, got := runSession(t, vectorsWorker(), codec, send)
			if h.Module != "vectors" || h.Codec != codec || h.Language != "go" {
				t.Fatalf("handshake %+v", h)
			}
			// Exactly one response per request with an id; none to notifications.
			responses := map[string]map[string]any{}
			var answered []string
			for _, m := range got {
				_, r := m["result"]
				_, e := m["error"]
				if r || e {
					answered = append(answered, fmtID(m["id"]))
					responses[fmtID(m["id"])] = m
				}
			}
			sort.Strings(answered)
			sort.Strings(ids)
			if !reflect.DeepEqual(answered, ids) {
				t.Fatalf("answered %v, want %v", answered, ids)
			}
			for _, raw := range c.Expect {
				want := jsonForm(t, raw).(map[string]any)
				resp := responses[fmtID(want["id"])]
				if resp == nil {
					t.Fatalf("no response to %v", want["id"])
				}
				if !reflect.DeepEqual(resp["id"], want["id"]) {
					t.Fatalf("id %#v, want %#v", resp["id"], want["id"])
				}
				if result, ok := want["result"]; ok {
					if _, isErr := resp["error"]; isErr {
						t.Fatalf("got %v, want result %v", resp, result)
					}
					if !reflect.DeepEqual(resp["result"], result) {
						t.Fatalf("result %#v, want %#v", resp["result"], result)
					}
				}
				if e, ok := want["error"].(map[string]any); ok {
					if _, isResult := resp["result"]; isResult {
						t.Fatalf("got %v, want error %v", resp, e)
					}
					got := resp["error"].(map[string]any)
					if got["code"] != e["code"] {
						t.Fatalf("error %v, want code %v", got, e["code"])
					}
					if msg, ok := e["message"]; ok && got["message"] != msg {
						t.Fatalf("error %v, want message %v", got, msg)
					}
				}
			}
		})
	}
}
