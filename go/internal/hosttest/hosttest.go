// Package hosttest serves polyglot.v1.Runtime on a loopback port the way polyglot-host
// does on the wire, for the tests of package client and of the client example, which
// cannot start the Rust host: one module "calc" whose methods answer, fail, stream
// progress and time out; errors as statuses whose details carry an ErrorDetail; an API
// key checked as the host checks it. The Rust test-suite runs the same client example
// against the real host.
//
// Like the host, it sends an error's ErrorDetail the standard way: as an Any in the
// google.rpc.Status of grpc-status-details-bin (status.WithDetails).
package hosttest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// Module is the one module the test host serves, at Version.
const (
	Module  = "calc"
	Version = "1.2.0"
	// ReloadedVersion is the version after a Reload.
	ReloadedVersion = "1.3.0"
	// ExecutionTimeUs is the execution time every call reports.
	ExecutionTimeUs = 42
)

// Options configure a test host.
type Options struct {
	// APIKey, when set, is required of every RPC: `authorization: Bearer KEY` or
	// `x-api-key: KEY`.
	APIKey string
}

// Host is a running test host.
type Host struct {
	// Addr is where it listens, host:port.
	Addr string

	opts     Options
	mu       sync.Mutex
	version  string
	watchers map[chan *polyglotv1.Event]map[string]bool
}

// Start serves a test host on 127.0.0.1 until the test ends.
func Start(t testing.TB, opts Options) *Host {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Addr: lis.Addr().String(), opts: opts, version: Version, watchers: map[chan *polyglotv1.Event]map[string]bool{}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(h.authUnary), grpc.StreamInterceptor(h.authStream))
	polyglotv1.RegisterRuntimeServer(srv, &runtime{h: h})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return h
}

// check is the host's API key check.
func (h *Host) check(ctx context.Context) error {
	if h.opts.APIKey == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var given string
	if v := md.Get("authorization"); len(v) > 0 && strings.HasPrefix(v[0], "Bearer ") {
		given = strings.TrimPrefix(v[0], "Bearer ")
	} else if v := md.Get("x-api-key"); len(v) > 0 {
		given = v[0]
	} else {
		return status.Error(codes.Unauthenticated, "an API key is required: send `authorization: Bearer <key>` or `x-api-key: <key>`")
	}
	if given != h.opts.APIKey {
		return status.Error(codes.Unauthenticated, "wrong API key")
	}
	return nil
}

func (h *Host) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := h.check(ctx); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (h *Host) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := h.check(ss.Context()); err != nil {
		return err
	}
	return next(srv, ss)
}

