package client

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/internal/hosttest"
	"polyglot.invalid/go/protocol"
)

// waitLimit bounds every RPC of these tests.
const waitLimit = 10 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, h *hosttest.Host, opts ...Option) *Client {
	t.Helper()
	c, err := Dial("http://"+h.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// asError is err as an *Error, failing the test when it is not one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not a *client.Error: %T %v", err, err)
	}
	return e
}

func TestCallGivesTheDecodedResultAndWhoServedIt(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{})
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		c := dial(t, h, WithCodec(codec))
		r, err := c.Call(ctxFor(t), "calc", "add", []int{2, 40})
		if err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		if r.Value != int64(42) || r.Codec != codec || r.ServedBy != "calc" || r.Version != hosttest.Version ||
			r.ExecutionTime != hosttest.ExecutionTimeUs*time.Microsecond || r.Fallback {
			t.Fatalf("%v: %+v", codec, r)
		}
		var n int
		if err := r.Bind(&n); err != nil || n != 42 {
			t.Fatalf("%v: Bind: %d, %v", codec, n, err)
		}
		blob := []byte{0, 1, 254, 255}
		r, err = c.Call(ctxFor(t), "calc", "echo", []any{map[string]any{"b": blob, "n": uint64(1 << 63), "s": "é"}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"b": blob, "n": uint64(1 << 63), "s": "é"}
		if !reflect.DeepEqual(r.Value, want) {
			t.Fatalf("%v: echo %#v, want %#v", codec, r.Value, want)
		}
		// Empty params are null.
		if r, err := c.Call(ctxFor(t), "calc", "echo", nil); err != nil || r.Value != nil {
			t.Fatalf("%v: echo(null): %v, %v", codec, r, err)
		}
	}
	// Raw params go as they are.
	c := dial(t, h)
	if r, err := c.Call(ctxFor(t), "calc", "add", Raw(`[1, 2]`)); err != nil || r.Value != int64(3) || string(r.Raw) != "3" {
		t.Fatalf("raw params: %v, %v", r, err)
	}
	// Params that cannot be encoded are refused before anything is sent.
	if _, err := c.Call(ctxFor(t), "calc", "echo", []any{make(chan int)}); err == nil || errors.As(err, new(*Error)) {
		t.Fatalf("a channel as params: %v", err)
	}
}

func TestTheAPIKeyIsSentAsABearerToken(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{APIKey: "s3cret"})
	_, err := dial(t, h).Call(ctxFor(t), "calc", "add", []int{1, 2})
	if e := asError(t, err); e.Code != codes.Unauthenticated || e.Detail != nil || !strings.Contains(e.Message, "API key is required") {
		t.Fatalf("without a key: %v", err)
	}
	_, err = dial(t, h, WithAPIKey("wrong")).Call(ctxFor(t), "calc", "add", []int{1, 2})
	if e := asError(t, err); e.Code != codes.Unauthenticated || e.Message != "wrong API key" {
		t.Fatalf("a wrong key: %v", err)
	}
	c := dial(t, h, WithAPIKey("s3cret"))
	if r, err := c.Call(ctxFor(t), "calc", "add", []int{1, 2}); err != nil || r.Value != int64(3) {
		t.Fatalf("the right key: %v, %v", r, err)
	}
	if _, err := c.ListModules(ctxFor(t)); err != nil {
		t.Fatalf("the right key, ListModules: %v", err)
	}
	if _, err := Dial("http://"+h.Addr, WithAPIKey("a\nb")); err == nil {
		t.Fatal("a key with a newline was taken")
	}
}

// TestPlainGRPCReadsTheDetail checks that the test host sends its detail the standard way,
// as the host does: plain grpc-go, without package client, gets the code, the message and
// the ErrorDetail from status.FromError(err).Details().
func TestPlainGRPCReadsTheDetail(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{})
	conn, err := grpc.NewClient(h.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = polyglotv1.NewRuntimeClient(conn).Call(ctxFor(t), &polyglotv1.CallRequest{Module: "nope", Method: "x"})
	st, _ := status.FromError(err)
	if st.Code() != codes.NotFound || st.Message() != `no module named "nope" is loaded` || len(st.Details()) != 1 {
		t.Fatalf("%v: details %v", err, st.Details())
	}
	if d, ok := st.Details()[0].(*polyglotv1.ErrorDetail); !ok || d.GetKind() != KindModuleNotFound || d.GetModule() != "nope" {
		t.Fatalf("the detail: %T %v", st.Details()[0], st.Details()[0])
	}
}

