package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BytesKey is the single key of the JSON form of binary data: {"$bytes": "<base64>"}.
const BytesKey = "$bytes"

// jsonWriter writes compact JSON: no spaces, object keys as the walker orders them,
// strings as UTF-8 (only '"', '\\' and control characters escaped), binary as
// {"$bytes": standard padded base64}.
type jsonWriter struct {
	buf []byte
}

func (w *jsonWriter) null()             { w.buf = append(w.buf, "null"...) }
func (w *jsonWriter) integer(i int64)   { w.buf = strconv.AppendInt(w.buf, i, 10) }
func (w *jsonWriter) unsigned(u uint64) { w.buf = strconv.AppendUint(w.buf, u, 10) }
func (w *jsonWriter) float(f float64)   { w.buf = appendJSONFloat(w.buf, f) }
func (w *jsonWriter) str(s string)      { w.buf = appendJSONString(w.buf, s) }
func (w *jsonWriter) beginArray(int)    { w.buf = append(w.buf, '[') }
func (w *jsonWriter) endArray()         { w.buf = append(w.buf, ']') }
func (w *jsonWriter) beginMap(int)      { w.buf = append(w.buf, '{') }
func (w *jsonWriter) endMap()           { w.buf = append(w.buf, '}') }

func (w *jsonWriter) boolean(b bool) {
	if b {
		w.buf = append(w.buf, "true"...)
	} else {
		w.buf = append(w.buf, "false"...)
	}
}

func (w *jsonWriter) bin(b []byte) {
	w.buf = append(w.buf, `{"$bytes":"`...)
	w.buf = base64.StdEncoding.AppendEncode(w.buf, b)
	w.buf = append(w.buf, `"}`...)
}

func (w *jsonWriter) arrayElem(i int) {
	if i > 0 {
		w.buf = append(w.buf, ',')
	}
}

func (w *jsonWriter) mapKey(i int, k string) {
	if i > 0 {
		w.buf = append(w.buf, ',')
	}
	w.buf = appendJSONString(w.buf, k)
	w.buf = append(w.buf, ':')
}

// appendJSONFloat writes a finite float so that it reads back as a float, never as an
// integer: 1.0 is "1.0", not "1". Plain notation between 1e-6 and 1e21, as encoding/json.
func appendJSONFloat(b []byte, f float64) []byte {
	start := len(b)
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json.
		n := len(b)
		if n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string. Bytes that are not UTF-8 become U+FFFD,
// as encoding/json does: the protocol's strings are UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeJSON decodes one JSON frame into the decoded form: numbers as int64, uint64 or
// float64 (exactly: integers are never read through a float), {"$bytes": ...} as []byte.
func decodeJSON(payload []byte) (any, error) {
	if !utf8.Valid(payload) {
		return nil, &DecodeError{Codec: JSON, Problem: "it is not UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &DecodeError{Codec: JSON, Problem: "the frame is empty", Err: err}
		}
		return nil, &DecodeError{Codec: JSON, Problem: err.Error(), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Codec: JSON, Problem: "more text after the JSON value"}
	}
	out, err := fromJSON(v)
	if err != nil {
		return nil, &DecodeError{Codec: JSON, Problem: err.Error(), Err: err}
	}
	return out, nil
}

// fromJSON turns encoding/json's generic values (with UseNumber) into the decoded form,
// in place.
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return parseNumber(string(x))
	case []any:
		for i, e := range x {
			d, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = d
		}
		return x, nil
	case map[string]any:
		if len(x) == 1 {
			if b, ok := x[BytesKey]; ok {
				return decodeBytesValue(b)
			}
		}
		for k, e := range x {
			d, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = d
		}
		return x, nil
	default:
		return v, nil
	}
}

// parseNumber reads a JSON number: an integer (int64, or uint64 above math.MaxInt64) when
// it has no fraction and no exponent, else a float64.
func parseNumber(text string) (any, error) {
	if strings.ContainsAny(text, ".eE") {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range of a 64-bit float", text)
		}
		return f, nil
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return i, nil
	}
	if !strings.HasPrefix(text, "-") {
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("integer %s is outside the 64-bit range (signed or unsigned)", text)
}

// decodeBytesValue reads the value of a {"$bytes": ...} object: standard base64 (RFC
// 4648) with padding, canonical (no stray bits before the padding), as the Rust and
// Python SDKs accept it.
func decodeBytesValue(v any) ([]byte, error) {
	text, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("invalid %s: expected a base64 string, got %s", BytesKey, TypeName(v))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("invalid %s: not valid base64 (%v)", BytesKey, err)
	}
	if base64.StdEncoding.EncodeToString(b) != text {
		return nil, fmt.Errorf("invalid %s: not canonical padded base64", BytesKey)
	}
	return b, nil
}
