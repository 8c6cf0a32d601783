package worker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"polyglot.invalid/go/protocol"
)

// DefaultMaxConcurrency is how many calls a worker takes at once unless told otherwise
// (WithMaxConcurrency): plenty for methods that wait on I/O, each on its own goroutine,
// few enough that a burst cannot queue unbounded work inside one worker. Same default as
// the Rust SDK.
const DefaultMaxConcurrency = 64

// HandlerFunc serves one method. ctx is cancelled when the host cancels the call
// ($cancel) or goes away; call holds the params and sends progress and logs. The result
// is any value package protocol encodes; the error an [Error] (that error object) or any
// other error (INTERNAL).
type HandlerFunc func(ctx context.Context, call *Call) (any, error)

// HealthFunc answers $health. Its map is merged into {"status": "ok"} (return
// {"status": "degraded", "reason": "..."} for a degraded worker); an error reports the
// worker unhealthy: an [Error] with its code, any other error as UNHEALTHY.
type HealthFunc func(ctx context.Context) (map[string]any, error)

// Worker is a module's methods, served over the protocol. Register methods with
// [Worker.Method] before serving; a Worker is then safe to serve from one goroutine.
type Worker struct {
	module         string
	version        string
	maxConcurrency int
	health         HealthFunc
	methods        map[string]HandlerFunc

	mu      sync.Mutex
	serving []*conn // the connections being served, latest last, for Worker.Log
}

// Option configures a [Worker] in [New].
type Option func(*Worker)

// WithMaxConcurrency sets how many calls the worker takes at once, announced in the
// handshake (the host never sends more); at least 1. The default is
// [DefaultMaxConcurrency]. $health does not count: it is answered outside these slots.
func WithMaxConcurrency(n int) Option {
	return func(w *Worker) { w.maxConcurrency = max(1, n) }
}

// WithHealth sets the function behind $health; without one $health answers
// {"status": "ok"}.
func WithHealth(fn HealthFunc) Option {
	return func(w *Worker) { w.health = fn }
}

// New is a worker for module at version, with no methods yet.
func New(module, version string, opts ...Option) *Worker {
	w := &Worker{
		module:         module,
		version:        version,
		maxConcurrency: DefaultMaxConcurrency,
		methods:        map[string]HandlerFunc{},
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Method registers fn as the method name. It panics (a programming error, as
// http.ServeMux does) on an empty name, a reserved one (starting with "$"), a name
// registered twice, or a nil fn.
func (w *Worker) Method(name string, fn HandlerFunc) {
	switch {
	case name == "":
		panic("worker: a method needs a name")
	case strings.HasPrefix(name, "$"):
		panic(fmt.Sprintf("worker: method %q: names starting with '$' are reserved", name))
	case fn == nil:
		panic(fmt.Sprintf("worker: method %q has a nil handler", name))
	}
	if _, dup := w.methods[name]; dup {
		panic(fmt.Sprintf("worker: method %q is registered twice", name))
	}
	w.methods[name] = fn
}

// Module is the module name the worker serves.
func (w *Worker) Module() string { return w.module }

// Methods are the registered method names, sorted: what the handshake announces.
func (w *Worker) Methods() []string {
	names := make([]string, 0, len(w.methods))
	for n := range w.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Handshake is the handshake this worker sends for codec.
func (w *Worker) Handshake(codec protocol.Codec) *protocol.Handshake {
	return &protocol.Handshake{
		Protocol:       protocol.ProtocolVersion,
		Module:         w.module,
		Version:        w.version,
		Methods:        w.Methods(),
		Codec:          codec,
		MaxConcurrency: int64(w.maxConcurrency),
		Language:       "go",
		PID:            int64(os.Getpid()),
	}
}

// Log sends a log message (level trace, debug, info, warn or error) while the worker
// serves; before or after, it goes to stderr.
//
// With several connections at once (gRPC sessions), it goes to the latest one.
func (w *Worker) Log(level, message string, fields map[string]any) error {
	var c *conn
	w.mu.Lock()
	if n := len(w.serving); n > 0 {
		c = w.serving[n-1]
	}
	w.mu.Unlock()
	if c == nil {
		logStderr("%s: %s%s", level, message, formatFields(fields))
		return nil
	}
	return c.log(level, message, fields)
}

// addServing records a connection being served, for Log.
func (w *Worker) addServing(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serving = append(w.serving, c)
}

// removeServing forgets a connection that ended.
func (w *Worker) removeServing(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serving = slices.DeleteFunc(w.serving, func(x *conn) bool { return x == c })
}

// Call runs one method in this process, without the protocol: for tests of a module's
// methods, and for calling a module from Go directly. params and the result go through
// protocol.Normalize, so the method sees what it would from the wire and the caller gets
// what the host would. The error is an *Error: the method's, METHOD_NOT_FOUND, or
// INTERNAL for a failure or a panic. Progress and logs go nowhere.
func (w *Worker) Call(ctx context.Context, method string, params any) (any, error) {
	fn, ok := w.methods[method]
	if !ok {
		return nil, w.notServed(method)
	}
	norm, err := protocol.Normalize(params)
	if err != nil {
		return nil, InvalidParams("%v", err)
	}
	call := &Call{Method: method, Params: norm}
	result, err := invoke(ctx, fn, call)
	if err != nil {
		e := errorObject(err, CodeInternal)
		return nil, &Error{Code: e.Code, Message: e.Message, Data: e.Data}
	}
	out, err := normalize(result)
	if err != nil {
		return nil, Errorf(CodeInternal, "the result cannot be sent: %v", err)
	}
	return out, nil
}

// normalize is protocol.Normalize, with a panic in a value's own marshaler turned into
// an error.
func normalize(v any) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encoding it panicked: %v", p)
		}
	}()
	return protocol.Normalize(v)
}

// notServed is the METHOD_NOT_FOUND error for method.
func (w *Worker) notServed(method string) *Error {
	served := strings.Join(w.Methods(), ", ")
	if served == "" {
		served = "nothing"
	}
	return Errorf(CodeMethodNotFound, "module %q does not serve %q; it serves %s", w.module, method, served)
}

func formatFields(fields map[string]any) string {
	if len(fields) == 0 {
		return ""
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, fields[k])
	}
	return b.String()
}
