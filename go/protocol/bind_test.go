package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type grepArgs struct {
	Documents []string `json:"documents"`
	Pattern   string   `json:"pattern"`
	Limit     *int     `json:"limit,omitempty"`
}

func TestBindTakesNamedAndPositionalParams(t *testing.T) {
	var named, positional grepArgs
	if err := Bind(map[string]any{"documents": []any{"a", "b"}, "Pattern": "x"}, &named); err != nil {
		t.Fatal(err)
	}
	if err := Bind([]any{[]any{"a", "b"}, "x"}, &positional); err != nil {
		t.Fatal(err)
	}
	want := grepArgs{Documents: []string{"a", "b"}, Pattern: "x"}
	if !reflect.DeepEqual(named, want) || !reflect.DeepEqual(positional, want) {
		t.Fatalf("named %+v, positional %+v", named, positional)
	}
	var withLimit grepArgs
	if err := Bind([]any{[]any{}, "x", int64(3)}, &withLimit); err != nil || *withLimit.Limit != 3 {
		t.Fatalf("%v %+v", err, withLimit)
	}
	var one struct {
		Text string `json:"text"`
	}
	if err := Bind("solo", &one); err != nil || one.Text != "solo" {
		t.Fatalf("a scalar is one positional param: %v %+v", err, one)
	}
}

func TestBindNamesWhatDoesNotFit(t *testing.T) {
	cases := []struct {
		params any
		path   string
		says   string
	}{
		{map[string]any{"documents": []any{"a", int64(1)}, "pattern": "x"}, ".documents[1]", "expected a string, got integer 1"},
		{map[string]any{"documents": []any{}}, ".pattern", "missing"},
		{map[string]any{"documents": []any{}, "pattern": "x", "patern": "y"}, ".patern", "unknown field (known: documents, pattern, limit)"},
		{[]any{[]any{}, "x", int64(1), int64(2)}, "", "at most 3 values"},
		{[]any{"not a list", "x"}, ".documents", "expected an array, got a string"},
		{[]any{[]any{}, "x", 1.5}, ".limit", "expected an integer, got float 1.5"},
		{nil, ".documents", "missing"},
	}
	for _, c := range cases {
		var args grepArgs
		err := Bind(c.params, &args)
		var be *BindError
		if !errors.As(err, &be) || be.Path != c.path || !strings.Contains(be.Problem, c.says) {
			t.Errorf("%v: got %v (path %q), want path %q saying %q", c.params, err, pathOf(be), c.path, c.says)
		}
	}
}

func pathOf(be *BindError) string {
	if be == nil {
		return "<no BindError>"
	}
	return be.Path
}

func TestBindNumbers(t *testing.T) {
	var i8 int8
	if err := Bind(int64(127), &i8); err != nil || i8 != 127 {
		t.Fatal(err)
	}
	if err := Bind(int64(128), &i8); err == nil || !strings.Contains(err.Error(), "does not fit in int8") {
		t.Fatalf("got %v", err)
	}
	var u uint64
	if err := Bind(uint64(1<<63+1), &u); err != nil || u != 1<<63+1 {
		t.Fatal(err)
	}
	if err := Bind(int64(-1), &u); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("got %v", err)
	}
	var i int
	if err := Bind(uint64(1<<63+1), &i); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("got %v", err)
	}
	var f float32
	if err := Bind(int64(3), &f); err != nil || f != 3 {
		t.Fatal(err)
	}
	if err := Bind(true, &f); err == nil {
		t.Fatal("a boolean is no number")
	}
}

func TestBindKeepsDecodedValuesAsTheyAre(t *testing.T) {
	var args struct {
		Items []any          `json:"items"`
		Blob  []byte         `json:"blob"`
		Key   [2]byte        `json:"key"`
		Meta  map[string]int `json:"meta"`
		Ptr   *string        `json:"ptr"`
		When  time.Time      `json:"when"`
		Dur   textDuration   `json:"dur"`
	}
	params := map[string]any{
		"items": []any{"s", []byte{1}, int64(2)},
		"blob":  []byte{9},
		"key":   []byte{1, 2},
		"meta":  map[string]any{"a": int64(1)},
		"ptr":   nil,
		"when":  "2024-01-02T03:04:05Z",
		"dur":   "1.5s",
	}
	if err := Bind(params, &args); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args.Items, []any{"s", []byte{1}, int64(2)}) || args.Blob[0] != 9 || args.Key != [2]byte{1, 2} ||
		args.Meta["a"] != 1 || args.Ptr != nil || args.When.Year() != 2024 || time.Duration(args.Dur) != 1500*time.Millisecond {
		t.Fatalf("got %+v", args)
	}
	var b []byte
	if err := Bind("aGk=", &b); err == nil || !strings.Contains(err.Error(), "expected binary") {
		t.Fatalf("a string is not binary: %v", err)
	}
	if err := Bind(nil, (*int)(nil)); err == nil {
		t.Fatal("a nil pointer is no destination")
	}
}

// textDuration is a time.Duration read from its text ("1.5s").
type textDuration time.Duration

func (d *textDuration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = textDuration(v)
	return err
}
