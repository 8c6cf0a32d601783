package main

// The gRPC transport (docs/protocol.md, section 10) with real worker processes: the test
// worker is built with `go build` into a temporary directory, started with
// POLYGLOT_TRANSPORT=grpc the way the host starts it (or by hand, as a remote worker),
// and spoken to through the generated client, as the host does.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// builtWorker is the test worker built once for the gRPC tests.
var builtWorker struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// workerBinary builds the test worker (once) and gives its path.
func workerBinary(t *testing.T) string {
	t.Helper()
	builtWorker.once.Do(func() {
		dir, err := os.MkdirTemp("", "polyglot-test-worker-")
		if err != nil {
			builtWorker.err = err
			return
		}
		builtWorker.dir = dir
		builtWorker.path = filepath.Join(dir, "polyglot-test-worker")
		out, err := exec.Command("go", "build", "-o", builtWorker.path, ".").CombinedOutput()
		if err != nil {
			builtWorker.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtWorker.err != nil {
		t.Fatalf("building the test worker: %v", builtWorker.err)
	}
	return builtWorker.path
}

// removeBuiltWorker deletes the built test worker; TestMain calls it after the tests.
func removeBuiltWorker() {
	if builtWorker.dir != "" {
		os.RemoveAll(builtWorker.dir)
	}
}

// grpcEnv is the environment of a gRPC worker: the host's variables (codec json), with
// POLYGLOT_TRANSPORT=grpc, plus extra KEY=VALUE entries.
func grpcEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POLYGLOT_") && !strings.HasPrefix(kv, "TEST_") {
			env = append(env, kv)
		}
	}
	env = append(env, "POLYGLOT_PROTOCOL=1", "POLYGLOT_MODULE=go-test", "POLYGLOT_VERSION=2.3.4",
		"POLYGLOT_CODEC=json", "POLYGLOT_TRANSPORT=grpc", "POLYGLOT_INSTANCE=0")
	return append(env, extra...)
}

// grpcProc is a gRPC worker process, its handshake read from stdout, and a client
// connected to the address it announced.
type grpcProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *syncBuffer // what the worker prints after its handshake
	stderr *syncBuffer
	hs     *protocol.Handshake
	conn   *grpc.ClientConn
	client polyglotv1.WorkerClient
	exited chan struct{} // closed when it exited, code set
	code   int
	remote bool // started with POLYGLOT_GRPC_LISTEN
}

// startGRPC starts the test worker with env and waits for its handshake line.
func startGRPC(t *testing.T, env []string) *grpcProc {
	t.Helper()
	cmd := exec.Command(workerBinary(t))
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &grpcProc{t: t, cmd: cmd, stdin: stdin, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	for _, kv := range env {
		p.remote = p.remote || strings.HasPrefix(kv, "POLYGLOT_GRPC_LISTEN=")
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.conn != nil {
			p.conn.Close()
		}
		// Stopped as the host stops it (a remote worker as its operator does), so that it
		// removes its socket; killed only when that fails, which fails the test.
		stdin.Close()
		if p.remote {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.exited:
			if p.code != 0 {
				t.Errorf("the worker exited with status %d; stderr: %s", p.code, p.stderr)
			}
		case <-time.After(waitLimit):
			_ = cmd.Process.Kill()
			t.Errorf("the worker did not stop when told; stderr: %s", p.stderr)
		}
	})
	lines := make(chan []byte, 1)
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				close(lines)
				return
			}
			if protocol.IsHandshakeCandidate(line) {
				lines <- line
				break
			}
		}
		_, _ = io.Copy(p.stdout, br)
	}()
	go func() {
		<-outDone // the output is read to its end before Wait closes the pipe
		var ee *exec.ExitError
		if err := cmd.Wait(); errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.exited)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("stdout ended before a handshake; stderr: %s", p.stderr)
		}
		if p.hs, err = protocol.ParseHandshake(line); err != nil {
			t.Fatalf("handshake %q: %v", line, err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("no handshake in time; stderr: %s", p.stderr)
	}
	if p.hs.Transport != "grpc" || p.hs.Address == "" {
		t.Fatalf("the handshake does not say where it listens: %+v", p.hs)
	}
	p.conn, err = grpc.NewClient(target(p.hs.Address), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.client = polyglotv1.NewWorkerClient(p.conn)
	return p
}

// target is a gRPC target for an announced address: unix:/path as it is, host:port
// without name resolution.
func target(address string) string {
	if strings.HasPrefix(address, "unix:") {
		return address
	}
	return "passthrough:///" + address
}

// socketPath is the path of the worker's Unix socket.
func (p *grpcProc) socketPath() string {
	p.t.Helper()
	path, ok := strings.CutPrefix(p.hs.Address, "unix:")
	if !ok {
		p.t.Fatalf("not a Unix socket: %s", p.hs.Address)
	}
	return path
}

// wait waits for the process to exit and gives its status.
func (p *grpcProc) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(limit):
		p.t.Fatalf("the worker did not exit within %v; stderr: %s", limit, p.stderr)
		return -1
	}
}

