package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// msgpackWriter writes MessagePack with the smallest form of every integer, string,
// binary, array and map header (docs/protocol.md, section 3), and floats as float 64.
type msgpackWriter struct {
	buf []byte
}

func (w *msgpackWriter) null() { w.buf = append(w.buf, 0xc0) }

func (w *msgpackWriter) boolean(b bool) {
	if b {
		w.buf = append(w.buf, 0xc3)
	} else {
		w.buf = append(w.buf, 0xc2)
	}
}

func (w *msgpackWriter) integer(i int64) {
	switch {
	case i >= 0:
		w.unsigned(uint64(i))
	case i >= -32:
		w.buf = append(w.buf, byte(i)) // negative fixint
	case i >= math.MinInt8:
		w.buf = append(w.buf, 0xd0, byte(i))
	case i >= math.MinInt16:
		w.buf = binary.BigEndian.AppendUint16(append(w.buf, 0xd1), uint16(i))
	case i >= math.MinInt32:
		w.buf = binary.BigEndian.AppendUint32(append(w.buf, 0xd2), uint32(i))
	default:
		w.buf = binary.BigEndian.AppendUint64(append(w.buf, 0xd3), uint64(i))
	}
}

func (w *msgpackWriter) unsigned(u uint64) {
	switch {
	case u < 0x80:
		w.buf = append(w.buf, byte(u)) // positive fixint
	case u <= math.MaxUint8:
		w.buf = append(w.buf, 0xcc, byte(u))
	case u <= math.MaxUint16:
		w.buf = binary.BigEndian.AppendUint16(append(w.buf, 0xcd), uint16(u))
	case u <= math.MaxUint32:
		w.buf = binary.BigEndian.AppendUint32(append(w.buf, 0xce), uint32(u))
	default:
		w.buf = binary.BigEndian.AppendUint64(append(w.buf, 0xcf), u)
	}
}

func (w *msgpackWriter) float(f float64) {
	w.buf = binary.BigEndian.AppendUint64(append(w.buf, 0xcb), math.Float64bits(f))
}

func (w *msgpackWriter) str(s string) {
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	w.header(len(s), 0xa0, 32, 0xd9, 0xda, 0xdb)
	w.buf = append(w.buf, s...)
}

func (w *msgpackWriter) bin(b []byte) {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		w.buf = append(w.buf, 0xc4, byte(n))
	case n <= math.MaxUint16:
		w.buf = binary.BigEndian.AppendUint16(append(w.buf, 0xc5), uint16(n))
	default:
		w.buf = binary.BigEndian.AppendUint32(append(w.buf, 0xc6), uint32(n))
	}
	w.buf = append(w.buf, b...)
}

func (w *msgpackWriter) beginArray(n int)       { w.header(n, 0x90, 16, 0, 0xdc, 0xdd) }
func (w *msgpackWriter) beginMap(n int)         { w.header(n, 0x80, 16, 0, 0xde, 0xdf) }
func (w *msgpackWriter) arrayElem(int)          {}
func (w *msgpackWriter) endArray()              {}
func (w *msgpackWriter) mapKey(_ int, k string) { w.str(k) }
func (w *msgpackWriter) endMap()                {}

// header writes a length header: the fix form below fixLimit, else the 8-bit form (when
// the type has one), the 16-bit form or the 32-bit form.
func (w *msgpackWriter) header(n int, fix byte, fixLimit int, c8, c16, c32 byte) {
	switch {
	case n < fixLimit:
		w.buf = append(w.buf, fix|byte(n))
	case c8 != 0 && n <= math.MaxUint8:
		w.buf = append(w.buf, c8, byte(n))
	case n <= math.MaxUint16:
		w.buf = binary.BigEndian.AppendUint16(append(w.buf, c16), uint16(n))
	default:
		w.buf = binary.BigEndian.AppendUint32(append(w.buf, c32), uint32(n))
	}
}

// toValidUTF8 replaces each byte that is not UTF-8 with U+FFFD, as the JSON writer does:
// the protocol's strings are UTF-8.
func toValidUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// msgpackDecoder decodes one MessagePack value into the decoded form.
type msgpackDecoder struct {
	b     []byte
	i     int
	depth int
}

