package protocol

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// tokenWriter receives a value as a stream of tokens from the walker. There is one per
// codec (the wire forms) and one that builds the decoded form ([Normalize]), so the rules
// for Go values (tags, marshalers, nil) live once, in the walker.
type tokenWriter interface {
	null()
	boolean(b bool)
	integer(i int64)
	unsigned(u uint64)
	float(f float64) // finite: the walker refuses NaN and the infinities
	str(s string)
	bin(b []byte)
	beginArray(n int)
	arrayElem(i int)
	endArray()
	beginMap(n int)
	mapKey(i int, k string)
	endMap()
}

// field is one entry of an ordered object: how envelopes keep id first on the wire.
type field struct {
	key string
	val any
}

// object is an ordered object. Only this package builds them (envelopes, handshakes).
type object []field

// wireValue is implemented by the message types: the value they are on the wire.
type wireValue interface {
	wire() object
}

// walker walks any Go value and feeds its tokens to a tokenWriter.
type walker struct {
	w     tokenWriter
	depth int
}

func (e *walker) enter() error {
	e.depth++
	if e.depth > maxDepth {
		return &EncodeError{Problem: fmt.Sprintf("the value nests more than %d levels deep (a cycle?)", maxDepth)}
	}
	return nil
}

func (e *walker) leave() { e.depth-- }

// value walks v: a fast path for the decoded types and common Go types, reflection for
// everything else.
func (e *walker) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.w.null()
	case bool:
		e.w.boolean(x)
	case string:
		e.w.str(x)
	case int64:
		e.w.integer(x)
	case int:
		e.w.integer(int64(x))
	case int32:
		e.w.integer(int64(x))
	case int16:
		e.w.integer(int64(x))
	case int8:
		e.w.integer(int64(x))
	case uint64:
		e.w.unsigned(x)
	case uint:
		e.w.unsigned(uint64(x))
	case uint32:
		e.w.unsigned(uint64(x))
	case uint16:
		e.w.unsigned(uint64(x))
	case uint8:
		e.w.unsigned(uint64(x))
	case float64:
		return e.float(x)
	case float32:
		return e.float(float64(x))
	case []byte:
		if x == nil {
			e.w.null()
		} else {
			e.w.bin(x)
		}
	case []any:
		if x == nil {
			e.w.null()
			return nil
		}
		return e.array(len(x), func(i int) any { return x[i] })
	case []string:
		if x == nil {
			e.w.null()
			return nil
		}
		return e.array(len(x), func(i int) any { return x[i] })
	case map[string]any:
		if x == nil {
			e.w.null()
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return e.mapEntries(keys, func(i int) any { return x[keys[i]] })
	case object:
		keys := make([]string, len(x))
		for i, f := range x {
			keys[i] = f.key
		}
		return e.mapEntries(keys, func(i int) any { return x[i].val })
	case wireValue:
		return e.value(x.wire())
	case json.Number:
		return e.number(string(x))
	case reflect.Value:
		// Elements and fields the reflection walk hands back.
		return e.reflect(x)
	default:
		return e.reflect(reflect.ValueOf(v))
	}
	return nil
}

func (e *walker) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &EncodeError{Problem: fmt.Sprintf("%v is not a number the protocol carries (JSON has no NaN or infinity)", f)}
	}
	e.w.float(f)
	return nil
}

// number writes a json.Number's text as the integer or float it holds.
func (e *walker) number(text string) error {
	v, err := parseNumber(text)
	if err != nil {
		return &EncodeError{Problem: err.Error()}
	}
	return e.value(v)
}

