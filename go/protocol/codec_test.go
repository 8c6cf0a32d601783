package protocol

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Z int `json:"z"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
	Shadowed string `json:"name"`
}

type record struct {
	Embedded
	Name     string            `json:"name"`
	Count    uint8             `json:"count,omitempty"`
	Skip     string            `json:"-"`
	NoTag    bool              // named by its Go name
	Inner    *inner            `json:"inner,omitempty"`
	Tags     []string          `json:"tags"`
	Blob     []byte            `json:"blob,omitempty"`
	When     time.Time         `json:"when,omitzero"`
	Scores   map[string]int    `json:"scores,omitempty"`
	ByNumber map[int]string    `json:"byNumber,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Number   json.Number       `json:"number,omitempty"`
	Any      any               `json:"any"`
	Named    map[string]string `json:"named,omitempty"`
	private  int
}

func TestEncodingGoValuesLikeEncodingJSON(t *testing.T) {
	r := record{
		Embedded: Embedded{Promoted: "p", Shadowed: "hidden by Name"},
		Name:     "n",
		NoTag:    true,
		Tags:     nil,
		Blob:     []byte{1, 2},
		When:     time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		ByNumber: map[int]string{2: "b", 10: "a"},
		Raw:      json.RawMessage(`{"k":[1,2.5]}`),
		Number:   json.Number("12"),
		Any:      []float32{0.5},
		private:  7,
	}
	got, err := JSON.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"promoted":"p","name":"n","NoTag":true,"tags":null,"blob":{"$bytes":"AQI="},` +
		`"when":"2024-01-02T03:04:05Z","byNumber":{"10":"a","2":"b"},"raw":{"k":[1,2.5]},"number":12,"any":[0.5]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Both codecs carry the same value.
	mp, err := Msgpack.Encode(&r)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, _ := JSON.Decode(got)
	fromMsgpack, err := Msgpack.Decode(mp)
	if err != nil || !reflect.DeepEqual(fromJSON, fromMsgpack) {
		t.Fatalf("codecs disagree: %v / %v (%v)", fromJSON, fromMsgpack, err)
	}
	norm, err := Normalize(r)
	if err != nil || !reflect.DeepEqual(norm, fromJSON) {
		t.Fatalf("Normalize: %v (%v), want %v", norm, err, fromJSON)
	}
}

func TestEncodingRefusesWhatTheProtocolCannotCarry(t *testing.T) {
	type cyclic struct {
		Next *cyclic `json:"next"`
	}
	loop := &cyclic{}
	loop.Next = loop
	cases := []struct {
		value any
		path  string
		says  string
	}{
		{math.NaN(), "", "NaN"},
		{map[string]any{"a": []any{1, math.Inf(1)}}, ".a[1]", "+Inf"},
		{[]any{make(chan int)}, "[0]", "chan int"},
		{struct{ F func() }{func() {}}, ".F", "func()"},
		{map[float64]int{1.5: 1}, "", "float64"},
		{complex(1, 2), "", "complex128"},
		{loop, "", "levels deep"},
	}
	for _, c := range cases {
		for _, codec := range []Codec{JSON, Msgpack} {
			_, err := codec.Encode(c.value)
			var ee *EncodeError
			if !errors.As(err, &ee) || !strings.HasPrefix(ee.Path, c.path) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v %T: got %v, want path %q and %q", codec, c.value, err, c.path, c.says)
			}
		}
	}
}

func TestFloatsStayFloatsInJSON(t *testing.T) {
	for f, text := range map[float64]string{
		1: "1.0", -0.5: "-0.5", 1e21: "1e+21", 1e-7: "1e-7", 123456789: "123456789.0", 0: "0.0",
	} {
		got, err := JSON.Encode(f)
		if err != nil || string(got) != text {
			t.Errorf("%v: got %s, want %s", f, got, text)
		}
		back, err := JSON.Decode(got)
		if err != nil || back != f {
			t.Errorf("%s decodes to %#v", got, back)
		}
	}
}

