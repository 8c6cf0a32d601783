// Command polyglot-test-worker is a worker for the host's integration tests, written with
// the Go SDK. Its methods and start-up behaviours are those of
// tests/workers/python_worker.py, so every scenario runs against a worker in each
// language. The module name comes from POLYGLOT_MODULE, the version from
// POLYGLOT_VERSION, and how many calls it takes at once from TEST_MAX_CONCURRENCY
// (default 16). It serves every transport the SDK does: stdio, socket, and with
// POLYGLOT_TRANSPORT=grpc the gRPC transport (started by the host, or as a remote worker
// with POLYGLOT_GRPC_LISTEN), with the same methods.
//
// Methods (params positional, or named by the names below):
//
//	echo(*args)      one positional arg -> it; several -> the list; named args -> the object
//	add(a, b)        a + b for two integers, else INVALID_PARAMS
//	fail(code, message)
//	                 an error response with that code and message
//	boom()           panics -> INTERNAL
//	sleep(ms, cancelMarker?)
//	                 sleeps ms milliseconds (cancellable), returns ms; when cancelled,
//	                 writes "cancelled" to the file cancelMarker if given
//	progress(n)      sends n progress messages {"step": i}, i = 1..n, then returns n
//	crash(code=3)    exits the process at once with that status, mid-call
//	garbage()        writes "this is not protocol\n" to the protocol stream, returns "sent"
//	unknownId()      writes a response for id 987654321987 (never issued), returns "sent"
//	pid()            the process id
//	env(name)        the environment variable, or null
//	version()        POLYGLOT_VERSION
//	big(n)           a string of n "x"
//	stray()          prints to stdout (fmt.Println and fd 1), returns "printed"
//
// Start-up behaviours, by environment variable:
//
//	TEST_BANNER=text       writes that line to stdout before the handshake (a chatty library)
//	TEST_NO_HANDSHAKE=1    writes "starting..." to stderr and never sends a handshake (it
//	                       exits when stdin closes, so it cannot outlive its host)
//	TEST_EXIT_AT_START=N   writes "fatal: cannot load model" to stderr and exits N
//	TEST_BAD_PROTOCOL=1    sends a handshake with "polyglot": 99 (then waits for stdin to
//	                       close: the host refuses it)
//	TEST_HEALTH=unhealthy  $health answers error UNHEALTHY
//	TEST_HEALTH_FILE=path  $health answers error UNHEALTHY while that file exists
//	TEST_HEALTH=degraded   $health answers {"status": "degraded", "reason": "warming up"}
package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"polyglot.invalid/go/protocol"
	"polyglot.invalid/go/worker"
)

// unknownID is an id the host never issues: unknownId answers it.
const unknownID = 987654321987

// defaultMaxConcurrency is what the worker announces without TEST_MAX_CONCURRENCY: the
// Python test worker's default.
const defaultMaxConcurrency = 16