// rpcCtx is a context for one RPC, bounded by waitLimit.
func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// session is one Session stream played as the host plays it: the stream's bytes go
// through the same reader as stdio's.
type session struct {
	*host
	stream   polyglotv1.Worker_SessionClient
	cancel   context.CancelFunc
	maxChunk atomic.Int64 // the largest chunk received
	chunks   atomic.Int64 // how many chunks were received
	ended    chan error   // the stream's final status (nil for OK)
	hs       *protocol.Handshake
}

// streamWriter sends each Write as one chunk.
type streamWriter struct {
	stream polyglotv1.Worker_SessionClient
}

func (w streamWriter) Write(b []byte) (int, error) {
	if err := w.stream.Send(&polyglotv1.Chunk{Data: bytes.Clone(b)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

// openSession opens a Session whose codec metadata is codec ("" sends none: the worker's
// default, json here unless POLYGLOT_CODEC says otherwise) and reads its handshake.
func (p *grpcProc) openSession(codec string, want protocol.Codec) *session {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p.t.Cleanup(cancel)
	if codec != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "polyglot-codec", codec)
	}
	stream, err := p.client.Session(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	s := &session{stream: stream, cancel: cancel, ended: make(chan error, 1)}
	pr, pw := io.Pipe()
	go func() {
		for {
			c, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				s.ended <- err
				pw.Close()
				return
			}
			s.chunks.Add(1)
			if n := int64(len(c.GetData())); n > s.maxChunk.Load() {
				s.maxChunk.Store(n)
			}
			if _, err := pw.Write(c.GetData()); err != nil {
				return
			}
		}
	}()
	s.host = newHost(p.t, want, pr, streamWriter{stream})
	s.hs = s.hello()
	return s
}

// end waits for the stream's final status.
func (s *session) end() error {
	s.t.Helper()
	select {
	case err := <-s.ended:
		return err
	case <-time.After(waitLimit):
		s.t.Fatal("the session did not end")
		return nil
	}
}

func TestGRPCHandshakeAnnouncesAPrivateUnixSocket(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv("TEST_MAX_CONCURRENCY=5"))
	want := &protocol.Handshake{Protocol: 1, Module: "go-test", Version: "2.3.4", Language: "go",
		Codec: protocol.JSON, MaxConcurrency: 5, PID: int64(p.cmd.Process.Pid), Methods: testMethods,
		Transport: "grpc", Address: p.hs.Address}
	if !reflect.DeepEqual(p.hs, want) {
		t.Fatalf("handshake %+v, want %+v", p.hs, want)
	}
	path := p.socketPath()
	if filepath.Base(path) != "worker.sock" || !filepath.IsAbs(path) {
		t.Fatalf("socket %s: want an absolute path to worker.sock", path)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("the socket's directory has mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at %s: %v", path, err)
	}

	d, err := p.client.Describe(rpcCtx(t), &polyglotv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetProtocol() != 1 || d.GetModule() != "go-test" || d.GetVersion() != "2.3.4" || d.GetLanguage() != "go" ||
		d.GetCodec() != "json" || d.GetMaxConcurrency() != 5 || int(d.GetPid()) != p.cmd.Process.Pid ||
		!reflect.DeepEqual(d.GetMethods(), testMethods) {
		t.Fatalf("Describe: %v", d)
	}

	// After the handshake stdout is the worker's own.
	s := p.openSession("", protocol.JSON)
	if r := s.call(1, "stray", nil); r["result"] != "printed" {
		t.Fatalf("stray: %v", r)
	}
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(p.stdout.String(), "stray output from a handler") {
		if time.Now().After(deadline) {
			t.Fatalf("stdout after the handshake: %q", p.stdout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGRPCSessionSpeaksTheProtocolInBothCodecs(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	for _, c := range []struct {
		metadata string
		codec    protocol.Codec
	}{{"", protocol.JSON}, {"json", protocol.JSON}, {"msgpack", protocol.Msgpack}} {
		s := p.openSession(c.metadata, c.codec)
		what := fmt.Sprintf("session (metadata %q)", c.metadata)
		if s.hs.Codec != c.codec || s.hs.Transport != "grpc" || s.hs.Address != p.hs.Address ||
			!reflect.DeepEqual(s.hs.Methods, testMethods) || s.hs.PID != p.hs.PID {
			t.Fatalf("%s: handshake %+v", what, s.hs)
		}
		if r := s.call(1, "add", []any{2, 40}); r["result"] != int64(42) {
			t.Fatalf("%s: add: %v", what, r)
		}
		blob := make([]byte, 256)
		for i := range blob {
			blob[i] = byte(i)
		}
		if r := s.call("two", "echo", []any{blob}); !bytes.Equal(r["result"].([]byte), blob) || r["id"] != "two" {
			t.Fatalf("%s: binary echo: %v", what, r)
		}
		r := s.call(3, "fail", []any{"NOT_READY", "no model"})
		if errorCode(t, r) != "NOT_READY" {
			t.Fatalf("%s: fail: %v", what, r)
		}
		if r := s.call(4, "nope", nil); errorCode(t, r) != "METHOD_NOT_FOUND" {
			t.Fatalf("%s: nope: %v", what, r)
		}
		var seen []map[string]any
		s.send(map[string]any{"id": 5, "method": "progress", "params": []any{3}})
		if r := s.response(5, &seen); r["result"] != int64(3) || len(seen) != 4 {
			t.Fatalf("%s: progress: %v after %v", what, r, seen)
		}
		for i, m := range seen[:3] {
			if !reflect.DeepEqual(m["progress"], map[string]any{"step": int64(i + 1)}) {
				t.Fatalf("%s: progress %d: %v", what, i, m)
			}
		}
		if r := s.call(6, "$health", nil); !reflect.DeepEqual(r["result"].(map[string]any)["status"], "ok") {
			t.Fatalf("%s: $health: %v", what, r)
		}

		// 3 MiB back: several chunks, none over 1 MiB.
		before := s.chunks.Load()
		if r := s.call(7, "big", []any{3 << 20}); len(r["result"].(string)) != 3<<20 {
			t.Fatalf("%s: big: %d bytes", what, len(fmt.Sprint(r["result"])))
		}
		if n, most := s.chunks.Load()-before, s.maxChunk.Load(); n < 3 || most > 1<<20 {
			t.Fatalf("%s: 3 MiB came in %d chunks, the largest %d bytes: want chunks of at most 1 MiB", what, n, most)
		}
		// A request of exactly 4 MiB in one chunk is taken.
		frame := fourMiBEcho(t, c.codec, 8)
		if _, err := s.w.Write(frame); err != nil {
			t.Fatal(err)
		}
		if r := s.response(8, nil); r["error"] != nil || len(r["result"].(string)) < 4<<20-100 {
			t.Fatalf("%s: a 4 MiB chunk: %v", what, r["error"])
		}
		if errs := s.decodeErrors(); len(errs) > 0 {
			t.Fatalf("%s: frames that do not decode: %v", what, errs)
		}
		s.stream.CloseSend() // the host ends the session: the worker keeps running
		if err := s.end(); err != nil {
			t.Fatalf("%s: the session ended with %v", what, err)
		}
	}
}

// fourMiBEcho is the frame of an echo call with id whose frame is exactly 4 MiB.
func fourMiBEcho(t *testing.T, codec protocol.Codec, id int) []byte {
	t.Helper()
	build := func(n int) []byte {
		frame, _, err := codec.EncodeFrame(nil, map[string]any{"id": id, "method": "echo", "params": []any{strings.Repeat("y", n)}})
		if err != nil {
			t.Fatal(err)
		}
		return frame
	}
	n := 4 << 20
	frame := build(n)
	frame = build(n - (len(frame) - 4<<20))
	if len(frame) != 4<<20 {
		t.Fatalf("the frame is %d bytes", len(frame))
	}
	return frame
}

func TestGRPCSessionAnswersManyConcurrentCallsOutOfOrder(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv("POLYGLOT_CODEC=msgpack"))
	s := p.openSession("", protocol.Msgpack) // the worker's default codec
	const n = 8
	var batch []byte
	for i := 0; i < n; i++ {
		frame, _, err := protocol.Msgpack.EncodeFrame(batch, map[string]any{"id": i, "method": "sleep", "params": []any{500 - 60*i}})
		if err != nil {
			t.Fatal(err)
		}
		batch = frame
	}
	started := time.Now()
	if _, err := s.w.Write(batch); err != nil { // every request in one chunk
		t.Fatal(err)
	}
	var order []int64
	for len(order) < n {
		m := s.recv()
		if m["error"] != nil {
			t.Fatalf("sleep: %v", m)
		}
		order = append(order, m["id"].(int64))
	}
	if took := time.Since(started); took > 1500*time.Millisecond {
		t.Fatalf("%d sleeps of 80..500 ms took %v: they ran one after another", n, took)
	}
	for i, id := range order {
		if id != int64(n-1-i) {
			t.Fatalf("answers in the order %v, want the shortest sleep first (%d first)", order, n-1)
		}
	}
}

func TestGRPCEndingASessionCancelsItsCallsAndTheWorkerServesOn(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	dir := t.TempDir()
	for _, how := range []string{"cancel", "half-close"} {
		s := p.openSession("json", protocol.JSON)
		marker := filepath.Join(dir, how)
		s.send(map[string]any{"id": 1, "method": "sleep", "params": []any{20000, marker}})
		time.Sleep(300 * time.Millisecond) // the call is running
		if how == "cancel" {
			s.cancel()
		} else {
			s.stream.CloseSend()
		}
		deadline := time.Now().Add(waitLimit)
		for {
			if b, err := os.ReadFile(marker); err == nil && string(b) == "cancelled" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the session's call was not cancelled; stderr: %s", how, p.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.end()
	}
	// The worker keeps running: a new session, and the unary RPCs.
	s := p.openSession("json", protocol.JSON)
	if r := s.call(1, "echo", []any{"still here"}); r["result"] != "still here" {
		t.Fatalf("after the sessions ended: %v", r)
	}
	if h, err := p.client.Health(rpcCtx(t), &polyglotv1.WorkerHealthRequest{}); err != nil || h.GetStatus() != "ok" {
		t.Fatalf("Health: %v, %v", h, err)
	}
	select {
	case <-p.exited:
		t.Fatalf("the worker exited (%d) when its sessions ended", p.code)
	default:
	}
}

func TestGRPCMethodSlotsAreSharedBySessions(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv("TEST_MAX_CONCURRENCY=1"))
	a := p.openSession("", protocol.JSON)
	b := p.openSession("", protocol.JSON)
	started := time.Now()
	a.send(map[string]any{"id": 1, "method": "sleep", "params": []any{300}})
	b.send(map[string]any{"id": 1, "method": "sleep", "params": []any{300}})
	a.response(1, nil)
	b.response(1, nil)
	if took := time.Since(started); took < 600*time.Millisecond {
		t.Fatalf("two 300 ms calls in two sessions of a worker taking one call at a time took %v", took)
	}
}

// unary calls Call with params encoded in codec.
func unary(t *testing.T, p *grpcProc, ctx context.Context, codec protocol.Codec, method string, params any) (*polyglotv1.WorkerCallResponse, error) {
	t.Helper()
	var raw []byte
	if params != nil {
		var err error
		if raw, err = codec.Encode(params); err != nil {
			t.Fatal(err)
		}
	}
	return p.client.Call(ctx, &polyglotv1.WorkerCallRequest{Method: method, Params: raw, Codec: codec.String()})
}

func decodeResult(t *testing.T, codec protocol.Codec, r *polyglotv1.WorkerCallResponse) any {
	t.Helper()
	if r.GetError() != nil {
		t.Fatalf("an error: %v", r.GetError())
	}
	v, err := codec.Decode(r.GetResult())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGRPCUnaryCall(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		r, err := unary(t, p, rpcCtx(t), codec, "add", []any{2, 40})
		if err != nil || decodeResult(t, codec, r) != int64(42) {
			t.Fatalf("%v: add: %v, %v", codec, r, err)
		}
		blob := []byte{0, 1, 2, 255}
		r, err = unary(t, p, rpcCtx(t), codec, "echo", []any{blob})
		if err != nil || !bytes.Equal(decodeResult(t, codec, r).([]byte), blob) {
			t.Fatalf("%v: echo: %v, %v", codec, r, err)
		}
	}
	// Empty params are null, the codec json when empty.
	r, err := p.client.Call(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "echo"})
	if err != nil || string(r.GetResult()) != "[]" {
		t.Fatalf("echo without params: %v, %v", r, err)
	}
	if r.GetExecutionTimeUs() == 0 && r.GetResult() == nil {
		t.Fatalf("no result: %v", r)
	}

	// A method's errors are responses with status OK.
	for _, c := range []struct {
		method string
		params any
		code   string
	}{
		{"fail", []any{"NOT_READY", "no model"}, "NOT_READY"},
		{"add", []any{"x", 1}, "INVALID_PARAMS"},
		{"boom", nil, "INTERNAL"},
		{"nope", nil, "METHOD_NOT_FOUND"},
		{"$health", nil, "METHOD_NOT_FOUND"},
		{"$shutdown", nil, "METHOD_NOT_FOUND"},
	} {
		r, err := unary(t, p, rpcCtx(t), protocol.JSON, c.method, c.params)
		if err != nil || r.GetError().GetCode() != c.code {
			t.Fatalf("%s: %v, %v; want error %s", c.method, r, err, c.code)
		}
	}
	if r, _ := unary(t, p, rpcCtx(t), protocol.JSON, "fail", []any{"NOT_READY", "no model"}); r.GetError().GetMessage() != "no model" {
		t.Fatalf("fail's message: %v", r)
	}
	// What is not a call at all is a status.
	_, err = p.client.Call(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "echo", Params: []byte("{not json")})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("undecodable params: %v", err)
	}
	_, err = p.client.Call(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "echo", Codec: "xml"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an unknown codec: %v", err)
	}
}

func TestGRPCUnaryCallIsCancelledWithItsRPC(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	dir := t.TempDir()
	waitMarker := func(path string) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			if b, err := os.ReadFile(path); err == nil && string(b) == "cancelled" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the call was not cancelled (%s); stderr: %s", path, p.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := unary(t, p, ctx, protocol.JSON, "sleep", []any{20000, filepath.Join(dir, "deadline")})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("past its deadline: %v", err)
	}
	waitMarker(filepath.Join(dir, "deadline"))

	// Cancelled by the caller.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := unary(t, p, ctx, protocol.JSON, "sleep", []any{20000, filepath.Join(dir, "cancel")})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
	waitMarker(filepath.Join(dir, "cancel"))

	// Its timeout_ms.
	raw, _ := protocol.JSON.Encode([]any{20000, filepath.Join(dir, "timeout")})
	_, err = p.client.Call(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "sleep", Params: raw, TimeoutMs: 200})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("past its timeout_ms: %v", err)
	}
	waitMarker(filepath.Join(dir, "timeout"))
}