func TestStringsAreUTF8OnTheWire(t *testing.T) {
	got, err := JSON.Encode("a\x00\x1f\t<>&\u2028\xff")
	if err != nil || string(got) != `"a\u0000\u001f\t<>&`+"\u2028"+`\ufffd"` {
		t.Fatalf("got %s", got)
	}
	mp, err := Msgpack.Encode("\xffé")
	if err != nil || hex.EncodeToString(mp) != "a5efbfbdc3a9" {
		t.Fatalf("got %x", mp)
	}
}

func TestJSONDecodingIsStrict(t *testing.T) {
	cases := map[string]string{
		"\xff":                         "UTF-8",
		"":                             "empty",
		`{"a":1} {"b":2}`:              "after the JSON value",
		"18446744073709551616":         "64-bit range",
		"-9223372036854775809":         "64-bit range",
		"1e999":                        "out of range",
		`{"$bytes":"aGk"}`:             "$bytes",
		`{"$bytes":"aGl="}`:            "$bytes", // stray bits before the padding
		"{\"$bytes\":\"aG\\nk=\"}":     "$bytes",
		`[1,{"x":{"$bytes":null}}]`:    "$bytes",
		`{"$bytes":"aGk=","$bytes":1}`: "$bytes",
	}
	for text, says := range cases {
		_, err := JSON.Decode([]byte(text))
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "JSON") {
			t.Errorf("%q: got %v, want a DecodeError saying %q", text, err, says)
		}
	}
	v, err := JSON.Decode([]byte(` {"n":-0,"f":-0.0,"big":18446744073709551615,"e":2E2} `))
	want := map[string]any{"n": int64(0), "f": math.Copysign(0, -1), "big": uint64(math.MaxUint64), "e": 200.0}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v, %v", v, err)
	}
}

func TestMsgpackDecodingIsStrict(t *testing.T) {
	cases := map[string]string{
		"":                 "empty",
		"c1":               "never used",
		"d40100":           "extension",
		"c70101ff":         "extension",
		"8101a178":         "map key is an integer",
		"0101":             "1 bytes after",
		"a2ff":             "ends inside",
		"a2fffe":           "UTF-8",
		"dd7fffffff":       "does not fit",
		"df7fffffff":       "does not fit",
		"c6ffffffff00":     "ends inside",
		"91":               "does not fit",
		"82a16101":         "does not fit",
		"9281a16192a1":     "does not fit",
		"81a161":           "ends where a value should start",
		"cb3ff00000000000": "ends inside",
	}
	for h, says := range cases {
		b, _ := hex.DecodeString(h)
		_, err := Msgpack.Decode(b)
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "MessagePack") {
			t.Errorf("%s: got %v, want a DecodeError saying %q", h, err, says)
		}
	}
	// Every integer form decodes to the same Go value as its JSON text.
	for h, want := range map[string]any{
		"d0ff": int64(-1), "d1ff00": int64(-256), "ccff": int64(255), "cd0100": int64(256),
		"ce00010000": int64(65536), "d2ffff0000": int64(-65536), "ca3fc00000": 1.5,
	} {
		b, _ := hex.DecodeString(h)
		got, err := Msgpack.Decode(b)
		if err != nil || got != want {
			t.Errorf("%s: got %#v (%v), want %#v", h, got, err, want)
		}
	}
}