func (e *walker) array(n int, elem func(i int) any) error {
	if uint64(n) > math.MaxUint32 {
		return &EncodeError{Problem: fmt.Sprintf("an array of %d elements is over the 2^32-1 the protocol carries", n)}
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.w.beginArray(n)
	for i := 0; i < n; i++ {
		e.w.arrayElem(i)
		if err := e.value(elem(i)); err != nil {
			return withEncodePath(err, "["+strconv.Itoa(i)+"]")
		}
	}
	e.w.endArray()
	e.leave()
	return nil
}

func (e *walker) mapEntries(keys []string, val func(i int) any) error {
	if uint64(len(keys)) > math.MaxUint32 {
		return &EncodeError{Problem: fmt.Sprintf("an object of %d keys is over the 2^32-1 the protocol carries", len(keys))}
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.w.beginMap(len(keys))
	for i, k := range keys {
		e.w.mapKey(i, k)
		if err := e.value(val(i)); err != nil {
			return withEncodePath(err, "."+k)
		}
	}
	e.w.endMap()
	e.leave()
	return nil
}

var (
	jsonMarshalerType   = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType   = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	numberType          = reflect.TypeOf(json.Number(""))
)

// marshaler gives the json.Marshaler or encoding.TextMarshaler rv implements (directly,
// or through its address when it has one), the way encoding/json looks for them.
func marshaler(rv reflect.Value) (json.Marshaler, encoding.TextMarshaler) {
	t := rv.Type()
	if t.Implements(jsonMarshalerType) {
		return rv.Interface().(json.Marshaler), nil
	}
	if rv.CanAddr() && reflect.PointerTo(t).Implements(jsonMarshalerType) {
		return rv.Addr().Interface().(json.Marshaler), nil
	}
	if t.Implements(textMarshalerType) {
		return nil, rv.Interface().(encoding.TextMarshaler)
	}
	if rv.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType) {
		return nil, rv.Addr().Interface().(encoding.TextMarshaler)
	}
	return nil, nil
}

func (e *walker) reflect(rv reflect.Value) error {
	if !rv.IsValid() {
		e.w.null()
		return nil
	}
	t := rv.Type()
	if (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) && rv.IsNil() {
		e.w.null()
		return nil
	}
	if t == numberType {
		return e.number(rv.String())
	}
	if jm, tm := marshaler(rv); jm != nil {
		b, err := jm.MarshalJSON()
		if err != nil {
			return &EncodeError{Problem: fmt.Sprintf("%s.MarshalJSON failed: %v", t, err), Err: err}
		}
		v, err := decodeJSON(b)
		if err != nil {
			return &EncodeError{Problem: fmt.Sprintf("%s.MarshalJSON gave no protocol value: %v", t, err), Err: err}
		}
		return e.value(v)
	} else if tm != nil {
		b, err := tm.MarshalText()
		if err != nil {
			return &EncodeError{Problem: fmt.Sprintf("%s.MarshalText failed: %v", t, err), Err: err}
		}
		e.w.str(string(b))
		return nil
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.reflect(rv.Elem()); err != nil {
			return err
		}
		e.leave()
	case reflect.Bool:
		e.w.boolean(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.w.integer(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.w.unsigned(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return e.float(rv.Float())
	case reflect.String:
		e.w.str(rv.String())
	case reflect.Slice:
		if rv.IsNil() {
			e.w.null()
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			e.w.bin(rv.Bytes())
			return nil
		}
		return e.array(rv.Len(), func(i int) any { return rv.Index(i) })
	case reflect.Array:
		return e.array(rv.Len(), func(i int) any { return rv.Index(i) })
	case reflect.Map:
		if rv.IsNil() {
			e.w.null()
			return nil
		}
		return e.reflectMap(rv)
	case reflect.Struct:
		return e.reflectStruct(rv)
	default:
		return &EncodeError{Problem: fmt.Sprintf("a %s is not a protocol value", t)}
	}
	return nil
}

func (e *walker) reflectMap(rv reflect.Value) error {
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		k, err := mapKeyString(it.Key())
		if err != nil {
			return err
		}
		entries = append(entries, entry{k, it.Value()})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	keys := make([]string, len(entries))
	for i, en := range entries {
		keys[i] = en.key
	}
	return e.mapEntries(keys, func(i int) any { return entries[i].val })
}

// mapKeyString gives a map key as the string the protocol carries, as encoding/json does:
// strings as they are, encoding.TextMarshaler keys as their text, integers in decimal.
func mapKeyString(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if k.Type().Implements(textMarshalerType) {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return "", &EncodeError{Problem: fmt.Sprintf("map key %v: MarshalText failed: %v", k, err), Err: err}
		}
		return string(b), nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", &EncodeError{Problem: fmt.Sprintf("map keys of type %s cannot be object keys (strings)", k.Type())}
}

func (e *walker) reflectStruct(rv reflect.Value) error {
	fields := typeFields(rv.Type())
	keys := make([]string, 0, len(fields))
	vals := make([]reflect.Value, 0, len(fields))
	for _, f := range fields {
		fv, ok := fieldValue(rv, f.index)
		if !ok {
			continue // inside a nil embedded pointer
		}
		if (f.omitEmpty && isEmptyValue(fv)) || (f.omitZero && fv.IsZero()) {
			continue
		}
		keys = append(keys, f.name)
		vals = append(vals, fv)
	}
	return e.mapEntries(keys, func(i int) any { return vals[i] })
}

// fieldValue follows a field index through embedded structs; false when it passes
// through a nil embedded pointer.
func fieldValue(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// isEmptyValue is encoding/json's omitempty test.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// structField is one field of a struct as the protocol sees it: its wire name and where
// it is (through embedded structs).
type structField struct {
	name      string
	index     []int
	omitEmpty bool
	omitZero  bool
	tagged    bool
}

// required reports whether Bind insists on the field: one without omitempty or omitzero.
func (f *structField) required() bool { return !f.omitEmpty && !f.omitZero }

var fieldCache sync.Map // reflect.Type -> []structField

// typeFields lists a struct type's fields the way encoding/json does for the common
// cases: exported fields, named by their `json` tag or their Go name, "-" skipped, the
// fields of untagged embedded structs promoted; of fields with the same name the
// shallowest wins, a tagged one breaks a tie, and a tie that remains hides them all.
func typeFields(t reflect.Type) []structField {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]structField)
	}
	type candidate struct {
		structField
		depth int
	}
	var all []candidate
	var walk func(t reflect.Type, index []int, depth int, visiting map[reflect.Type]bool)
	walk = func(t reflect.Type, index []int, depth int, visiting map[reflect.Type]bool) {
		if visiting[t] {
			return
		}
		visiting[t] = true
		defer delete(visiting, t)
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			if sf.Anonymous {
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && ft.Kind() == reflect.Struct {
					walk(ft, idx, depth+1, visiting)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			f := structField{name: name, index: idx, tagged: name != ""}
			if f.name == "" {
				f.name = sf.Name
			}
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "omitempty":
					f.omitEmpty = true
				case "omitzero":
					f.omitZero = true
				}
			}
			all = append(all, candidate{f, depth})
		}
	}
	walk(t, nil, 0, map[reflect.Type]bool{})
	byName := map[string][]candidate{}
	var order []string
	for _, c := range all {
		if _, ok := byName[c.name]; !ok {
			order = append(order, c.name)
		}
		byName[c.name] = append(byName[c.name], c)
	}
	var out []structField
	for _, name := range order {
		cs := byName[name]
		best := cs[0].depth
		for _, c := range cs {
			best = min(best, c.depth)
		}
		var top []candidate
		for _, c := range cs {
			if c.depth == best {
				top = append(top, c)
			}
		}
		if len(top) > 1 {
			var tagged []candidate
			for _, c := range top {
				if c.tagged {
					tagged = append(tagged, c)
				}
			}
			top = tagged
		}
		if len(top) == 1 {
			out = append(out, top[0].structField)
		}
	}
	sort.Slice(out, func(i, j int) bool { return slices.Compare(out[i].index, out[j].index) < 0 })
	fieldCache.Store(t, out)
	return out
}

// treeWriter builds the decoded form of a value: what a wire round trip would give.
type treeWriter struct {
	stack  []treeFrame
	result any
}

type treeFrame struct {
	arr   []any
	m     map[string]any
	key   string
	isMap bool
}

func (t *treeWriter) put(v any) {
	if len(t.stack) == 0 {
		t.result = v
		return
	}
	top := &t.stack[len(t.stack)-1]
	if top.isMap {
		top.m[top.key] = v
	} else {
		top.arr = append(top.arr, v)
	}
}

func (t *treeWriter) null()                  { t.put(nil) }
func (t *treeWriter) boolean(b bool)         { t.put(b) }
func (t *treeWriter) integer(i int64)        { t.put(i) }
func (t *treeWriter) float(f float64)        { t.put(f) }
func (t *treeWriter) str(s string)           { t.put(s) }
func (t *treeWriter) bin(b []byte)           { t.put(slices.Clone(b)) }
func (t *treeWriter) arrayElem(int)          {}
func (t *treeWriter) mapKey(_ int, k string) { t.stack[len(t.stack)-1].key = k }
func (t *treeWriter) unsigned(u uint64) {
	if u <= math.MaxInt64 {
		t.put(int64(u))
	} else {
		t.put(u)
	}
}
func (t *treeWriter) beginArray(n int) { t.stack = append(t.stack, treeFrame{arr: make([]any, 0, n)}) }
func (t *treeWriter) endArray() {
	top := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	t.put(top.arr)
}
func (t *treeWriter) beginMap(n int) {
	t.stack = append(t.stack, treeFrame{m: make(map[string]any, n), isMap: true})
}
func (t *treeWriter) endMap() {
	top := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	t.put(top.m)
}

// Normalize converts any Go value the encoder takes into its decoded form (the types
// listed in the package documentation), exactly as encoding it and decoding the result
// would, without the bytes in between. The error is an [*EncodeError].
func Normalize(v any) (any, error) {
	t := &treeWriter{}
	if err := (&walker{w: t}).value(v); err != nil {
		return nil, err
	}
	return t.result, nil
}