func TestGRPCCallStreamSendsProgressThenTheResult(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	for _, codec := range []protocol.Codec{protocol.JSON, protocol.Msgpack} {
		raw, _ := codec.Encode([]any{4})
		stream, err := p.client.CallStream(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "progress", Params: raw, Codec: codec.String()})
		if err != nil {
			t.Fatal(err)
		}
		var events []string
		for {
			ev, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%v: %v", codec, err)
			}
			switch e := ev.GetEvent().(type) {
			case *polyglotv1.WorkerCallEvent_Progress:
				v, err := codec.Decode(e.Progress)
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, fmt.Sprint("progress ", v))
			case *polyglotv1.WorkerCallEvent_Result:
				events = append(events, fmt.Sprint("result ", decodeResult(t, codec, e.Result)))
			}
		}
		want := []string{"progress map[step:1]", "progress map[step:2]", "progress map[step:3]", "progress map[step:4]", "result 4"}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("%v: events %q, want %q", codec, events, want)
		}
	}
	// A method's error is the result event's error.
	stream, err := p.client.CallStream(rpcCtx(t), &polyglotv1.WorkerCallRequest{Method: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := stream.Recv()
	if err != nil || ev.GetResult().GetError().GetCode() != "METHOD_NOT_FOUND" {
		t.Fatalf("nope: %v, %v", ev, err)
	}
}

func TestGRPCHealthFollowsTheHealthFunction(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env            string
		status, reason string
	}{
		{"TEST_HEALTH=", "ok", ""},
		{"TEST_HEALTH=degraded", "degraded", "warming up"},
		{"TEST_HEALTH=unhealthy", "unhealthy", "unhealthy because TEST_HEALTH=unhealthy"},
	} {
		p := startGRPC(t, grpcEnv(c.env))
		h, err := p.client.Health(rpcCtx(t), &polyglotv1.WorkerHealthRequest{})
		if err != nil || h.GetStatus() != c.status || h.GetReason() != c.reason {
			t.Fatalf("%s: Health %v, %v; want %s %q", c.env, h, err, c.status, c.reason)
		}
	}
}

