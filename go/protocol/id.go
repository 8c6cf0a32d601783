package protocol

import (
	"math"
	"strconv"
)

type idKind uint8

const (
	idNone   idKind = iota // no id: a notification
	idUint                 // a non-negative integer
	idNeg                  // a negative integer
	idString               // a string
)

// ID is a call's id: an integer (signed or unsigned 64-bit) or a string. Workers echo it
// verbatim: same type, same value. IDs are comparable, so they can key maps; an integer
// id compares equal whichever codec or integer form carried it.
//
// The zero ID is no id at all (a notification's); see [ID.Valid].
type ID struct {
	kind idKind
	n    uint64 // the integer; for idNeg the bits of an int64
	s    string
}

// IntID is the integer id i.
func IntID(i int64) ID {
	if i >= 0 {
		return ID{kind: idUint, n: uint64(i)}
	}
	return ID{kind: idNeg, n: uint64(i)}
}

// UintID is the integer id u.
func UintID(u uint64) ID { return ID{kind: idUint, n: u} }

// StringID is the string id s.
func StringID(s string) ID { return ID{kind: idString, s: s} }

// IDFromValue reads an id from a decoded value: an integer (of any Go integer type) or a
// string. It reports false for anything else (floats, null, objects, ...).
func IDFromValue(v any) (ID, bool) {
	switch x := v.(type) {
	case int64:
		return IntID(x), true
	case uint64:
		return UintID(x), true
	case int:
		return IntID(int64(x)), true
	case int32:
		return IntID(int64(x)), true
	case uint32:
		return UintID(uint64(x)), true
	case string:
		return StringID(x), true
	}
	return ID{}, false
}

// Valid reports whether this is an id at all (false for the zero ID).
func (id ID) Valid() bool { return id.kind != idNone }

// IsString reports whether the id is a string.
func (id ID) IsString() bool { return id.kind == idString }

// Value gives the id as a decoded value: int64, uint64 (only above math.MaxInt64) or
// string; nil for the zero ID.
func (id ID) Value() any {
	switch id.kind {
	case idUint:
		if id.n <= math.MaxInt64 {
			return int64(id.n)
		}
		return id.n
	case idNeg:
		return int64(id.n)
	case idString:
		return id.s
	}
	return nil
}

// String gives the id as it reads in messages: 7, -3, "call-a1" (quoted), or <none>.
func (id ID) String() string {
	switch id.kind {
	case idUint:
		return strconv.FormatUint(id.n, 10)
	case idNeg:
		return strconv.FormatInt(int64(id.n), 10)
	case idString:
		return strconv.Quote(id.s)
	}
	return "<none>"
}