// fail is an error status with d in its details, as the host sends it.
func fail(code codes.Code, msg string, d *polyglotv1.ErrorDetail) error {
	st, err := status.New(code, msg).WithDetails(d)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// emit sends an event to the watchers of its module.
func (h *Host) emit(ev *polyglotv1.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, only := range h.watchers {
		if len(only) == 0 || only[ev.GetModule()] {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// runtime is the service.
type runtime struct {
	polyglotv1.UnimplementedRuntimeServer
	h *Host
}

func codecOf(c polyglotv1.Codec) protocol.Codec {
	if c == polyglotv1.Codec_CODEC_MSGPACK {
		return protocol.Msgpack
	}
	return protocol.JSON
}

// call runs one call of the module; progress gets each progress value.
func (r *runtime) call(ctx context.Context, req *polyglotv1.CallRequest, progress func(any) error) (*polyglotv1.CallResponse, error) {
	h := r.h
	codec := codecOf(req.GetCodec())
	var params any
	if len(req.GetParams()) > 0 {
		p, err := codec.Decode(req.GetParams())
		if err != nil {
			return nil, fail(codes.InvalidArgument, "the params are not valid: "+err.Error(),
				&polyglotv1.ErrorDetail{Kind: "invalid_argument", Module: req.GetModule(), Method: req.GetMethod()})
		}
		params = p
	}
	module, method := req.GetModule(), req.GetMethod()
	if module != Module {
		return nil, fail(codes.NotFound, fmt.Sprintf("no module named %q is loaded", module),
			&polyglotv1.ErrorDetail{Kind: "module_not_found", Module: module})
	}
	remote := func(code codes.Code, errCode, message, dataJSON string) error {
		return fail(code, fmt.Sprintf("%s.%s failed: %s: %s", module, method, errCode, message),
			&polyglotv1.ErrorDetail{Kind: "remote", Module: module, Method: method, Code: errCode, Message: message, DataJson: dataJSON})
	}
	args, _ := params.([]any)
	var result any
	switch method {
	case "add":
		if len(args) != 2 {
			return nil, remote(codes.InvalidArgument, "INVALID_PARAMS", "add takes two integers", fmt.Sprintf(`{"got":%d}`, len(args)))
		}
		a, ok1 := args[0].(int64)
		b, ok2 := args[1].(int64)
		if !ok1 || !ok2 {
			return nil, remote(codes.InvalidArgument, "INVALID_PARAMS", "add takes two integers", `{"got":"not integers"}`)
		}
		result = a + b
	case "echo":
		result = params
		if len(args) == 1 {
			result = args[0]
		}
	case "progress":
		n, _ := args[0].(int64)
		for i := int64(1); i <= n; i++ {
			if err := progress(map[string]any{"step": i}); err != nil {
				return nil, err
			}
		}
		result = n
	case "fail":
		code, _ := args[0].(string)
		message, _ := args[1].(string)
		return nil, remote(codes.Unknown, code, message, `{"why":["a",1]}`)
	case "sleep":
		ms, _ := args[0].(int64)
		limit := time.Duration(ms) * time.Millisecond
		if req.TimeoutMs != nil && time.Duration(*req.TimeoutMs)*time.Millisecond < limit {
			time.Sleep(time.Duration(*req.TimeoutMs) * time.Millisecond)
			return nil, fail(codes.DeadlineExceeded, fmt.Sprintf("%s.%s timed out after %d ms", module, method, *req.TimeoutMs),
				&polyglotv1.ErrorDetail{Kind: "timeout", Module: module, Method: method})
		}
		select {
		case <-time.After(limit):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		result = ms
	case "down":
		return nil, fail(codes.Unavailable, fmt.Sprintf("%s.%s: no instance can take the call", module, method),
			&polyglotv1.ErrorDetail{Kind: "unavailable", Module: module, Method: method,
				Causes: []*polyglotv1.Cause{{Implementation: "calc", Reason: "every instance is restarting"}}})
	default:
		return nil, fail(codes.NotFound, fmt.Sprintf("module %q has no method %q", module, method),
			&polyglotv1.ErrorDetail{Kind: "method_not_found", Module: module, Method: method})
	}
	out, err := codec.Encode(result)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	wire := polyglotv1.Codec_CODEC_JSON
	if codec == protocol.Msgpack {
		wire = polyglotv1.Codec_CODEC_MSGPACK
	}
	h.mu.Lock()
	version := h.version
	h.mu.Unlock()
	return &polyglotv1.CallResponse{Result: out, Codec: wire, ServedBy: Module, Version: version,
		Instance: 0, ExecutionTimeUs: ExecutionTimeUs}, nil
}

func (r *runtime) Call(ctx context.Context, req *polyglotv1.CallRequest) (*polyglotv1.CallResponse, error) {
	return r.call(ctx, req, func(any) error { return nil })
}

func (r *runtime) CallStream(req *polyglotv1.CallRequest, stream polyglotv1.Runtime_CallStreamServer) error {
	codec := codecOf(req.GetCodec())
	resp, err := r.call(stream.Context(), req, func(v any) error {
		b, err := codec.Encode(v)
		if err != nil {
			return err
		}
		return stream.Send(&polyglotv1.CallEvent{Event: &polyglotv1.CallEvent_Progress{Progress: b}})
	})
	if err != nil {
		return err
	}
	return stream.Send(&polyglotv1.CallEvent{Event: &polyglotv1.CallEvent_Result{Result: resp}})
}

func (r *runtime) info() *polyglotv1.ModuleInfo {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	return &polyglotv1.ModuleInfo{Name: Module, Implementation: Module, Version: r.h.version, Language: "go",
		State: "running", Health: "healthy", Methods: []string{"add", "down", "echo", "fail", "progress", "sleep"},
		Instances: []*polyglotv1.InstanceInfo{{Index: 0, State: "healthy", Pid: 4242}}}
}

func (r *runtime) ListModules(context.Context, *polyglotv1.ListModulesRequest) (*polyglotv1.ListModulesResponse, error) {
	return &polyglotv1.ListModulesResponse{Modules: []*polyglotv1.ModuleInfo{r.info()}}, nil
}

func (r *runtime) GetModule(_ context.Context, req *polyglotv1.GetModuleRequest) (*polyglotv1.ModuleInfo, error) {
	if req.GetModule() != Module {
		return nil, fail(codes.NotFound, fmt.Sprintf("no module named %q is loaded", req.GetModule()),
			&polyglotv1.ErrorDetail{Kind: "module_not_found", Module: req.GetModule()})
	}
	return r.info(), nil
}

func (r *runtime) ReloadModule(_ context.Context, req *polyglotv1.ReloadModuleRequest) (*polyglotv1.ReloadModuleResponse, error) {
	if req.GetModule() != Module {
		return nil, status.Errorf(codes.NotFound, "no module named %q is loaded", req.GetModule())
	}
	r.h.mu.Lock()
	old := r.h.version
	r.h.version = ReloadedVersion
	r.h.mu.Unlock()
	r.h.emit(&polyglotv1.Event{TimestampMs: uint64(time.Now().UnixMilli()), Module: Module,
		Kind: &polyglotv1.Event_ReloadDone{ReloadDone: &polyglotv1.ReloadDone{OldVersion: old, NewVersion: ReloadedVersion}}})
	return &polyglotv1.ReloadModuleResponse{Module: Module, OldVersion: old, NewVersion: ReloadedVersion}, nil
}

func (r *runtime) WatchEvents(req *polyglotv1.WatchEventsRequest, stream polyglotv1.Runtime_WatchEventsServer) error {
	ch := make(chan *polyglotv1.Event, 16)
	only := map[string]bool{}
	for _, m := range req.GetModules() {
		only[m] = true
	}
	r.h.mu.Lock()
	r.h.watchers[ch] = only
	r.h.mu.Unlock()
	defer func() {
		r.h.mu.Lock()
		delete(r.h.watchers, ch)
		r.h.mu.Unlock()
	}()
	// The headers go out now, so a client knows it watches before it reloads.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case ev := <-ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// Watchers is how many WatchEvents streams are open.
func (h *Host) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers)
}