func main() {
	if code := os.Getenv("TEST_EXIT_AT_START"); code != "" {
		fmt.Fprintln(os.Stderr, "fatal: cannot load model")
		n, err := strconv.Atoi(code)
		if err != nil {
			n = 1
		}
		os.Exit(n)
	}
	if os.Getenv("TEST_NO_HANDSHAKE") == "1" {
		fmt.Fprintln(os.Stderr, "starting...")
		// Never handshakes; waits for stdin to close so it cannot outlive the host.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	if banner := os.Getenv("TEST_BANNER"); banner != "" {
		_, _ = os.Stdout.WriteString(banner + "\n") // the real stdout, before Serve takes it
	}
	w := newWorker()
	if os.Getenv("TEST_BAD_PROTOCOL") == "1" {
		codec, err := protocol.ParseCodec(envOr(protocol.EnvCodec, "json"))
		if err != nil {
			codec = protocol.JSON
		}
		h := w.Handshake(codec)
		h.Protocol = 99
		_, _ = os.Stdout.Write(h.Line())
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	w.Serve()
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

// isInt reports whether v is an integer (not a float, not a boolean).
func isInt(v any) bool {
	switch v.(type) {
	case int64, uint64:
		return true
	}
	return false
}

// nonNegativeInt gives v as an int when it is an integer >= 0.
func nonNegativeInt(v any) (int, bool) {
	i, ok := v.(int64)
	if !ok || i < 0 || int64(int(i)) != i {
		return 0, false
	}
	return int(i), true
}

func newWorker() *worker.Worker {
	maxConcurrency, err := strconv.Atoi(os.Getenv("TEST_MAX_CONCURRENCY"))
	if err != nil {
		maxConcurrency = defaultMaxConcurrency
	}
	w := worker.New(
		envOr("POLYGLOT_MODULE", "go-test-worker"),
		envOr("POLYGLOT_VERSION", "0.0.0"),
		worker.WithMaxConcurrency(maxConcurrency),
		worker.WithHealth(health),
	)

	w.Method("echo", func(_ context.Context, call *worker.Call) (any, error) {
		switch p := call.Params.(type) {
		case nil:
			return []any{}, nil
		case []any:
			if len(p) == 1 {
				return p[0], nil
			}
			return p, nil
		case map[string]any:
			if len(p) == 0 {
				return []any{}, nil
			}
			return p, nil
		default:
			return p, nil
		}
	})

	w.Method("add", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			A any `json:"a"`
			B any `json:"b"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		if !isInt(args.A) || !isInt(args.B) {
			return nil, worker.InvalidParams("add takes two integers")
		}
		sum := new(big.Int).Add(toBig(args.A), toBig(args.B))
		switch {
		case sum.IsInt64():
			return sum.Int64(), nil
		case sum.IsUint64():
			return sum.Uint64(), nil
		}
		return nil, worker.Errorf(worker.CodeInternal, "the result cannot be sent: %s is outside the 64-bit range", sum)
	})

	w.Method("fail", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			Code    any `json:"code"`
			Message any `json:"message"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		code, ok1 := args.Code.(string)
		message, ok2 := args.Message.(string)
		if !ok1 || code == "" || !ok2 {
			return nil, worker.InvalidParams("fail takes a code and a message, two strings")
		}
		return nil, &worker.Error{Code: code, Message: message}
	})

	w.Method("boom", func(context.Context, *worker.Call) (any, error) {
		panic("boom")
	})

	w.Method("sleep", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Ms           any `json:"ms"`
			CancelMarker any `json:"cancelMarker,omitempty"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		var d time.Duration
		switch ms := args.Ms.(type) {
		case int64:
			d = time.Duration(ms) * time.Millisecond
		case float64:
			d = time.Duration(ms * float64(time.Millisecond))
		default:
			d = -1
		}
		if d < 0 {
			return nil, worker.InvalidParams("sleep takes a number of milliseconds >= 0")
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
			return args.Ms, nil
		case <-ctx.Done():
			// Written when the call is cancelled, so tests can see $cancel arrived.
			if path, ok := args.CancelMarker.(string); ok {
				_ = os.WriteFile(path, []byte("cancelled"), 0o644)
			}
			return nil, ctx.Err()
		}
	})

	w.Method("progress", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			N any `json:"n"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		n, ok := nonNegativeInt(args.N)
		if !ok {
			return nil, worker.InvalidParams("progress takes a count >= 0")
		}
		for i := 1; i <= n; i++ {
			if err := call.Progress(map[string]any{"step": i}); err != nil {
				return nil, err
			}
		}
		return n, nil
	})

	w.Method("crash", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			Code any `json:"code,omitempty"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		code, ok := args.Code.(int64)
		if !ok {
			code = 3
		}
		os.Exit(int(code))
		return nil, nil
	})

	w.Method("garbage", func(_ context.Context, call *worker.Call) (any, error) {
		worker.WriteRawForTests(call, []byte("this is not protocol\n"))
		return "sent", nil
	})

	w.Method("unknownId", func(_ context.Context, call *worker.Call) (any, error) {
		if err := worker.WriteMessageForTests(call, map[string]any{"id": unknownID, "result": "nobody asked"}); err != nil {
			return nil, err
		}
		return "sent", nil
	})

	w.Method("pid", func(context.Context, *worker.Call) (any, error) {
		return os.Getpid(), nil
	})

	w.Method("env", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			Name any `json:"name"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		if name, ok := args.Name.(string); ok {
			if v, ok := os.LookupEnv(name); ok {
				return v, nil
			}
		}
		return nil, nil
	})

	w.Method("version", func(context.Context, *worker.Call) (any, error) {
		if v, ok := os.LookupEnv("POLYGLOT_VERSION"); ok {
			return v, nil
		}
		return nil, nil
	})

	w.Method("big", func(_ context.Context, call *worker.Call) (any, error) {
		var args struct {
			N any `json:"n"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		n, ok := nonNegativeInt(args.N)
		if !ok {
			return nil, worker.InvalidParams("big takes a length >= 0")
		}
		return strings.Repeat("x", n), nil
	})

	// stray prints to stdout the way careless code does; the SDK keeps it off the
	// protocol.
	w.Method("stray", func(context.Context, *worker.Call) (any, error) {
		fmt.Println("stray output from a handler")
		_, _ = syscall.Write(1, []byte("stray bytes on fd 1\n"))
		return "printed", nil
	})
	return w
}

func toBig(v any) *big.Int {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x)
	case uint64:
		return new(big.Int).SetUint64(x)
	}
	return new(big.Int)
}

// health follows TEST_HEALTH and TEST_HEALTH_FILE.
func health(context.Context) (map[string]any, error) {
	if os.Getenv("TEST_HEALTH") == "unhealthy" {
		return nil, worker.Errorf(worker.CodeUnhealthy, "unhealthy because TEST_HEALTH=unhealthy")
	}
	if path := os.Getenv("TEST_HEALTH_FILE"); path != "" {
		if _, err := os.Stat(path); err == nil {
			return nil, worker.Errorf(worker.CodeUnhealthy, "unhealthy while %s exists", path)
		}
	}
	if os.Getenv("TEST_HEALTH") == "degraded" {
		return map[string]any{"status": "degraded", "reason": "warming up"}, nil
	}
	return map[string]any{"pid": os.Getpid()}, nil
}