func decodeMsgpack(payload []byte) (any, error) {
	if len(payload) == 0 {
		return nil, &DecodeError{Codec: Msgpack, Problem: "the frame is empty"}
	}
	d := &msgpackDecoder{b: payload}
	v, err := d.value()
	if err != nil {
		return nil, &DecodeError{Codec: Msgpack, Problem: err.Error(), Err: err}
	}
	if d.i != len(payload) {
		return nil, &DecodeError{Codec: Msgpack, Problem: fmt.Sprintf("%d bytes after the value", len(payload)-d.i)}
	}
	return v, nil
}

func (d *msgpackDecoder) fail(format string, args ...any) error {
	return fmt.Errorf("%s (at byte %d)", fmt.Sprintf(format, args...), d.i)
}

// take returns the next n bytes.
func (d *msgpackDecoder) take(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)-d.i) {
		return nil, d.fail("the frame ends inside a value (%d bytes needed, %d left)", n, len(d.b)-d.i)
	}
	s := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	return s, nil
}

func (d *msgpackDecoder) uint(size int) (uint64, error) {
	b, err := d.take(uint64(size))
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	default:
		return binary.BigEndian.Uint64(b), nil
	}
}

// unsignedValue gives a decoded unsigned integer as int64 when it fits, as the JSON
// decoder does, so both codecs decode the same number to the same Go value.
func unsignedValue(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return u
}

func (d *msgpackDecoder) value() (any, error) {
	if d.i >= len(d.b) {
		return nil, d.fail("the frame ends where a value should start")
	}
	c := d.b[d.i]
	d.i++
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0x80 && c <= 0x8f:
		return d.mapValue(uint64(c & 0x0f))
	case c >= 0x90 && c <= 0x9f:
		return d.arrayValue(uint64(c & 0x0f))
	case c >= 0xa0 && c <= 0xbf:
		return d.strValue(uint64(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		b, err := d.take(n)
		if err != nil {
			return nil, err
		}
		// A copy: the frame's buffer is reused for the next frame.
		return append(make([]byte, 0, len(b)), b...), nil
	case 0xca:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	case 0xcb:
		u, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		return unsignedValue(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		u, err := d.uint(size)
		if err != nil {
			return nil, err
		}
		switch size {
		case 1:
			return int64(int8(u)), nil
		case 2:
			return int64(int16(u)), nil
		case 4:
			return int64(int32(u)), nil
		default:
			return int64(u), nil
		}
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.strValue(n)
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayValue(n)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapValue(n)
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		d.i--
		return nil, d.fail("extension types (0x%02x) are not protocol values", c)
	default: // 0xc1
		d.i--
		return nil, d.fail("0x%02x is never used in MessagePack", c)
	}
}

func (d *msgpackDecoder) strValue(n uint64) (any, error) {
	b, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, d.fail("a string is not valid UTF-8")
	}
	return string(b), nil
}

func (d *msgpackDecoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.fail("values nest more than %d levels deep", maxDepth)
	}
	return nil
}

func (d *msgpackDecoder) arrayValue(n uint64) (any, error) {
	// Every element takes at least one byte: a length beyond the bytes left is a lie,
	// refused before anything is allocated for it.
	if n > uint64(len(d.b)-d.i) {
		return nil, d.fail("an array of %d elements does not fit in the %d bytes left", n, len(d.b)-d.i)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	d.depth--
	return out, nil
}

func (d *msgpackDecoder) mapValue(n uint64) (any, error) {
	if n > uint64(len(d.b)-d.i)/2 {
		return nil, d.fail("a map of %d entries does not fit in the %d bytes left", n, len(d.b)-d.i)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	out := make(map[string]any, n)
	for j := uint64(0); j < n; j++ {
		at := d.i
		k, err := d.value()
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			d.i = at
			return nil, d.fail("a map key is %s; protocol map keys are strings", article(TypeName(k)))
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	d.depth--
	return out, nil
}