// socketGone fails the test unless the socket and its directory were removed.
func socketGone(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, filepath.Dir(path)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was left behind (%v)", p, err)
		}
	}
}

func TestGRPCShutdownRPCFinishesTheCallsHeldThenExitsZero(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	path := p.socketPath()
	s := p.openSession("", protocol.JSON)
	s.send(map[string]any{"id": 1, "method": "sleep", "params": []any{800}})
	time.Sleep(200 * time.Millisecond)
	if _, err := p.client.Shutdown(rpcCtx(t), &polyglotv1.WorkerShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	// No new calls anywhere.
	if r := s.call(2, "echo", []any{"late"}); errorCode(t, r) != "SHUTTING_DOWN" {
		t.Fatalf("a new call on the session: %v", r)
	}
	if r, err := unary(t, p, rpcCtx(t), protocol.JSON, "echo", []any{"late"}); err != nil || r.GetError().GetCode() != "SHUTTING_DOWN" {
		t.Fatalf("a new unary call: %v, %v", r, err)
	}
	// The call held is answered, then the session ends and the worker exits 0.
	if r := s.response(1, nil); r["result"] != int64(800) {
		t.Fatalf("the call held: %v", r)
	}
	if err := s.end(); err != nil {
		t.Fatalf("the session ended with %v", err)
	}
	if code := p.wait(waitLimit); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, p.stderr)
	}
	socketGone(t, path)
}