// TestErrorsGiveTheCodeMessageAndDetailTheHostSent reads the host's errors: the status's
// code and message, and the ErrorDetail in its details.
func TestErrorsGiveTheCodeMessageAndDetailTheHostSent(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{})
	c := dial(t, h)
	check := func(what string, err error, code codes.Code, kind, message string) *Error {
		t.Helper()
		e := asError(t, err)
		if e.Code != code || e.Kind() != kind || !strings.Contains(e.Message, message) {
			t.Fatalf("%s: %v (code %v, kind %q), want %v, %q, %q", what, err, e.Code, e.Kind(), code, kind, message)
		}
		if status.Code(err) != code {
			t.Fatalf("%s: status.Code gives %v", what, status.Code(err))
		}
		return e
	}
	_, err := c.Call(ctxFor(t), "nope", "add", nil)
	e := check("unknown module", err, codes.NotFound, KindModuleNotFound, `no module named "nope" is loaded`)
	if e.Detail.GetModule() != "nope" || e.Error() != `NOT_FOUND (module_not_found): no module named "nope" is loaded` {
		t.Fatalf("unknown module: %q, %v", e.Error(), e.Detail)
	}
	_, err = c.Call(ctxFor(t), "calc", "nope", nil)
	check("unknown method", err, codes.NotFound, KindMethodNotFound, `has no method "nope"`)

	_, err = c.Call(ctxFor(t), "calc", "add", []any{1, "x"})
	e = check("invalid params", err, codes.InvalidArgument, KindRemote, "INVALID_PARAMS")
	if data, err := e.Data(); e.RemoteCode() != "INVALID_PARAMS" || e.RemoteMessage() != "add takes two integers" ||
		err != nil || !reflect.DeepEqual(data, map[string]any{"got": "not integers"}) {
		t.Fatalf("invalid params: %q %q %v %v", e.RemoteCode(), e.RemoteMessage(), data, err)
	}
	_, err = c.Call(ctxFor(t), "calc", "fail", []any{"NOT_READY", "no model"})
	e = check("a method's error", err, codes.Unknown, KindRemote, "NOT_READY: no model")
	if data, _ := e.Data(); e.RemoteCode() != "NOT_READY" || !reflect.DeepEqual(data, map[string]any{"why": []any{"a", int64(1)}}) {
		t.Fatalf("a method's error: %q %v", e.RemoteCode(), data)
	}
	_, err = c.Call(ctxFor(t), "calc", "down", nil)
	e = check("unavailable", err, codes.Unavailable, KindUnavailable, "no instance")
	if !reflect.DeepEqual(e.Causes(), []string{"calc: every instance is restarting"}) {
		t.Fatalf("causes: %v", e.Causes())
	}
	_, err = c.Call(ctxFor(t), "calc", "sleep", []any{5000}, WithTimeout(50*time.Millisecond))
	check("a timeout", err, codes.DeadlineExceeded, KindTimeout, "timed out after 50 ms")
	if !IsKind(err, KindTimeout) || IsKind(err, KindRemote) || IsKind(errors.New("x"), KindTimeout) {
		t.Fatal("IsKind")
	}

	// The same through the other RPCs.
	_, err = c.CallStream(ctxFor(t), "nope", "x", nil, nil)
	check("CallStream, unknown module", err, codes.NotFound, KindModuleNotFound, "nope")
	_, err = c.GetModule(ctxFor(t), "nope")
	check("GetModule, unknown module", err, codes.NotFound, KindModuleNotFound, "nope")
}

