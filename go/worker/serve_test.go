package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"polyglot.invalid/go/protocol"
)

// testWorker is a worker whose methods let tests hold calls, watch cancellation and
// make every kind of answer.
type testWorker struct {
	*Worker
	release   chan struct{} // closing it lets "hold" calls return
	cancelled chan any      // "hold" sends its id here when its ctx is cancelled
	started   chan any      // "hold" sends its id here when it starts
	running   atomic.Int64
	maxSeen   atomic.Int64
	notified  chan any // "note" sends its params here
}

func newTestWorker(opts ...Option) *testWorker {
	tw := &testWorker{
		Worker:    New("go-test", "2.3.4", opts...),
		release:   make(chan struct{}),
		cancelled: make(chan any, 100),
		started:   make(chan any, 100),
		notified:  make(chan any, 100),
	}
	w := tw.Worker
	w.Method("echo", func(_ context.Context, call *Call) (any, error) { return call.Params, nil })
	// hold waits until released or cancelled; it counts how many run at once.
	w.Method("hold", func(ctx context.Context, call *Call) (any, error) {
		n := tw.running.Add(1)
		defer tw.running.Add(-1)
		for {
			m := tw.maxSeen.Load()
			if n <= m || tw.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		tw.started <- call.ID()
		select {
		case <-tw.release:
			return "released", nil
		case <-ctx.Done():
			tw.cancelled <- call.ID()
			_ = call.Progress("after cancel") // dropped: the call was answered
			return "too late", nil
		}
	})
	w.Method("sleep", func(ctx context.Context, call *Call) (any, error) {
		var args struct {
			Ms int64 `json:"ms"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(args.Ms) * time.Millisecond):
			return args.Ms, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	w.Method("progress", func(_ context.Context, call *Call) (any, error) {
		for i := 1; i <= 3; i++ {
			if err := call.Progress(map[string]any{"step": i}); err != nil {
				return nil, err
			}
		}
		return 3, nil
	})
	w.Method("log", func(_ context.Context, call *Call) (any, error) {
		if err := call.Log("warn", "disk almost full", map[string]any{"free_mb": 12}); err != nil {
			return nil, err
		}
		if err := call.Log("loud", "x", nil); err == nil {
			return nil, errors.New("a bad level was accepted")
		}
		return "logged", nil
	})
	w.Method("boom", func(context.Context, *Call) (any, error) { panic("boom") })
	w.Method("plain", func(context.Context, *Call) (any, error) { return nil, fmt.Errorf("saving: %w", errPlain) })
	w.Method("coded", func(context.Context, *Call) (any, error) {
		return nil, fmt.Errorf("context: %w", Error{Code: "NOT_READY", Message: "model not loaded", Data: map[string]any{"eta": 3}})
	})
	w.Method("chan", func(context.Context, *Call) (any, error) { return map[string]any{"c": make(chan int)}, nil })
	w.Method("nilerr", func(context.Context, *Call) (any, error) {
		var e *Error
		return nil, e
	})
	w.Method("badmarshal", func(context.Context, *Call) (any, error) { return panicky{}, nil })
	w.Method("big", func(_ context.Context, call *Call) (any, error) {
		n, _ := call.Arg(0).(int64)
		return strings.Repeat("x", int(n)), nil
	})
	w.Method("note", func(_ context.Context, call *Call) (any, error) {
		tw.notified <- call.Params
		return nil, errors.New("a notification's error goes to stderr only")
	})
	w.Method("bytes", func(_ context.Context, call *Call) (any, error) {
		var args struct {
			Data []byte `json:"data"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		return append(args.Data, 0xff), nil
	})
	return tw
}

func TestHandshakeIsOneJSONLineWithEveryField(t *testing.T) {
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		tw := newTestWorker(WithMaxConcurrency(5))
		p := startPeer(t, tw.Worker, ServeOptions{Codec: codec})
		h := p.hello()
		want := &protocol.Handshake{
			Protocol: 1, Module: "go-test", Version: "2.3.4", Codec: codec, MaxConcurrency: 5,
			Language: "go", PID: h.PID,
			Methods: []string{"badmarshal", "big", "boom", "bytes", "chan", "coded", "echo", "hold", "log", "nilerr", "note", "plain", "progress", "sleep"},
		}
		if h.PID <= 0 || !reflect.DeepEqual(h, want) {
			t.Fatalf("%v handshake %+v, want %+v", codec, h, want)
		}
	}
}

func TestAnswersComeInCompletionOrder(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": "slow", "method": "hold"})
	<-tw.started
	p.send(map[string]any{"id": "fast", "method": "echo", "params": "quick"})
	first := p.recv()
	if first["id"] != "fast" || first["result"] != "quick" {
		t.Fatalf("first answer %v, want the fast one", first)
	}
	close(tw.release)
	second := p.recv()
	if second["id"] != "slow" || second["result"] != "released" {
		t.Fatalf("second answer %v", second)
	}
	if us, ok := second["executionTime"].(int64); !ok || us <= 0 {
		t.Fatalf("executionTime %v, want microseconds > 0", second["executionTime"])
	}
	if _, ok := second["timestamp"].(int64); !ok {
		t.Fatalf("no timestamp: %v", second)
	}
}

func TestManyCallsRunAtOnceUpToMaxConcurrency(t *testing.T) {
	tw := newTestWorker(WithMaxConcurrency(3))
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	for i := 0; i < 5; i++ {
		p.send(map[string]any{"id": i, "method": "hold"})
	}
	for i := 0; i < 3; i++ {
		<-tw.started // three run at once ...
	}
	// ... and the other two wait for a slot, while $health is still answered.
	if r := p.call("h", "$health", nil); !reflect.DeepEqual(mustResult(t, r), map[string]any{"status": "ok"}) {
		t.Fatalf("health %v", r)
	}
	select {
	case id := <-tw.started:
		t.Fatalf("call %v started beyond maxConcurrency", id)
	case <-time.After(50 * time.Millisecond):
	}
	close(tw.release)
	got := map[any]bool{}
	for i := 0; i < 5; i++ {
		m := p.recv()
		if m["result"] != "released" {
			t.Fatalf("got %v", m)
		}
		got[m["id"]] = true
	}
	if len(got) != 5 || tw.maxSeen.Load() != 3 {
		t.Fatalf("answered %v, at most %d at once; want 5 answers, 3 at once", got, tw.maxSeen.Load())
	}
}

func TestCancelAnswersAtOnceAndCancelsTheHandlerContext(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": 1, "method": "hold"})
	<-tw.started
	p.send(map[string]any{"method": "$cancel", "params": map[string]any{"id": 1}})
	r := p.recv()
	if r["id"] != int64(1) || errorCode(t, r) != CodeCancelled {
		t.Fatalf("got %v, want CANCELLED for 1", r)
	}
	select {
	case id := <-tw.cancelled:
		if id != int64(1) {
			t.Fatalf("cancelled %v", id)
		}
	case <-time.After(waitLimit):
		t.Fatal("the handler's ctx was not cancelled")
	}
	// The handler's late result and progress are dropped; the worker serves on. An
	// unknown or finished id is ignored; $cancel with an id is answered null.
	p.send(map[string]any{"method": "$cancel", "params": map[string]any{"id": 1}})
	if r := p.call("c", "$cancel", map[string]any{"id": 999}); r["result"] != nil || r["error"] != nil {
		t.Fatalf("$cancel with an id: %v", r)
	}
	if r := p.call(2, "echo", "still serving"); r["result"] != "still serving" {
		t.Fatalf("got %v", r)
	}
	p.noMessage(50 * time.Millisecond)
}

func TestProgressComesBeforeTheResultInOrder(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	var seen []map[string]any
	p.send(map[string]any{"id": 5, "method": "progress", "params": []any{3}})
	r := p.response(int64(5), &seen)
	if r["result"] != int64(3) {
		t.Fatalf("got %v", r)
	}
	want := []map[string]any{}
	for i := int64(1); i <= 3; i++ {
		want = append(want, map[string]any{"id": int64(5), "progress": map[string]any{"step": i}})
	}
	if !reflect.DeepEqual(seen[:len(seen)-1], want) {
		t.Fatalf("progress %v, want %v", seen[:len(seen)-1], want)
	}
}

func TestLogMessagesCarryLevelAndFields(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	var seen []map[string]any
	p.send(map[string]any{"id": 1, "method": "log"})
	if r := p.response(int64(1), &seen); r["result"] != "logged" {
		t.Fatalf("got %v", r)
	}
	want := map[string]any{"log": map[string]any{"level": "warn", "message": "disk almost full", "fields": map[string]any{"free_mb": int64(12)}}}
	if len(seen) != 2 || !reflect.DeepEqual(seen[0], want) {
		t.Fatalf("got %v, want the log first", seen)
	}
	if err := tw.Log("info", "from the worker", nil); err != nil {
		t.Fatal(err)
	}
	if m := p.recv(); !reflect.DeepEqual(m, map[string]any{"log": map[string]any{"level": "info", "message": "from the worker"}}) {
		t.Fatalf("got %v", m)
	}
}

func TestShutdownRefusesNewCallsAndDrainsTheOnesHeld(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": 1, "method": "hold"})
	p.send(map[string]any{"id": 2, "method": "hold"})
	<-tw.started
	<-tw.started
	if r := p.call("s", "$shutdown", nil); r["result"] != nil || r["error"] != nil {
		t.Fatalf("$shutdown with an id: %v", r)
	}
	if r := p.call(3, "echo", "x"); errorCode(t, r) != CodeShuttingDown {
		t.Fatalf("got %v", r)
	}
	if r := p.call(4, "$health", nil); errorCode(t, r) != CodeShuttingDown {
		t.Fatalf("got %v", r)
	}
	// $cancel still works while draining.
	p.send(map[string]any{"method": "$cancel", "params": map[string]any{"id": 2}})
	if r := p.recv(); r["id"] != int64(2) || errorCode(t, r) != CodeCancelled {
		t.Fatalf("got %v", r)
	}
	select {
	case r := <-p.ended:
		t.Fatalf("ServeIO returned %v with a call held", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(tw.release)
	if r := p.recv(); r["id"] != int64(1) || r["result"] != "released" {
		t.Fatalf("got %v", r)
	}
	if r := p.wait(); r.ended != Shutdown || r.err != nil {
		t.Fatalf("ended %v, %v; want shutdown", r.ended, r.err)
	}
}

func TestShutdownDrainsAlsoWhenTheInputEndsMeanwhile(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": 1, "method": "sleep", "params": []any{100}})
	p.send(map[string]any{"method": "$shutdown"})
	p.in.Close()
	if r := p.recv(); r["result"] != int64(100) {
		t.Fatalf("got %v", r)
	}
	if r := p.wait(); r.ended != Shutdown || r.err != nil {
		t.Fatalf("ended %v, %v", r.ended, r.err)
	}
}

func TestInputEndStopsAtOnceAbandoningRunningCalls(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": 1, "method": "hold"})
	<-tw.started
	start := time.Now()
	p.in.Close()
	if r := p.wait(); r.ended != InputClosed || r.err != nil {
		t.Fatalf("ended %v, %v", r.ended, r.err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v to stop", d)
	}
	select {
	case <-tw.cancelled: // the abandoned call's ctx was cancelled
	case <-time.After(waitLimit):
		t.Fatal("the running call's ctx was not cancelled")
	}
}

func TestServeIOStopsWhenItsContextIsCancelled(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.cancel()
	if r := p.wait(); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("got %v, %v", r.ended, r.err)
	}
}

func TestDuplicateIDOfARunningCallIsRefused(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"id": 7, "method": "hold"})
	<-tw.started
	p.send(map[string]any{"id": 7, "method": "echo", "params": 1})
	if r := p.recv(); r["id"] != int64(7) || errorCode(t, r) != CodeInvalidRequest {
		t.Fatalf("got %v", r)
	}
	close(tw.release)
	if r := p.recv(); r["id"] != int64(7) || r["result"] != "released" {
		t.Fatalf("the running call was disturbed: %v", r)
	}
	// Once answered, the id may be used again.
	if r := p.call(7, "echo", 2); r["result"] != int64(2) {
		t.Fatalf("got %v", r)
	}
}

func TestInvalidRequestsAreAnsweredWhenTheirIDCanBeRead(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.sendRaw([]byte("{\"id\":5,\"method\":\n")) // not JSON, id readable
	if r := p.recv(); r["id"] != int64(5) || errorCode(t, r) != CodeInvalidRequest || !strings.Contains(errorMessage(r), "JSON") {
		t.Fatalf("got %v", r)
	}
	p.sendRaw([]byte("{\"id\":\"x\",\"method\":[1]}\n")) // valid JSON, bad envelope
	if r := p.recv(); r["id"] != "x" || errorCode(t, r) != CodeInvalidRequest || !strings.Contains(errorMessage(r), "method") {
		t.Fatalf("got %v", r)
	}
	p.sendRaw([]byte("hello\n{\"id\":1.5,\"method\":\"echo\"}\n\n")) // no id: dropped (stderr)
	if r := p.call(6, "echo", "after"); r["result"] != "after" {
		t.Fatalf("got %v", r)
	}
	p.noMessage(20 * time.Millisecond)
}

func TestUnknownMethodsAndReservedNames(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	r := p.call(1, "nope", nil)
	if errorCode(t, r) != CodeMethodNotFound || !strings.Contains(errorMessage(r), "echo") {
		t.Fatalf("got %v", r)
	}
	if r := p.call(2, "$nope", nil); errorCode(t, r) != CodeMethodNotFound {
		t.Fatalf("got %v", r)
	}
	p.send(map[string]any{"method": "nope"})
	p.send(map[string]any{"method": "$health"})
	p.noMessage(20 * time.Millisecond)
}

func TestNotificationsRunButAreNeverAnswered(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.send(map[string]any{"method": "note", "params": []any{"n1"}})
	select {
	case v := <-tw.notified:
		if !reflect.DeepEqual(v, []any{"n1"}) {
			t.Fatalf("params %v", v)
		}
	case <-time.After(waitLimit):
		t.Fatal("the notification did not run")
	}
	if r := p.call(1, "echo", 1); r["result"] != int64(1) {
		t.Fatalf("got %v", r)
	}
	p.noMessage(20 * time.Millisecond)
}

func TestFailuresBecomeErrorResponses(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	r := p.call(1, "boom", nil)
	if errorCode(t, r) != CodeInternal || errorMessage(r) != "the method panicked: boom" {
		t.Fatalf("panic: %v", r)
	}
	r = p.call(2, "plain", nil)
	if errorCode(t, r) != CodeInternal || errorMessage(r) != "saving: disk on fire" {
		t.Fatalf("plain error: %v", r)
	}
	r = p.call(3, "coded", nil)
	want := map[string]any{"code": "NOT_READY", "message": "model not loaded", "data": map[string]any{"eta": int64(3)}}
	if !reflect.DeepEqual(r["error"], want) {
		t.Fatalf("wrapped worker.Error: %v", r)
	}
	r = p.call(4, "chan", nil)
	if errorCode(t, r) != CodeInternal || !strings.Contains(errorMessage(r), "$.c") {
		t.Fatalf("unencodable result: %v", r)
	}
	r = p.call(41, "nilerr", nil)
	if errorCode(t, r) != CodeInternal || !strings.Contains(errorMessage(r), "nil *worker.Error") {
		t.Fatalf("nil *Error: %v", r)
	}
	r = p.call(42, "badmarshal", nil)
	if errorCode(t, r) != CodeInternal || !strings.Contains(errorMessage(r), "panicked: marshal boom") {
		t.Fatalf("a panicking MarshalJSON: %v", r)
	}
	r = p.call(5, "sleep", []any{"soon"})
	if errorCode(t, r) != CodeInvalidParams || errorMessage(r) != "sleep: params.ms: expected an integer, got a string" {
		t.Fatalf("bad params: %v", r)
	}
	if r := p.call(6, "echo", "alive"); r["result"] != "alive" {
		t.Fatalf("the worker did not survive: %v", r)
	}
}

func TestOversizeFramesAreRefusedNotBuffered(t *testing.T) {
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		t.Run(codec.String(), func(t *testing.T) {
			tw := newTestWorker()
			p := startPeer(t, tw.Worker, ServeOptions{Codec: codec, MaxFrame: 200})
			p.hello()
			p.send(map[string]any{"id": 1, "method": "echo", "params": strings.Repeat("y", 1000)})
			r := p.recv()
			if r["id"] != int64(1) || errorCode(t, r) != CodeFrameTooLarge {
				t.Fatalf("oversize request: %v", r)
			}
			if r := p.call(2, "big", []any{10}); r["result"] != "xxxxxxxxxx" {
				t.Fatalf("got %v", r)
			}
			r = p.call(3, "big", []any{500})
			if errorCode(t, r) != CodeFrameTooLarge || !strings.Contains(errorMessage(r), "limit of 200 bytes") {
				t.Fatalf("oversize response: %v", r)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	var fail atomic.Value
	fail.Store(0)
	tw := newTestWorker(WithHealth(func(context.Context) (map[string]any, error) {
		switch fail.Load().(int) {
		case 1:
			return nil, errors.New("no GPU")
		case 2:
			return nil, &Error{Code: "DEGRADED_HARD", Message: "half broken"}
		case 3:
			panic("health panic")
		}
		return map[string]any{"status": "degraded", "reason": "warming up", "load": 0.5}, nil
	}))
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	r := p.call(1, "$health", nil)
	want := map[string]any{"status": "degraded", "reason": "warming up", "load": 0.5}
	if !reflect.DeepEqual(mustResult(t, r), want) {
		t.Fatalf("got %v", r)
	}
	fail.Store(1)
	if r := p.call(2, "$health", nil); errorCode(t, r) != CodeUnhealthy || errorMessage(r) != "no GPU" {
		t.Fatalf("got %v", r)
	}
	fail.Store(2)
	if r := p.call(3, "$health", nil); errorCode(t, r) != "DEGRADED_HARD" {
		t.Fatalf("got %v", r)
	}
	fail.Store(3)
	if r := p.call(4, "$health", nil); errorCode(t, r) != CodeUnhealthy {
		t.Fatalf("got %v", r)
	}
}

func TestMsgpackEndToEndKeepsBinaryAndIDs(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{Codec: protocol.Msgpack})
	p.hello()
	r := p.call(uint64(18446744073709551615), "bytes", map[string]any{"data": []byte{0, 1}})
	if r["id"] != uint64(18446744073709551615) || !bytes.Equal(r["result"].([]byte), []byte{0, 1, 0xff}) {
		t.Fatalf("got %#v", r)
	}
	r = p.call(int64(-4), "echo", []any{1.5, "é", nil, true, map[string]any{}})
	if r["id"] != int64(-4) || !reflect.DeepEqual(r["result"], []any{1.5, "é", nil, true, map[string]any{}}) {
		t.Fatalf("got %#v", r)
	}
}

func TestJSONBinaryIsBytesInTheHandler(t *testing.T) {
	tw := newTestWorker()
	p := startPeer(t, tw.Worker, ServeOptions{})
	p.hello()
	p.sendRaw([]byte(`{"id":"b","method":"bytes","params":{"data":{"$bytes":"AAE="}}}` + "\n"))
	if r := p.recv(); !bytes.Equal(r["result"].([]byte), []byte{0, 1, 0xff}) {
		t.Fatalf("got %#v", r)
	}
}

func TestBurstsOfResponsesLeaveInOneWrite(t *testing.T) {
	// The first write (the handshake, maybe with some responses) is held back until
	// every response is queued: then all the others must leave in one second write.
	gate := make(chan struct{})
	tw := newTestWorker()
	p := startPeerGated(t, tw.Worker, ServeOptions{}, gate)
	const n = 50
	var batch []byte
	for i := 0; i < n; i++ {
		frame, _, _ := protocol.JSON.EncodeFrame(nil, map[string]any{"id": i, "method": "echo", "params": i})
		batch = append(batch, frame...)
	}
	go p.in.Write(batch)
	waitFor(t, "every response is queued", func() bool {
		tw.mu.Lock()
		var c *conn
		if len(tw.serving) > 0 {
			c = tw.serving[0]
		}
		tw.mu.Unlock()
		if c == nil {
			return false
		}
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		return p.held.Load()+int64(bytes.Count(c.out.buf, []byte("\n"))) == n+1
	})
	close(gate)
	p.hello()
	for i := 0; i < n; i++ {
		p.recv()
	}
	if w := p.writes.Load(); w > 2 {
		t.Fatalf("%d writes for the handshake and a burst of %d responses, want 2", w, n)
	}
}

func TestCallHelpers(t *testing.T) {
	c := &Call{Method: "m", Params: []any{"a", int64(2)}}
	if c.Arg(0) != "a" || c.Arg(1) != int64(2) || c.Arg(2) != nil || c.Arg(-1) != nil {
		t.Fatal("Arg on an array")
	}
	if (&Call{Params: "solo"}).Arg(0) != "solo" || (&Call{Params: "solo"}).Arg(1) != nil {
		t.Fatal("Arg on a scalar")
	}
	if (&Call{Params: map[string]any{"a": 1}}).Arg(0) != nil || (&Call{}).Arg(0) != nil {
		t.Fatal("Arg on an object or null")
	}
	var args struct {
		Text  string `json:"text"`
		Times int    `json:"times,omitempty"`
	}
	err := (&Call{Method: "m", Params: map[string]any{"txt": "x"}}).Bind(&args)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidParams || e.Message != "m: params.txt: unknown field (known: text, times)" {
		t.Fatalf("got %v", err)
	}
	if err := (&Call{Method: "m", Params: []any{"x"}}).Bind(&args); err != nil || args.Text != "x" {
		t.Fatalf("positional: %v %+v", err, args)
	}
	if err := (&Call{Method: "m"}).Bind(&args); err == nil || !strings.Contains(err.Error(), "params.text: missing") {
		t.Fatalf("missing: %v", err)
	}
	if (&Call{id: protocol.StringID("s")}).ID() != "s" || (&Call{}).ID() != nil {
		t.Fatal("ID")
	}
	timeout, ok := (&Call{timeout: time.Second}).Timeout()
	if !ok || timeout != time.Second {
		t.Fatal("Timeout")
	}
	// Outside a served connection progress and logs do nothing (logs go to stderr).
	if err := (&Call{}).Progress(make(chan int)); err != nil {
		t.Fatal(err)
	}
}

func TestCallRunsAMethodInProcess(t *testing.T) {
	tw := newTestWorker()
	got, err := tw.Call(context.Background(), "echo", []string{"a", "b"})
	if err != nil || !reflect.DeepEqual(got, []any{"a", "b"}) {
		t.Fatalf("got %#v, %v", got, err)
	}
	_, err = tw.Call(context.Background(), "boom", nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal {
		t.Fatalf("got %v", err)
	}
	_, err = tw.Call(context.Background(), "nope", nil)
	if !errors.As(err, &e) || e.Code != CodeMethodNotFound {
		t.Fatalf("got %v", err)
	}
}

func TestMethodRegistrationRefusesMistakes(t *testing.T) {
	fn := func(context.Context, *Call) (any, error) { return nil, nil }
	for name, register := range map[string]func(w *Worker){
		"empty":    func(w *Worker) { w.Method("", fn) },
		"reserved": func(w *Worker) { w.Method("$x", fn) },
		"nil":      func(w *Worker) { w.Method("x", nil) },
		"twice":    func(w *Worker) { w.Method("x", fn); w.Method("x", fn) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			register(New("m", "1"))
		}()
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	_, err := configFromEnv("text-go", env())
	if !errors.Is(err, ErrNotStartedByHost) || !strings.Contains(err.Error(), `polyglot worker for module "text-go"`) ||
		!strings.Contains(err.Error(), "polyglot-host") {
		t.Fatalf("run by hand: %v", err)
	}
	cfg, err := configFromEnv("m", env("POLYGLOT_PROTOCOL", "1", "POLYGLOT_CODEC", "msgpack", "POLYGLOT_MAX_FRAME", "1000"))
	if err != nil || cfg.opts.Codec != protocol.Msgpack || cfg.opts.MaxFrame != 1000 || cfg.transport != "stdio" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	cfg, err = configFromEnv("m", env("POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "socket", "POLYGLOT_SOCKET", "/tmp/s"))
	if err != nil || cfg.transport != "socket" || cfg.socket != "/tmp/s" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	cfg, err = configFromEnv("m", env("POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "grpc"))
	if err != nil || cfg.transport != "grpc" || cfg.listen != "" {
		t.Fatalf("grpc, host-started: got %+v, %v", cfg, err)
	}
	cfg, err = configFromEnv("m", env("POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "grpc", "POLYGLOT_GRPC_LISTEN", "0.0.0.0:7070"))
	if err != nil || cfg.transport != "grpc" || cfg.listen != "0.0.0.0:7070" {
		t.Fatalf("grpc, remote: got %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "grpc", "POLYGLOT_GRPC_LISTEN", "7070"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "grpc", "POLYGLOT_GRPC_LISTEN", "unix:"},
		{"POLYGLOT_PROTOCOL", "2"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_CODEC", "xml"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_MAX_FRAME", "lots"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_MAX_FRAME", "0"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "carrier-pigeon"},
		{"POLYGLOT_PROTOCOL", "1", "POLYGLOT_TRANSPORT", "socket"},
	} {
		var ee *EnvError
		if _, err := configFromEnv("m", env(bad...)); !errors.As(err, &ee) || !strings.Contains(err.Error(), ee.Variable) {
			t.Errorf("%v: got %v", bad, err)
		}
	}
}

func TestParseListen(t *testing.T) {
	for _, c := range []struct{ in, network, addr string }{
		{"0.0.0.0:7070", "tcp", "0.0.0.0:7070"},
		{"[::1]:0", "tcp", "[::1]:0"},
		{"unix:/run/w.sock", "unix", "/run/w.sock"},
		{"unix:///run/w.sock", "unix", "/run/w.sock"},
	} {
		network, addr, err := parseListen(c.in)
		if err != nil || network != c.network || addr != c.addr {
			t.Errorf("%s: %s %s %v", c.in, network, addr, err)
		}
	}
	if _, addr, err := parseListen("unix:w.sock"); err != nil || !strings.HasPrefix(addr, "/") {
		t.Errorf("a relative socket path is made absolute: %s %v", addr, err)
	}
}

func TestOutputStopsOnAWriteError(t *testing.T) {
	tw := newTestWorker()
	inR, inW := io.Pipe()
	defer inW.Close()
	done := make(chan error, 1)
	go func() {
		_, err := tw.ServeIO(context.Background(), inR, failingWriter{}, ServeOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "writing to the host") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("ServeIO did not stop on a broken output")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// Regression: a call's answer could be dropped when it was the last one a $shutdown
// waited for: the call left the table of calls before its answer was queued, the worker
// counted itself drained in between, closed its output, and the answer was lost.
func TestShutdownNeverDropsTheLastAnswers(t *testing.T) {
	for i := 0; i < 2000; i++ {
		var send []any
		for id := 0; id < 5; id++ {
			send = append(send, map[string]any{"id": id, "method": "echo", "params": id})
		}
		_, got := runSession(t, newTestWorker().Worker, protocol.JSON, send)
		if len(got) != 5 {
			t.Fatalf("round %d: %d answers to 5 calls: %v", i, len(got), got)
		}
	}
}

// panicky is a value whose MarshalJSON panics.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("marshal boom") }