func TestGRPCShutdownOnASessionStopsEverySession(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	path := p.socketPath()
	a := p.openSession("", protocol.JSON)
	b := p.openSession("msgpack", protocol.Msgpack)
	b.send(map[string]any{"id": 1, "method": "sleep", "params": []any{700}})
	time.Sleep(200 * time.Millisecond)
	a.send(map[string]any{"method": "$shutdown"})
	deadline := time.Now().Add(waitLimit)
	for { // b's new calls are refused once the notification was read
		r := b.call(fmt.Sprint(time.Now().UnixNano()), "echo", []any{"late"})
		if r["error"] != nil {
			if errorCode(t, r) != "SHUTTING_DOWN" {
				t.Fatalf("a new call on another session: %v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other session still takes calls")
		}
	}
	if r := b.response(1, nil); r["result"] != int64(700) {
		t.Fatalf("the call held on the other session: %v", r)
	}
	if code := p.wait(waitLimit); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, p.stderr)
	}
	socketGone(t, path)
}

func TestGRPCStdinEOFExitsAtOnceAndRemovesTheSocket(t *testing.T) {
	t.Parallel()
	p := startGRPC(t, grpcEnv())
	path := p.socketPath()
	s := p.openSession("", protocol.JSON)
	s.send(map[string]any{"id": 1, "method": "sleep", "params": []any{20000}})
	time.Sleep(200 * time.Millisecond)
	started := time.Now()
	p.stdin.Close()
	if code := p.wait(waitLimit); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, p.stderr)
	}
	if took := time.Since(started); took > 3*time.Second {
		t.Fatalf("exited %v after stdin closed: it waited for the call", took)
	}
	socketGone(t, path)
	if err := s.end(); status.Code(err) == codes.OK {
		t.Fatalf("the session of a worker that stopped ended with OK")
	}
}