func TestErrorsOfTheConnectionAndTheContext(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{})
	c := dial(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	_, err := c.Call(ctx, "calc", "sleep", []any{5000})
	if e := asError(t, err); e.Code != codes.Canceled || e.Detail != nil {
		t.Fatalf("cancelled: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Call(ctx, "calc", "sleep", []any{5000})
	if e := asError(t, err); e.Code != codes.DeadlineExceeded || e.Kind() != "" {
		t.Fatalf("past the deadline: %v", err)
	}

	// Nothing listens: Unavailable.
	lis := hosttest.Start(t, hosttest.Options{}).Addr
	closed, err := Dial("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	_, err = closed.Call(ctxFor(t), "calc", "add", []int{1, 2})
	if e := asError(t, err); e.Code != codes.Unavailable {
		t.Fatalf("nothing listening: %v", err)
	}
	// host:port without a scheme is plain text.
	bare, err := Dial(lis)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if r, err := bare.Call(ctxFor(t), "calc", "add", []int{1, 2}); err != nil || r.Value != int64(3) {
		t.Fatalf("host:port: %v, %v", r, err)
	}
}

func TestCallStreamGivesProgressInOrderThenTheResult(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{})
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		c := dial(t, h, WithCodec(codec))
		var seen []any
		r, err := c.CallStream(ctxFor(t), "calc", "progress", []any{3}, func(v any) { seen = append(seen, v) })
		if err != nil {
			t.Fatal(err)
		}
		want := []any{map[string]any{"step": int64(1)}, map[string]any{"step": int64(2)}, map[string]any{"step": int64(3)}}
		if r.Value != int64(3) || !reflect.DeepEqual(seen, want) {
			t.Fatalf("%v: %v after %v", codec, r.Value, seen)
		}
		// Without a progress function the progress is skipped.
		if r, err := c.CallStream(ctxFor(t), "calc", "progress", []any{2}, nil); err != nil || r.Value != int64(2) {
			t.Fatalf("%v: without progress: %v, %v", codec, r, err)
		}
	}
	_, err := dial(t, h).CallStream(ctxFor(t), "calc", "fail", []any{"NOT_READY", "later"}, nil)
	if e := asError(t, err); e.Kind() != KindRemote || e.RemoteCode() != "NOT_READY" {
		t.Fatalf("an error in the stream: %v", err)
	}
}

func TestModulesReloadAndEvents(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{APIKey: "k"})
	c := dial(t, h, WithAPIKey("k"))
	mods, err := c.ListModules(ctxFor(t))
	if err != nil || len(mods) != 1 || mods[0].GetName() != "calc" || mods[0].GetVersion() != hosttest.Version {
		t.Fatalf("ListModules: %v, %v", mods, err)
	}
	m, err := c.GetModule(ctxFor(t), "calc")
	if err != nil || m.GetHealth() != "healthy" || len(m.GetInstances()) != 1 {
		t.Fatalf("GetModule: %v, %v", m, err)
	}

	events, err := c.WatchEvents(ctxFor(t), "calc")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for h.Watchers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch never reached the host")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rr, err := c.Reload(ctxFor(t), "calc")
	if err != nil || rr.GetOldVersion() != hosttest.Version || rr.GetNewVersion() != hosttest.ReloadedVersion {
		t.Fatalf("Reload: %v, %v", rr, err)
	}
	ev, err := events.Recv()
	if err != nil || ev.GetModule() != "calc" || ev.GetReloadDone().GetNewVersion() != hosttest.ReloadedVersion {
		t.Fatalf("event: %v, %v", ev, err)
	}
	events.Close()
	if _, err := events.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after Close: %v", err)
	}
	if r, err := c.Call(ctxFor(t), "calc", "add", []int{1, 1}); err != nil || r.Version != hosttest.ReloadedVersion {
		t.Fatalf("after the reload: %v, %v", r, err)
	}
	if _, err := c.Reload(ctxFor(t), "nope"); status.Code(err) != codes.NotFound {
		t.Fatalf("reloading an unknown module: %v", err)
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		target string
		addr   string
		secure bool
	}{
		{"http://127.0.0.1:50051", "127.0.0.1:50051", false},
		{"http://127.0.0.1:50051/", "127.0.0.1:50051", false},
		{"https://api.example.com", "api.example.com:443", true},
		{"http://[::1]:7070", "[::1]:7070", false},
		{"127.0.0.1:50051", "127.0.0.1:50051", false},
		{"unix:/run/host.sock", "unix:/run/host.sock", false},
	} {
		addr, secure, err := parseTarget(c.target)
		if err != nil || addr != c.addr || secure != c.secure {
			t.Errorf("%s: %q %v %v, want %q %v", c.target, addr, secure, err, c.addr, c.secure)
		}
	}
	for _, bad := range []string{"", "ftp://host:1", "http://host:1/path", "http://"} {
		if _, _, err := parseTarget(bad); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}
