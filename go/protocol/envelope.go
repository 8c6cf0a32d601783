package protocol

import (
	"fmt"
	"strings"
	"time"
)

// LogLevels are the levels of a log message, least severe first.
var LogLevels = []string{"trace", "debug", "info", "warn", "error"}

// ValidLogLevel reports whether level is one of [LogLevels].
func ValidLogLevel(level string) bool {
	for _, l := range LogLevels {
		if l == level {
			return true
		}
	}
	return false
}

// NowMs is the time in milliseconds since the Unix epoch: the unit of every timestamp.
func NowMs() int64 { return time.Now().UnixMilli() }

// Request is a request from the host to a worker. Without an ID it is a notification,
// which the worker must not answer.
type Request struct {
	// ID is the call's id; not valid (the zero ID) for a notification.
	ID ID
	// Method is the method to run; names starting with "$" are reserved.
	Method string
	// Params are the arguments in the decoded form (nil when absent).
	Params any
	// Timestamp is when the host sent it, in ms since the Unix epoch; nil when absent.
	Timestamp *int64
	// TimeoutMs is how long the host will wait for this call, in ms; nil when absent.
	TimeoutMs *int64
}

// IsNotification reports whether the request has no id (and must not be answered).
func (r *Request) IsNotification() bool { return !r.ID.Valid() }

func (r *Request) wire() object {
	var o object
	if r.ID.Valid() {
		o = append(o, field{"id", r.ID.Value()})
	}
	o = append(o, field{"method", r.Method})
	if r.Params != nil {
		o = append(o, field{"params", r.Params})
	}
	if r.Timestamp != nil {
		o = append(o, field{"timestamp", *r.Timestamp})
	}
	if r.TimeoutMs != nil {
		o = append(o, field{"timeoutMs", *r.TimeoutMs})
	}
	return o
}

// DecodeRequest decodes and validates one request frame's payload. The error is a
// [*DecodeError] when the frame does not decode, an [*InvalidRequestError] (naming the
// field, with the id when it could be read) when it breaks a rule of the envelope.
func DecodeRequest(c Codec, payload []byte) (*Request, error) {
	v, err := c.Decode(payload)
	if err != nil {
		return nil, err
	}
	return ParseRequest(v)
}

// ParseRequest validates a decoded request. The error is an [*InvalidRequestError].
func ParseRequest(v any) (*Request, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &InvalidRequestError{Problem: "a request must be an object, got " + article(TypeName(v))}
	}
	req := &Request{}
	if raw, ok := m["id"]; ok {
		id, ok := IDFromValue(raw)
		if !ok {
			return nil, &InvalidRequestError{Problem: "id must be an integer or a string, got " + article(TypeName(raw))}
		}
		req.ID = id
	}
	bad := func(format string, args ...any) error {
		return &InvalidRequestError{ID: req.ID, Problem: fmt.Sprintf(format, args...)}
	}
	method, ok := m["method"]
	if !ok {
		return nil, bad("missing method")
	}
	if req.Method, ok = method.(string); !ok {
		return nil, bad("method must be a string, got %s", article(TypeName(method)))
	}
	req.Params = m["params"]
	var err error
	if req.Timestamp, err = optionalCount(m, "timestamp", "ms since the Unix epoch"); err != nil {
		return nil, bad("%v", err)
	}
	if req.TimeoutMs, err = optionalCount(m, "timeoutMs", "milliseconds"); err != nil {
		return nil, bad("%v", err)
	}
	return req, nil
}

// optionalCount reads an optional non-negative integer field; null counts as absent.
func optionalCount(m map[string]any, key, unit string) (*int64, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	if i, ok := v.(int64); ok && i >= 0 {
		return &i, nil
	}
	return nil, fmt.Errorf("%s must be a non-negative integer (%s), got %s", key, unit, describe(v))
}

// describe names a value for an error message: its type, and the value when short.
func describe(v any) string {
	switch x := v.(type) {
	case int64, uint64, float64, bool:
		return fmt.Sprintf("%s %v", TypeName(v), x)
	default:
		return article(TypeName(v))
	}
}

