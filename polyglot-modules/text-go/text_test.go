package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"polyglot.invalid/go/protocol"
	"polyglot.invalid/go/worker"
)

// call runs a method in-process, as the host would see it.
func call(t *testing.T, method string, params any) any {
	t.Helper()
	out, err := newWorker().Call(context.Background(), method, params)
	if err != nil {
		t.Fatalf("%s(%v): %v", method, params, err)
	}
	return out
}

// callErr runs a method that must fail, and gives its error.
func callErr(t *testing.T, method string, params any) *worker.Error {
	t.Helper()
	_, err := newWorker().Call(context.Background(), method, params)
	var e *worker.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s(%v): got %v, want an error response", method, params, err)
	}
	return e
}

func ints(xs ...int64) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func TestWordCountCountsRunsOfLettersAndDigits(t *testing.T) {
	docs := []any{
		"a b", "c", "", "   ", "héllo, wörld!", "don't stop", "x2y 42", "日本語 テキスト",
		"① ² ½", "٣٤ ٥", "cafe\u0301s noir", "tab\tand\nnewline", "snake_case-kebab",
	}
	got := call(t, "wordCount", []any{docs})
	// A combining mark is not a letter: "cafe\u0301s" is two words, "cafe" and "s".
	want := ints(2, 1, 0, 0, 2, 3, 2, 2, 0, 2, 3, 3, 3)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Named params work the same.
	if got := call(t, "wordCount", map[string]any{"documents": []any{"one two three"}}); !reflect.DeepEqual(got, ints(3)) {
		t.Fatalf("got %v", got)
	}
}

func TestGrepFindsEveryMatchWithCharacterOffsets(t *testing.T) {
	m := func(text string, start, end int64) any {
		return map[string]any{"text": text, "start": start, "end": end}
	}
	got := call(t, "grep", []any{[]any{"héllo wörld", "banana", "none"}, "w.r|an+"})
	want := []any{[]any{m("wör", 6, 9)}, []any{m("an", 1, 3), m("an", 3, 5)}, []any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	// Empty matches count, except one right after a match (Go's FindAll rules).
	got = call(t, "grep", []any{[]any{"ab", "xxb"}, "x*"})
	want = []any{[]any{m("", 0, 0), m("", 1, 1), m("", 2, 2)}, []any{m("xx", 0, 2), m("", 3, 3)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	got = call(t, "grep", map[string]any{"documents": []any{"Ünïcödé ünïcödé", ""}, "pattern": `(?i)ünï\w*`})
	want = []any{[]any{m("Ünïc", 0, 4), m("ünïc", 8, 12)}, []any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestGrepRefusesABadPatternNamingTheProblem(t *testing.T) {
	e := callErr(t, "grep", []any{[]any{"x"}, "(unclosed"})
	if e.Code != worker.CodeInvalidParams || !strings.Contains(e.Message, `"(unclosed"`) || !strings.Contains(e.Message, "missing closing )") {
		t.Fatalf("got %+v", e)
	}
	if !reflect.DeepEqual(e.Data, map[string]any{"pattern": "(unclosed"}) {
		t.Fatalf("data %v", e.Data)
	}
	// Backreferences are not RE2: refused, not run with backtracking.
	if e := callErr(t, "grep", []any{[]any{"x"}, `(a)\1`}); e.Code != worker.CodeInvalidParams {
		t.Fatalf("got %+v", e)
	}
}

func TestGrepRunsInLinearTimeOnPatternsThatBacktrackElsewhere(t *testing.T) {
	doc := strings.Repeat("a", 100_000) + "!"
	started := time.Now()
	got := call(t, "grep", []any{[]any{doc}, `(a+)+$`})
	if !reflect.DeepEqual(got, []any{[]any{}}) {
		t.Fatalf("got %v", got)
	}
	if d := time.Since(started); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSha256DigestsStringsAndBinary(t *testing.T) {
	got := call(t, "sha256", []any{[]any{"", "abc", []byte("abc"), "é"}})
	want := []any{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c", // UTF-8 bytes c3 a9
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	e := callErr(t, "sha256", []any{[]any{"ok", int64(5)}})
	if e.Code != worker.CodeInvalidParams || e.Message != "sha256: params.items[1]: expected a string or binary, got an integer" {
		t.Fatalf("got %+v", e)
	}
}

func TestParamsThatDoNotFitAreInvalidParams(t *testing.T) {
	cases := []struct {
		method string
		params any
		says   string
	}{
		{"wordCount", []any{[]any{int64(1)}}, "wordCount: params.documents[0]: expected a string, got integer 1"},
		{"wordCount", nil, "wordCount: params.documents: missing (required)"},
		{"grep", []any{[]any{"x"}}, "grep: params.pattern: missing (required)"},
		{"grep", map[string]any{"docs": []any{}}, "grep: params.docs: unknown field (known: documents, pattern)"},
		{"sha256", []any{"not a list"}, "sha256: params.items: expected an array, got a string"},
	}
	for _, c := range cases {
		e := callErr(t, c.method, c.params)
		if e.Code != worker.CodeInvalidParams || e.Message != c.says {
			t.Errorf("%s(%v): got %+v, want %q", c.method, c.params, e, c.says)
		}
	}
}

func TestConcurrentResultsMatchSequentialOnes(t *testing.T) {
	docs := make([]string, 2000)
	for i := range docs {
		docs[i] = strings.Repeat(fmt.Sprintf("word%d ", i), i%17) + "end"
	}
	counts, err := wordCount(context.Background(), docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		if counts[i] != countWords(d) || counts[i] != i%17+1 {
			t.Fatalf("document %d: %d words, want %d", i, counts[i], i%17+1)
		}
	}
}

func TestCancelledCallsStopEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := parallel(ctx, 1000, func(int) { calls++ })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("got %v after %d calls", err, calls)
	}
	if _, err := wordCount(ctx, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestServedOverMsgpackAsTheManifestSays serves the module in-process over the
// protocol, with the manifest's codec, and checks its handshake against the manifest's
// rules.
func TestServedOverMsgpackAsTheManifestSays(t *testing.T) {
	data, err := os.ReadFile("module.json")
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Name         string   `json:"name"`
		Version      string   `json:"version"`
		Codec        string   `json:"codec"`
		Capabilities []string `json:"capabilities"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		t.Fatal(err)
	}
	codec, err := protocol.ParseCodec(manifest.Codec)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := newWorker().ServeIO(context.Background(), inR, outW, worker.ServeOptions{Codec: codec})
		outW.Close()
		done <- err
	}()
	br := bufio.NewReader(outR)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	h, err := protocol.ParseHandshake(line)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(manifest.Name, codec, manifest.Capabilities); err != nil {
		t.Fatal(err)
	}
	if h.Version != manifest.Version || !reflect.DeepEqual(h.Methods, manifest.Capabilities) {
		t.Fatalf("handshake %+v, manifest %+v", h, manifest)
	}
	req, _, _ := codec.EncodeFrame(nil, map[string]any{"id": 1, "method": "wordCount", "params": []any{[]any{"a b", "c"}}})
	if _, err := inW.Write(req); err != nil {
		t.Fatal(err)
	}
	fr := protocol.NewFrameReader(br, codec, protocol.DefaultMaxFrame)
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.DecodeMessage(codec, f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := msg.(*protocol.Response); !ok || r.Error != nil || !reflect.DeepEqual(r.Result, ints(2, 1)) {
		t.Fatalf("got %+v", msg)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
