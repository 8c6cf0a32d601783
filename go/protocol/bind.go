package protocol

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Bind stores a decoded value (as [Codec.Decode] or [Normalize] give it) into the Go value
// dst points to, checking types on the way. The error is a [*BindError] whose Path names
// where the value does not fit, or a plain error when dst is not a non-nil pointer.
//
// The rules, beyond the obvious ones (a string into a string, ...):
//   - Integers fit any Go integer type that holds their value, and floats; floats fit
//     only float types. []byte takes binary, not strings.
//   - any (interface{}) takes the decoded value as it is.
//   - A struct takes an object by field names (the `json` tag's name, else the Go name;
//     an exact match first, then a case-insensitive one), or an array by position, in
//     field order: so params may be named or positional. Any other value is taken as an
//     array of one. A field is required unless its tag says omitempty or omitzero; an
//     unknown key, or more elements than fields, is an error.
//   - Maps with string keys take objects; slices and arrays take arrays.
//   - null leaves pointers, slices, maps and interfaces nil, and is an error for the
//     other types.
//   - A type that implements json.Unmarshaler gets the value's JSON; one that implements
//     encoding.TextUnmarshaler gets a string's text.
func Bind(v any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("protocol.Bind needs a non-nil pointer, got %T", dst)
	}
	return bind(v, rv.Elem(), 0)
}

func mismatch(expected string, got any) error {
	return &BindError{Problem: fmt.Sprintf("expected %s, got %s", expected, describe(got))}
}

func bind(v any, dv reflect.Value, depth int) error {
	if depth > maxDepth {
		return &BindError{Problem: fmt.Sprintf("the value nests more than %d levels deep", maxDepth)}
	}
	t := dv.Type()
	if dv.Kind() == reflect.Pointer {
		if v == nil {
			dv.Set(reflect.Zero(t))
			return nil
		}
		if dv.IsNil() {
			dv.Set(reflect.New(t.Elem()))
		}
		return bind(v, dv.Elem(), depth+1)
	}
	if dv.CanAddr() {
		pt := reflect.PointerTo(t)
		if pt.Implements(jsonUnmarshalerType) {
			text, err := JSON.Encode(v)
			if err != nil {
				return &BindError{Problem: err.Error()}
			}
			if err := dv.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(text); err != nil {
				return &BindError{Problem: err.Error()}
			}
			return nil
		}
		if pt.Implements(textUnmarshalerType) {
			s, ok := v.(string)
			if !ok {
				return mismatch("a string", v)
			}
			if err := dv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				return &BindError{Problem: err.Error()}
			}
			return nil
		}
	}
	switch dv.Kind() {
	case reflect.Interface:
		if dv.NumMethod() != 0 {
			return fmt.Errorf("protocol.Bind cannot store into the interface type %s", t)
		}
		if v == nil {
			dv.Set(reflect.Zero(t))
		} else {
			dv.Set(reflect.ValueOf(v))
		}
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch("a boolean", v)
		}
		dv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch x := v.(type) {
		case int64:
			if dv.OverflowInt(x) {
				return &BindError{Problem: fmt.Sprintf("%d does not fit in %s", x, t)}
			}
			dv.SetInt(x)
		case uint64: // decoded only above math.MaxInt64
			return &BindError{Problem: fmt.Sprintf("%d does not fit in %s", x, t)}
		default:
			return mismatch("an integer", v)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return &BindError{Problem: fmt.Sprintf("%d does not fit in %s (it is negative)", x, t)}
			}
			u = uint64(x)
		case uint64:
			u = x
		default:
			return mismatch("an integer", v)
		}
		if dv.OverflowUint(u) {
			return &BindError{Problem: fmt.Sprintf("%d does not fit in %s", u, t)}
		}
		dv.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case uint64:
			f = float64(x)
		default:
			return mismatch("a number", v)
		}
		if dv.Kind() == reflect.Float32 && !math.IsInf(f, 0) && dv.OverflowFloat(f) {
			return &BindError{Problem: fmt.Sprintf("%v does not fit in %s", f, t)}
		}
		dv.SetFloat(f)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return mismatch("a string", v)
		}
		dv.SetString(s)
	case reflect.Slice:
		if v == nil {
			dv.Set(reflect.Zero(t))
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			b, ok := v.([]byte)
			if !ok {
				return mismatch("binary", v)
			}
			dv.SetBytes(append([]byte(nil), b...))
			return nil
		}
		arr, ok := v.([]any)
		if !ok {
			return mismatch("an array", v)
		}
		s := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			if err := bind(e, s.Index(i), depth+1); err != nil {
				return withBindPath(err, "["+strconv.Itoa(i)+"]")
			}
		}
		dv.Set(s)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if b, ok := v.([]byte); ok {
				if len(b) != dv.Len() {
					return &BindError{Problem: fmt.Sprintf("expected %d bytes, got %d", dv.Len(), len(b))}
				}
				reflect.Copy(dv, reflect.ValueOf(b))
				return nil
			}
		}
		arr, ok := v.([]any)
		if !ok {
			return mismatch("an array", v)
		}
		if len(arr) != dv.Len() {
			return &BindError{Problem: fmt.Sprintf("expected an array of %d elements, got %d", dv.Len(), len(arr))}
		}
		for i, e := range arr {
			if err := bind(e, dv.Index(i), depth+1); err != nil {
				return withBindPath(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("protocol.Bind cannot store objects into %s: its keys are not strings", t)
		}
		if v == nil {
			dv.Set(reflect.Zero(t))
			return nil
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch("an object", v)
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for _, k := range sortedKeys(obj) {
			ev := reflect.New(t.Elem()).Elem()
			if err := bind(obj[k], ev, depth+1); err != nil {
				return withBindPath(err, "."+k)
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		dv.Set(m)
	case reflect.Struct:
		return bindStruct(v, dv, depth)
	default:
		return fmt.Errorf("protocol.Bind cannot store into a %s", t)
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldForSet follows a field index through embedded structs, allocating nil embedded
// pointers on the way.
func fieldForSet(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func fieldNames(fields []structField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func bindStruct(v any, dv reflect.Value, depth int) error {
	fields := typeFields(dv.Type())
	set := make([]bool, len(fields))
	switch x := v.(type) {
	case map[string]any, nil:
		obj, _ := x.(map[string]any)
		for _, k := range sortedKeys(obj) {
			idx := -1
			for i := range fields {
				if fields[i].name == k {
					idx = i
					break
				}
			}
			if idx < 0 {
				for i := range fields {
					if strings.EqualFold(fields[i].name, k) {
						idx = i
						break
					}
				}
			}
			if idx < 0 {
				return &BindError{Path: "." + k, Problem: fmt.Sprintf("unknown field (known: %s)", fieldNames(fields))}
			}
			if err := bind(obj[k], fieldForSet(dv, fields[idx].index), depth+1); err != nil {
				return withBindPath(err, "."+fields[idx].name)
			}
			set[idx] = true
		}
	default:
		arr, ok := v.([]any)
		if !ok {
			arr = []any{v}
		}
		if len(arr) > len(fields) {
			return &BindError{Problem: fmt.Sprintf("expected at most %d values (%s), got %d", len(fields), fieldNames(fields), len(arr))}
		}
		for i, e := range arr {
			if err := bind(e, fieldForSet(dv, fields[i].index), depth+1); err != nil {
				return withBindPath(err, "."+fields[i].name)
			}
			set[i] = true
		}
	}
	for i := range fields {
		if !set[i] && fields[i].required() {
			return &BindError{Path: "." + fields[i].name, Problem: "missing (required)"}
		}
	}
	return nil
}