// article puts "a" or "an" before a type name ("an array", "a string"), not before
// "null".
func article(name string) string {
	if name == "null" {
		return name
	}
	if strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// ErrorObject is the error of a response: {code, message, data?}.
type ErrorObject struct {
	// Code is one of the Code* constants or a method's own UPPER_SNAKE code.
	Code string
	// Message is for people.
	Message string
	// Data is details for programs (any value); nil leaves it out.
	Data any
}

func (e *ErrorObject) wire() object {
	o := object{{"code", e.Code}, {"message", e.Message}}
	if e.Data != nil {
		o = append(o, field{"data", e.Data})
	}
	return o
}

// Message is anything a worker sends after its handshake: a [*Response], a [*Progress]
// or a [*Log].
type Message interface {
	// Kind is "response", "progress" or "log".
	Kind() string
	wire() object
}

// Response is a worker's answer to one request.
type Response struct {
	// ID is the request's id, echoed verbatim.
	ID ID
	// Result is the method's return value (nil is the result null) when Error is nil.
	Result any
	// Error is the error, or nil for a result.
	Error *ErrorObject
	// Timestamp is when the worker sent it, in ms since the Unix epoch; nil when absent.
	Timestamp *int64
	// ExecutionTime is the time spent in the method, in microseconds; nil when absent.
	ExecutionTime *int64
}

// Kind is "response".
func (r *Response) Kind() string { return "response" }

func (r *Response) wire() object {
	o := object{{"id", r.ID.Value()}}
	if r.Error != nil {
		o = append(o, field{"error", r.Error})
	} else {
		o = append(o, field{"result", r.Result})
	}
	if r.Timestamp != nil {
		o = append(o, field{"timestamp", *r.Timestamp})
	}
	if r.ExecutionTime != nil {
		o = append(o, field{"executionTime", *r.ExecutionTime})
	}
	return o
}

// Progress is a progress message for a running call.
type Progress struct {
	// ID is the call's id.
	ID ID
	// Progress is any value.
	Progress any
}

// Kind is "progress".
func (p *Progress) Kind() string { return "progress" }

func (p *Progress) wire() object {
	return object{{"id", p.ID.Value()}, {"progress", p.Progress}}
}

// Log is a log message: a level, a message and structured fields, which the host writes
// to its own log with the module and instance.
type Log struct {
	// Level is one of LogLevels.
	Level string
	// Message is the text.
	Message string
	// Fields are structured details; nil leaves them out.
	Fields map[string]any
}

// Kind is "log".
func (l *Log) Kind() string { return "log" }

func (l *Log) wire() object {
	body := object{{"level", l.Level}, {"message", l.Message}}
	if l.Fields != nil {
		body = append(body, field{"fields", l.Fields})
	}
	return object{{"log", body}}
}

// DecodeMessage decodes and validates one frame a worker sent after its handshake (what
// a host reads). The error is a [*DecodeError] or an [*InvalidMessageError].
func DecodeMessage(c Codec, payload []byte) (Message, error) {
	v, err := c.Decode(payload)
	if err != nil {
		return nil, err
	}
	return ParseMessage(v)
}

// ParseMessage validates a decoded worker message. The error is an
// [*InvalidMessageError] naming the broken field.
func ParseMessage(v any) (Message, error) {
	bad := func(format string, args ...any) error {
		return &InvalidMessageError{Problem: fmt.Sprintf(format, args...)}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad("a message must be an object, got %s", article(TypeName(v)))
	}
	rawID, hasID := m["id"]
	if log, ok := m["log"]; ok && !hasID {
		return parseLog(log)
	}
	if !hasID {
		return nil, bad("missing id: a response or progress message needs one (a message without one must be a log)")
	}
	id, ok := IDFromValue(rawID)
	if !ok {
		return nil, bad("id must be an integer or a string, got %s", article(TypeName(rawID)))
	}
	result, hasResult := m["result"]
	errValue, hasError := m["error"]
	if progress, ok := m["progress"]; ok && !hasResult && !hasError {
		return &Progress{ID: id, Progress: progress}, nil
	}
	if hasResult && hasError {
		return nil, bad("a response holds a result or an error, not both")
	}
	if !hasResult && !hasError {
		return nil, bad("a response needs a result or an error")
	}
	resp := &Response{ID: id}
	var err error
	if resp.Timestamp, err = optionalCount(m, "timestamp", "ms since the Unix epoch"); err != nil {
		return nil, bad("%v", err)
	}
	if resp.ExecutionTime, err = optionalCount(m, "executionTime", "microseconds"); err != nil {
		return nil, bad("%v", err)
	}
	if hasResult {
		resp.Result = result
		return resp, nil
	}
	e, ok := errValue.(map[string]any)
	if !ok {
		return nil, bad("error must be an object {code, message, data?}, got %s", article(TypeName(errValue)))
	}
	code, ok := e["code"].(string)
	if !ok {
		return nil, bad("error.code must be a string, got %s", describe(e["code"]))
	}
	message, ok := e["message"].(string)
	if !ok {
		return nil, bad("error.message must be a string, got %s", describe(e["message"]))
	}
	resp.Error = &ErrorObject{Code: code, Message: message, Data: e["data"]}
	return resp, nil
}

func parseLog(v any) (*Log, error) {
	bad := func(format string, args ...any) error {
		return &InvalidMessageError{Problem: fmt.Sprintf(format, args...)}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bad("log must be an object {level, message, fields?}, got %s", article(TypeName(v)))
	}
	level, _ := m["level"].(string)
	if !ValidLogLevel(level) {
		return nil, bad("log level must be one of %s, got %s", strings.Join(LogLevels, ", "), quoteValue(m["level"]))
	}
	message, ok := m["message"].(string)
	if !ok {
		return nil, bad("log message must be a string, got %s", describe(m["message"]))
	}
	l := &Log{Level: level, Message: message}
	if f, ok := m["fields"]; ok && f != nil {
		fields, ok := f.(map[string]any)
		if !ok {
			return nil, bad("log fields must be an object, got %s", article(TypeName(f)))
		}
		l.Fields = fields
	}
	return l, nil
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return describe(v)
}

// durationMicros gives d in whole microseconds, the unit of executionTime.
func durationMicros(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Microsecond)
}

// NewResult builds a result response for id, stamped now, with the time spent in the
// method.
func NewResult(id ID, result any, took time.Duration) *Response {
	now, us := NowMs(), durationMicros(took)
	return &Response{ID: id, Result: result, Timestamp: &now, ExecutionTime: &us}
}

// NewError builds an error response for id, stamped now. took < 0 leaves out
// executionTime (for answers that ran no method).
func NewError(id ID, code, message string, data any, took time.Duration) *Response {
	now := NowMs()
	r := &Response{ID: id, Error: &ErrorObject{Code: code, Message: message, Data: data}, Timestamp: &now}
	if took >= 0 {
		us := durationMicros(took)
		r.ExecutionTime = &us
	}
	return r
}
