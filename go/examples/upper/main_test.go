package main

// The README's example is this program, and it runs: the test compares the two, then
// starts this test binary as the worker (re-executed with POLYGLOT_EXAMPLE_RUN=1) and
// calls it over its pipes.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"polyglot.invalid/go/protocol"
)

func TestMain(m *testing.M) {
	if os.Getenv("POLYGLOT_EXAMPLE_RUN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestTheREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```go\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("no Go block in the README")
	}
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if block != string(program) {
		t.Fatalf("the README's example differs from examples/upper/main.go:\n%s", block)
	}
}

func TestTheExampleServesUpper(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "POLYGLOT_EXAMPLE_RUN=1", "POLYGLOT_PROTOCOL=1", "POLYGLOT_CODEC=msgpack")
	var in bytes.Buffer
	for _, req := range []map[string]any{
		{"id": 1, "method": "upper", "params": []any{"hello"}},
		{"id": 2, "method": "upper", "params": map[string]any{"text": "named"}},
		{"id": 3, "method": "upper", "params": []any{5}},
		{"method": "$shutdown"},
	} {
		frame, _, err := protocol.Msgpack.EncodeFrame(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(frame)
	}
	cmd.Stdin = &in
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(&out)
	line, _ := br.ReadBytes('\n')
	if h, err := protocol.ParseHandshake(line); err != nil || h.Module != "upper-go" || !reflect.DeepEqual(h.Methods, []string{"upper"}) {
		t.Fatalf("handshake %q: %v", line, err)
	}
	got := map[any]any{}
	fr := protocol.NewFrameReader(br, protocol.Msgpack, protocol.DefaultMaxFrame)
	for {
		f, err := fr.Next()
		if err != nil {
			break
		}
		m, err := protocol.DecodeMessage(protocol.Msgpack, f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		r := m.(*protocol.Response)
		if r.Error != nil {
			got[r.ID.Value()] = r.Error.Code + ": " + r.Error.Message
		} else {
			got[r.ID.Value()] = r.Result
		}
	}
	want := map[any]any{
		int64(1): "HELLO",
		int64(2): "NAMED",
		int64(3): "INVALID_PARAMS: upper: params.text: expected a string, got integer 5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}