func TestMsgpackUsesTheSmallestForms(t *testing.T) {
	cases := []struct {
		value any
		hex   string
	}{
		{int64(127), "7f"}, {int64(128), "cc80"}, {int64(-32), "e0"}, {int64(-33), "d0df"},
		{int64(-129), "d1ff7f"}, {int64(65536), "ce00010000"}, {int64(-32769), "d2ffff7fff"},
		{strings.Repeat("a", 31), "bf" + strings.Repeat("61", 31)},
		{strings.Repeat("a", 32), "d920" + strings.Repeat("61", 32)},
		{strings.Repeat("a", 256), "da0100" + strings.Repeat("61", 256)},
		{make([]any, 16), "dc0010" + strings.Repeat("c0", 16)},
		{make([]byte, 256), "c50100" + strings.Repeat("00", 256)},
		{float32(0.5), "cb3fe0000000000000"},
	}
	for _, c := range cases {
		got, err := Msgpack.Encode(c.value)
		if err != nil || hex.EncodeToString(got) != c.hex {
			t.Errorf("%T: got %x (%v), want %s", c.value, got, err, c.hex)
		}
	}
}

func TestEnvelopesPutIDFirst(t *testing.T) {
	ts, us := int64(1), int64(2)
	resp := &Response{ID: IntID(3), Result: nil, Timestamp: &ts, ExecutionTime: &us}
	got, _ := JSON.Encode(resp)
	if string(got) != `{"id":3,"result":null,"timestamp":1,"executionTime":2}` {
		t.Fatalf("got %s", got)
	}
	mp, _ := Msgpack.Encode(&Progress{ID: StringID("s"), Progress: 1})
	if id, ok := IDFromHead(Msgpack, mp); !ok || id != StringID("s") {
		t.Fatalf("msgpack id from head: %v %v", id, ok)
	}
	req := &Request{ID: UintID(math.MaxUint64), Method: "m", Params: []any{}}
	got, _ = JSON.Encode(req)
	if string(got) != `{"id":18446744073709551615,"method":"m","params":[]}` {
		t.Fatalf("got %s", got)
	}
}

func TestIDs(t *testing.T) {
	if IntID(5) != UintID(5) || IntID(-1) == UintID(math.MaxUint64) || StringID("5") == IntID(5) {
		t.Fatal("id equality")
	}
	if (ID{}).Valid() || !StringID("").Valid() {
		t.Fatal("Valid")
	}
	for id, want := range map[ID]string{IntID(-3): "-3", UintID(math.MaxUint64): "18446744073709551615", StringID("a\"b"): `"a\"b"`, {}: "<none>"} {
		if id.String() != want {
			t.Errorf("%#v: %s, want %s", id, id.String(), want)
		}
	}
	if _, ok := IDFromValue(1.0); ok {
		t.Fatal("a float is no id")
	}
	if _, ok := IDFromValue(true); ok {
		t.Fatal("a boolean is no id")
	}
}

func TestIDFromHead(t *testing.T) {
	cases := map[string]any{
		`{"id":7,"method"`:            int64(7),
		` { "id" : -12 }`:             int64(-12),
		`{"id":"a\"b\\","x":`:         "a\"b\\",
		`{"id":18446744073709551615,`: uint64(math.MaxUint64),
		`{"id":123`:                   nil, // may have been cut
		`{"id":012,`:                  nil,
		`{"id":1.5,`:                  nil,
		`{"id":-,`:                    nil,
		`{"id":18446744073709551616,`: nil,
		`{"method":"x","id":1}`:       nil, // not first
		`{"id":"unterminated`:         nil,
		`[1]`:                         nil,
	}
	for head, want := range cases {
		id, ok := IDFromHead(JSON, []byte(head))
		if ok != (want != nil) || id.Value() != want {
			t.Errorf("%s: got %v %v, want %v", head, id, ok, want)
		}
	}
	for h, want := range map[string]any{
		"81a26964cd0100":   int64(256),
		"81a26964d9026162": "ab",
		"de0001a26964ff":   int64(-1),
		"81a26964c0":       nil,
		"81a26964cb3ff8":   nil,
		"81a3696478":       nil,
		"80":               nil,
		"81a26964cd01":     nil, // cut
		"93":               nil,
	} {
		b, _ := hex.DecodeString(h)
		id, ok := IDFromHead(Msgpack, b)
		if ok != (want != nil) || id.Value() != want {
			t.Errorf("%s: got %v %v, want %v", h, id, ok, want)
		}
	}
}
