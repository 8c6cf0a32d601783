package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func frames(t *testing.T, codec Codec, limit int, stream []byte, chunk int) []string {
	t.Helper()
	fr := NewFrameReader(&chunkReader{data: stream, n: chunk}, codec, limit)
	var out []string
	for {
		f, err := fr.Next()
		var te *TruncatedError
		switch {
		case errors.Is(err, io.EOF):
			return out
		case errors.As(err, &te):
			return append(out, "truncated")
		case err != nil:
			t.Fatal(err)
		case f.TooLarge:
			out = append(out, fmt.Sprintf("too large %d %v", f.Size, f.ID))
		default:
			out = append(out, string(f.Payload))
		}
	}
}

func TestJSONLinesArriveWholeWhateverTheReadSizes(t *testing.T) {
	stream := []byte("{\"id\":1}\n\n{\"id\":2}\r\n")
	for chunk := 1; chunk <= len(stream); chunk++ {
		if got := frames(t, JSON, 64, stream, chunk); strings.Join(got, "|") != `{"id":1}|{"id":2}` {
			t.Fatalf("reads of %d: %v", chunk, got)
		}
	}
}

// Regression (found in the Rust reader, kept for every SDK): a line of exactly the limit
// whose '\r' and '\n' arrive in different reads was reported as too large.
func TestALineOfExactlyTheLimitPassesWithCRLFSplitAcrossReads(t *testing.T) {
	line := `{"id":1,"x":"` + strings.Repeat("a", 20) + `"}`
	stream := []byte(line + "\r\n{\"id\":2}\n")
	for chunk := 1; chunk < len(stream); chunk++ {
		if got := frames(t, JSON, len(line), stream, chunk); strings.Join(got, "|") != line+`|{"id":2}` {
			t.Fatalf("reads of %d: %v", chunk, got)
		}
		// One byte more is too large, and its size excludes the '\r', at any read size.
		got := frames(t, JSON, len(line)-1, stream, chunk)
		if got[0] != fmt.Sprintf("too large %d 1", len(line)) {
			t.Fatalf("reads of %d: %v", chunk, got)
		}
	}
}

func TestOversizeFramesAreSkippedAtAnyReadSize(t *testing.T) {
	big := `{"id":"k","x":"` + strings.Repeat("a", 2000) + `"}`
	for _, chunk := range []int{1, 7, 100, 5000} {
		got := frames(t, JSON, 100, []byte(big+"\n{\"id\":3}\n"), chunk)
		if strings.Join(got, "|") != fmt.Sprintf(`too large %d "k"|{"id":3}`, len(big)) {
			t.Fatalf("reads of %d: %v", chunk, got)
		}
	}
	payload, _ := Msgpack.Encode(map[string]any{"x": strings.Repeat("b", 3000)})
	stream := Msgpack.Frame(nil, payload)
	stream = Msgpack.Frame(stream, []byte{0x80})
	for _, chunk := range []int{1, 3, 1000, 10000} {
		got := frames(t, Msgpack, 100, stream, chunk)
		if len(got) != 2 || got[0] != fmt.Sprintf("too large %d <none>", len(payload)) || got[1] != "\x80" {
			t.Fatalf("reads of %d: %q", chunk, got)
		}
	}
}

func TestBufferDoesNotGrowWithAnOversizeFrame(t *testing.T) {
	for _, codec := range []Codec{JSON, Msgpack} {
		var stream io.Reader = &repeatReader{b: 'x', n: 200 << 20}
		if codec == Msgpack {
			stream = io.MultiReader(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), stream)
		}
		fr := NewFrameReader(stream, codec, 1000)
		_, err := fr.Next()
		var te *TruncatedError
		if !errors.As(err, &te) || te.Buffered < 200<<20 {
			t.Fatalf("%v: got %v", codec, err)
		}
		if len(fr.buf) > 1<<20 {
			t.Fatalf("%v: the buffer grew to %d bytes", codec, len(fr.buf))
		}
	}
}

// repeatReader gives n bytes b, in reads as large as asked.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = r.b
	}
	r.n -= k
	return k, nil
}

func TestReadErrorsAndStalledReadersEndTheStream(t *testing.T) {
	boom := errors.New("boom")
	fr := NewFrameReader(io.MultiReader(strings.NewReader("{\"id\":1}\n"), errReader{boom}), JSON, 100)
	if f, err := fr.Next(); err != nil || string(f.Payload) != `{"id":1}` {
		t.Fatalf("got %q %v", f.Payload, err)
	}
	for i := 0; i < 2; i++ { // and again on every later call
		if _, err := fr.Next(); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	}
	fr = NewFrameReader(errReader{nil}, JSON, 100)
	if _, err := fr.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("got %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestLargeFramesUnderTheLimitArriveWhole(t *testing.T) {
	value := strings.Repeat("z", 300_000)
	for _, codec := range []Codec{JSON, Msgpack} {
		frame, _, err := codec.EncodeFrame(nil, value)
		if err != nil {
			t.Fatal(err)
		}
		fr := NewFrameReader(&chunkReader{data: bytes.Repeat(frame, 3), n: 70_000}, codec, DefaultMaxFrame)
		for i := 0; i < 3; i++ {
			f, err := fr.Next()
			if err != nil {
				t.Fatal(err)
			}
			v, err := codec.Decode(f.Payload)
			if err != nil || v != value {
				t.Fatalf("%v frame %d: %v", codec, i, err)
			}
		}
		if _, err := fr.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("got %v", err)
		}
	}
}