// freePort is a TCP port on loopback that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestGRPCRemoteWorkerServesUntilSIGTERMThenDrains(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	p := startGRPC(t, grpcEnv(fmt.Sprintf("POLYGLOT_GRPC_LISTEN=127.0.0.1:%d", port)))
	if want := fmt.Sprintf("127.0.0.1:%d", port); p.hs.Address != want {
		t.Fatalf("address %q, want %q", p.hs.Address, want)
	}
	p.stdin.Close() // a remote worker ignores stdin
	time.Sleep(200 * time.Millisecond)
	s := p.openSession("", protocol.JSON)
	if r := s.call(1, "echo", []any{"remote"}); r["result"] != "remote" {
		t.Fatalf("echo: %v", r)
	}
	s.send(map[string]any{"id": 2, "method": "sleep", "params": []any{800}})
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		r := s.call(fmt.Sprint(time.Now().UnixNano()), "echo", []any{"late"})
		if r["error"] != nil {
			if errorCode(t, r) != "SHUTTING_DOWN" {
				t.Fatalf("a call after SIGTERM: %v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still taking calls after SIGTERM")
		}
	}
	if r := s.response(2, nil); r["result"] != int64(800) {
		t.Fatalf("the call held: %v", r)
	}
	if code := p.wait(waitLimit); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, p.stderr)
	}
}

func TestGRPCRemoteWorkerStopsWaitingAfterFiveSeconds(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pg") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "remote.sock")
	p := startGRPC(t, grpcEnv("POLYGLOT_GRPC_LISTEN=unix:"+path))
	if p.hs.Address != "unix:"+path {
		t.Fatalf("address %q, want unix:%s", p.hs.Address, path)
	}
	s := p.openSession("", protocol.JSON)
	s.send(map[string]any{"id": 1, "method": "sleep", "params": []any{60000}})
	time.Sleep(200 * time.Millisecond)
	started := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(5*time.Second + waitLimit); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, p.stderr)
	}
	if took := time.Since(started); took < 4500*time.Millisecond || took > 8*time.Second {
		t.Fatalf("exited %v after SIGINT with a call running, want about 5 s", took)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket was left behind: %v", err)
	}
}

// errorCode is the error code of response m; it fails the test when m has no error.
func errorCode(t *testing.T, m map[string]any) string {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", m)
	}
	code, _ := e["code"].(string)
	return code
}
