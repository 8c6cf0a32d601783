package main

// Real worker processes, spoken to over their pipes (or a Unix socket) the way the host
// does. The worker is this test binary itself, re-executed with POLYGLOT_TEST_WORKER_RUN=1:
// then TestMain runs the test worker's main instead of the tests.

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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"polyglot.invalid/go/protocol"
)

// runAsWorker is the variable that makes this test binary the test worker.
const runAsWorker = "POLYGLOT_TEST_WORKER_RUN"

// waitLimit bounds every single wait on a worker: a broken worker fails the test instead
// of hanging it.
const waitLimit = 10 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(runAsWorker) == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	removeBuiltWorker()
	os.Exit(code)
}

// workerEnv is the environment the host gives a worker, plus extra KEY=VALUE entries.
func workerEnv(codec string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POLYGLOT_") && !strings.HasPrefix(kv, "TEST_") {
			env = append(env, kv)
		}
	}
	env = append(env, runAsWorker+"=1",
		"POLYGLOT_PROTOCOL=1", "POLYGLOT_MODULE=go-test", "POLYGLOT_VERSION=2.3.4",
		"POLYGLOT_CODEC="+codec, "POLYGLOT_TRANSPORT=stdio", "POLYGLOT_INSTANCE=0")
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// host plays the host on one byte stream: reads the handshake line (keeping the lines
// before it), then frames of the codec; sends requests; waits for messages.
type host struct {
	t         *testing.T
	codec     protocol.Codec
	w         io.Writer
	handshake chan []byte
	messages  chan map[string]any
	mu        sync.Mutex
	before    []string // lines before the handshake
	errors    []string // frames that do not decode
	eof       chan struct{}
}

func newHost(t *testing.T, codec protocol.Codec, r io.Reader, w io.Writer) *host {
	h := &host{
		t: t, codec: codec, w: w,
		handshake: make(chan []byte, 1),
		messages:  make(chan map[string]any, 10000),
		eof:       make(chan struct{}),
	}
	go h.read(r)
	return h
}

func (h *host) read(r io.Reader) {
	defer close(h.eof)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if protocol.IsHandshakeCandidate(line) {
			h.handshake <- line
			break
		}
		h.mu.Lock()
		h.before = append(h.before, strings.TrimRight(string(line), "\n"))
		h.mu.Unlock()
	}
	fr := protocol.NewFrameReader(br, h.codec, 1<<30)
	for {
		f, err := fr.Next()
		if err != nil {
			return
		}
		v, err := h.codec.Decode(f.Payload)
		if err == nil {
			_, err = protocol.ParseMessage(v)
		}
		if err != nil {
			h.mu.Lock()
			h.errors = append(h.errors, fmt.Sprintf("%v: %q", err, f.Payload))
			h.mu.Unlock()
			continue
		}
		h.messages <- v.(map[string]any)
	}
}

func (h *host) hello() *protocol.Handshake {
	h.t.Helper()
	select {
	case line := <-h.handshake:
		hs, err := protocol.ParseHandshake(line)
		if err != nil {
			h.t.Fatalf("handshake %q: %v", line, err)
		}
		return hs
	case <-h.eof:
		h.t.Fatalf("the output ended before a handshake; before it: %v", h.beforeLines())
	case <-time.After(waitLimit):
		h.t.Fatal("no handshake in time")
	}
	return nil
}

func (h *host) beforeLines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.before...)
}

func (h *host) decodeErrors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errors...)
}

func (h *host) send(msg map[string]any) {
	h.t.Helper()
	frame, _, err := h.codec.EncodeFrame(nil, msg)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.w.Write(frame); err != nil {
		h.t.Fatalf("writing to the worker: %v", err)
	}
}

func (h *host) recv() map[string]any {
	h.t.Helper()
	select {
	case m := <-h.messages:
		return m
	case <-h.eof:
		// Every message read is queued before eof closes.
		select {
		case m := <-h.messages:
			return m
		default:
			h.t.Fatal("the output ended while a message was awaited")
			return nil
		}
	case <-time.After(waitLimit):
		h.t.Fatal("no message in time")
		return nil
	}
}

// response waits for the response to id; every message before it goes to seen.
func (h *host) response(id any, seen *[]map[string]any) map[string]any {
	h.t.Helper()
	want, _ := protocol.IDFromValue(id)
	for {
		m := h.recv()
		if seen != nil {
			*seen = append(*seen, m)
		}
		got, _ := protocol.IDFromValue(m["id"])
		_, r := m["result"]
		_, e := m["error"]
		if got == want && (r || e) {
			return m
		}
	}
}

func (h *host) call(id any, method string, params any) map[string]any {
	h.t.Helper()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	h.send(req)
	return h.response(id, nil)
}

// proc is a worker process started as the host starts it.
type proc struct {
	*host
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	exit   chan int
}

func start(t *testing.T, codec string, extra ...string) *proc {
	t.Helper()
	c, err := protocol.ParseCodec(codec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = workerEnv(codec, extra...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, stderr: &syncBuffer{}, exit: make(chan int, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.host = newHost(t, c, stdout, stdin)
	go func() {
		<-p.eof // the output is read to its end before Wait closes the pipe
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		p.exit <- code
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		stdin.Close()
	})
	return p
}

// wait waits for the process to exit and gives its status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case code := <-p.exit:
		return code
	case <-time.After(waitLimit):
		p.t.Fatalf("the worker did not exit; stderr: %s", p.stderr)
		return -1
	}
}

func (p *proc) waitStderr(text string) {
	p.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(p.stderr.String(), text) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%q not on stderr: %s", text, p.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testMethods = []string{"add", "big", "boom", "crash", "echo", "env", "fail", "garbage",
	"pid", "progress", "sleep", "stray", "unknownId", "version"}

func TestHandshakeIsOneJSONLineWithEveryField(t *testing.T) {
	for _, codec := range []string{"json", "msgpack"} {
		p := start(t, codec, "TEST_MAX_CONCURRENCY=5")
		h := p.hello()
		want := &protocol.Handshake{Protocol: 1, Module: "go-test", Version: "2.3.4", Language: "go",
			Codec: p.codec, MaxConcurrency: 5, PID: int64(p.cmd.Process.Pid), Methods: testMethods}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("%s: handshake %+v, want %+v", codec, h, want)
		}
		if before := p.beforeLines(); len(before) != 0 {
			t.Fatalf("lines before the handshake: %v", before)
		}
	}
}

func TestTestWorkerMethods(t *testing.T) {
	p := start(t, "json")
	p.hello()
	check := func(id int, method string, params, want any) {
		t.Helper()
		if r := p.call(id, method, params); !reflect.DeepEqual(r["result"], want) {
			t.Fatalf("%s(%v) = %v, want %#v", method, params, r, want)
		}
	}
	code := func(id int, method string, params any) (string, string) {
		t.Helper()
		r := p.call(id, method, params)
		e, ok := r["error"].(map[string]any)
		if !ok {
			t.Fatalf("%s(%v) = %v, want an error", method, params, r)
		}
		return e["code"].(string), e["message"].(string)
	}
	check(1, "echo", []any{"x"}, "x")
	check(2, "echo", []any{1, 2}, []any{int64(1), int64(2)})
	check(3, "echo", map[string]any{"a": 1}, map[string]any{"a": int64(1)})
	check(4, "echo", nil, []any{})
	check(5, "add", []any{2, 40}, int64(42))
	check(6, "add", map[string]any{"a": -2, "b": 1}, int64(-1))
	if c, _ := code(7, "add", []any{2, "x"}); c != "INVALID_PARAMS" {
		t.Fatal(c)
	}
	if c, _ := code(8, "add", []any{2}); c != "INVALID_PARAMS" {
		t.Fatal(c)
	}
	if c, m := code(9, "fail", []any{"NOT_READY", "model not loaded"}); c != "NOT_READY" || m != "model not loaded" {
		t.Fatal(c, m)
	}
	if c, m := code(10, "boom", nil); c != "INTERNAL" || !strings.Contains(m, "boom") {
		t.Fatal(c, m)
	}
	check(11, "pid", nil, int64(p.cmd.Process.Pid))
	check(12, "env", []any{"POLYGLOT_INSTANCE"}, "0")
	check(13, "env", []any{"NO_SUCH_VARIABLE_HERE"}, nil)
	check(14, "version", nil, "2.3.4")
	check(15, "big", []any{5}, "xxxxx")
	if c, _ := code(16, "big", []any{-1}); c != "INVALID_PARAMS" {
		t.Fatal(c)
	}
	check(17, "sleep", []any{1.5}, 1.5)
	if c, _ := code(18, "nope", nil); c != "METHOD_NOT_FOUND" {
		t.Fatal(c)
	}
	check(19, "$health", nil, map[string]any{"status": "ok", "pid": int64(p.cmd.Process.Pid)})
	p.waitStderr("method boom panicked: boom") // the panic's report went to stderr
	if errs := p.decodeErrors(); len(errs) != 0 {
		t.Fatalf("bad frames: %v", errs)
	}
}

func TestAnswersComeInCompletionOrder(t *testing.T) {
	p := start(t, "json")
	p.hello()
	p.send(map[string]any{"id": "slow", "method": "sleep", "params": []any{300}})
	p.send(map[string]any{"id": "fast", "method": "echo", "params": []any{"quick"}})
	first, second := p.recv(), p.recv()
	if first["id"] != "fast" || first["result"] != "quick" {
		t.Fatalf("first %v", first)
	}
	if second["id"] != "slow" || second["result"] != int64(300) {
		t.Fatalf("second %v", second)
	}
	if us := second["executionTime"].(int64); us < 300_000 || us > 5_000_000 {
		t.Fatalf("executionTime %d µs", us)
	}
}

func TestManyCallsInFlightAtOnce(t *testing.T) {
	p := start(t, "json")
	p.hello()
	started := time.Now()
	for i := 0; i < 10; i++ {
		p.send(map[string]any{"id": i, "method": "sleep", "params": []any{300}})
	}
	got := map[int64]bool{}
	for i := 0; i < 10; i++ {
		got[p.recv()["id"].(int64)] = true
	}
	if len(got) != 10 {
		t.Fatalf("answered %v", got)
	}
	if d := time.Since(started); d > 2500*time.Millisecond {
		t.Fatalf("10 calls of 300 ms took %v: not concurrent", d)
	}
}

func TestCancelStopsARunningCall(t *testing.T) {
	p := start(t, "json")
	p.hello()
	marker := filepath.Join(t.TempDir(), "cancelled")
	p.send(map[string]any{"id": 1, "method": "sleep", "params": []any{10_000, marker}})
	time.Sleep(100 * time.Millisecond)
	sent := time.Now()
	p.send(map[string]any{"method": "$cancel", "params": map[string]any{"id": 1}})
	r := p.response(1, nil)
	if e, _ := r["error"].(map[string]any); e["code"] != "CANCELLED" || time.Since(sent) > 2*time.Second {
		t.Fatalf("got %v after %v", r, time.Since(sent))
	}
	deadline := time.Now().Add(waitLimit)
	for { // the method itself saw its ctx cancelled
		if b, err := os.ReadFile(marker); err == nil && string(b) == "cancelled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancel marker was not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := p.call(2, "echo", []any{"still serving"}); r["result"] != "still serving" {
		t.Fatalf("got %v", r)
	}
	p.send(map[string]any{"method": "$cancel", "params": map[string]any{"id": 1}}) // already answered: ignored
	if r := p.call(3, "echo", []any{3}); r["result"] != int64(3) {
		t.Fatalf("got %v", r)
	}
}

func TestProgressComesBeforeTheResult(t *testing.T) {
	p := start(t, "json")
	p.hello()
	var seen []map[string]any
	p.send(map[string]any{"id": 5, "method": "progress", "params": []any{3}})
	if r := p.response(5, &seen); r["result"] != int64(3) {
		t.Fatalf("got %v", r)
	}
	var want []map[string]any
	for i := int64(1); i <= 3; i++ {
		want = append(want, map[string]any{"id": int64(5), "progress": map[string]any{"step": i}})
	}
	if !reflect.DeepEqual(seen[:len(seen)-1], want) {
		t.Fatalf("got %v", seen)
	}
}

func TestShutdownDrainsCallsThenExitsZero(t *testing.T) {
	p := start(t, "json")
	p.hello()
	p.send(map[string]any{"id": 1, "method": "sleep", "params": []any{300}})
	time.Sleep(50 * time.Millisecond)
	p.send(map[string]any{"method": "$shutdown"})
	if r := p.call(2, "echo", []any{"late"}); r["error"].(map[string]any)["code"] != "SHUTTING_DOWN" {
		t.Fatalf("got %v", r)
	}
	p.stdin.Close() // the input ending meanwhile does not stop the drain
	if r := p.response(1, nil); r["result"] != int64(300) {
		t.Fatalf("got %v", r)
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

func TestExitsPromptlyWhenStdinClosesWithoutWaitingForCalls(t *testing.T) {
	p := start(t, "json")
	p.hello()
	p.send(map[string]any{"id": 1, "method": "sleep", "params": []any{10_000}})
	time.Sleep(50 * time.Millisecond)
	closed := time.Now()
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if d := time.Since(closed); d > 3*time.Second {
		t.Fatalf("took %v to exit", d)
	}
}

func TestStrayPrintsLandOnStderr(t *testing.T) {
	p := start(t, "json")
	p.hello()
	if r := p.call(1, "stray", nil); r["result"] != "printed" {
		t.Fatalf("got %v", r)
	}
	if r := p.call(2, "echo", []any{"after"}); r["result"] != "after" {
		t.Fatalf("got %v", r)
	}
	p.waitStderr("stray output from a handler")
	p.waitStderr("stray bytes on fd 1")
	if errs := p.decodeErrors(); len(errs) != 0 {
		t.Fatalf("stray text reached the protocol stream: %v", errs)
	}
}

func TestMsgpackEndToEnd(t *testing.T) {
	p := start(t, "msgpack")
	if h := p.hello(); h.Codec != protocol.Msgpack {
		t.Fatalf("handshake %+v", h)
	}
	blob := []byte{0, 1, 2, 0xff}
	r := p.call(uint64(18446744073709551615), "echo", []any{map[string]any{"blob": blob, "n": -7, "f": 0.5}})
	want := map[string]any{"blob": blob, "n": int64(-7), "f": 0.5}
	if r["id"] != uint64(18446744073709551615) || !reflect.DeepEqual(r["result"], want) {
		t.Fatalf("got %#v", r)
	}
	var seen []map[string]any
	p.send(map[string]any{"id": "p", "method": "progress", "params": map[string]any{"n": 2}})
	if r := p.response("p", &seen); r["result"] != int64(2) || len(seen) != 3 {
		t.Fatalf("got %v after %v", r, seen)
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

func TestRunByHandExplainsItselfAndExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	var env []string
	for _, kv := range workerEnv("json") {
		if !strings.HasPrefix(kv, "POLYGLOT_PROTOCOL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stdin, err := cmd.StdinPipe() // left open: the worker must not wait for it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1", err)
	}
	msg := stderr.String()
	if !strings.Contains(msg, `this program is a polyglot worker for module "go-test"`) || !strings.Contains(msg, "polyglot-host") {
		t.Fatalf("stderr: %q", msg)
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout: %q", stdout.String())
	}
}

func TestRawHooksBreakTheProtocolOnPurpose(t *testing.T) {
	p := start(t, "json")
	p.hello()
	var seen []map[string]any
	p.send(map[string]any{"id": 1, "method": "unknownId"})
	if r := p.response(1, &seen); r["result"] != "sent" {
		t.Fatalf("got %v", r)
	}
	if seen[0]["id"] != int64(unknownID) || seen[0]["result"] != "nobody asked" {
		t.Fatalf("got %v", seen)
	}
	if r := p.call(2, "garbage", nil); r["result"] != "sent" {
		t.Fatalf("got %v", r)
	}
	if errs := p.decodeErrors(); len(errs) != 1 || !strings.Contains(errs[0], "this is not protocol") {
		t.Fatalf("decode errors %v", errs)
	}
}

func TestStartUpBehaviours(t *testing.T) {
	t.Run("banner", func(t *testing.T) {
		p := start(t, "json", "TEST_BANNER=loading weights...")
		p.hello()
		if before := p.beforeLines(); !reflect.DeepEqual(before, []string{"loading weights..."}) {
			t.Fatalf("before the handshake: %v", before)
		}
	})
	t.Run("exit at start", func(t *testing.T) {
		p := start(t, "json", "TEST_EXIT_AT_START=7")
		if code := p.wait(); code != 7 {
			t.Fatalf("exit status %d", code)
		}
		p.waitStderr("fatal: cannot load model")
	})
	t.Run("no handshake", func(t *testing.T) {
		p := start(t, "json", "TEST_NO_HANDSHAKE=1")
		p.waitStderr("starting...")
		select {
		case <-p.handshake:
			t.Fatal("a handshake arrived")
		case <-time.After(50 * time.Millisecond):
		}
		p.stdin.Close()
		if code := p.wait(); code != 0 {
			t.Fatalf("exit status %d", code)
		}
	})
	t.Run("bad protocol", func(t *testing.T) {
		p := start(t, "json", "TEST_BAD_PROTOCOL=1")
		select {
		case line := <-p.handshake:
			_, err := protocol.ParseHandshake(line)
			if err == nil || !strings.Contains(err.Error(), "protocol version 99") {
				t.Fatalf("got %v for %s", err, line)
			}
		case <-time.After(waitLimit):
			t.Fatal("no handshake")
		}
		p.stdin.Close()
		p.wait()
	})
	t.Run("crash", func(t *testing.T) {
		p := start(t, "json")
		p.hello()
		p.send(map[string]any{"id": 1, "method": "crash", "params": []any{5}})
		if code := p.wait(); code != 5 {
			t.Fatalf("exit status %d", code)
		}
	})
}

func TestHealthFollowsTheEnvironment(t *testing.T) {
	p := start(t, "json", "TEST_HEALTH=unhealthy")
	p.hello()
	if r := p.call(1, "$health", nil); r["error"].(map[string]any)["code"] != "UNHEALTHY" {
		t.Fatalf("got %v", r)
	}
	p = start(t, "json", "TEST_HEALTH=degraded")
	p.hello()
	if r := p.call(1, "$health", nil); !reflect.DeepEqual(r["result"], map[string]any{"status": "degraded", "reason": "warming up"}) {
		t.Fatalf("got %v", r)
	}
	flag := filepath.Join(t.TempDir(), "sick")
	p = start(t, "json", "TEST_HEALTH_FILE="+flag)
	p.hello()
	if r := p.call(1, "$health", nil); r["result"].(map[string]any)["status"] != "ok" {
		t.Fatalf("got %v", r)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := p.call(2, "$health", nil); r["error"].(map[string]any)["code"] != "UNHEALTHY" {
		t.Fatalf("got %v", r)
	}
}

func TestSocketTransport(t *testing.T) {
	dir, err := os.MkdirTemp("", "pg") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "w.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = workerEnv("msgpack", "POLYGLOT_TRANSPORT=socket", "POLYGLOT_SOCKET="+path)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(waitLimit):
		t.Fatal("the worker did not connect")
	}
	h := newHost(t, protocol.Msgpack, conn, conn)
	h.hello()
	if r := h.call(1, "echo", []any{"over the socket"}); r["result"] != "over the socket" {
		t.Fatalf("got %v", r)
	}
	// Stdout is free with the socket transport: prints go there, not to the protocol.
	if r := h.call(2, "stray", nil); r["result"] != "printed" {
		t.Fatalf("got %v", r)
	}
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(stdout.String(), "stray output from a handler") {
		if time.Now().After(deadline) {
			t.Fatalf("stdout: %q", stdout.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn.Close() // the host closes the socket: the worker exits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(waitLimit):
		t.Fatal("the worker did not exit when the socket closed")
	}
}

func TestWorkerDiesWithItsParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("PR_SET_PDEATHSIG is Linux only")
	}
	// sh starts the worker and waits for it. The worker's stdin is a pipe this test holds
	// open (fd 3 of sh), so its input never ends: only its parent's death can end it.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	sh := exec.Command("sh", "-c", `"$0" 0<&3 & echo "pid $!"; wait`, os.Args[0])
	sh.Env = workerEnv("json")
	sh.ExtraFiles = []*os.File{inR}
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	defer sh.Process.Kill()
	pid, handshake := 0, false
	sc := bufio.NewScanner(out)
	for (pid == 0 || !handshake) && sc.Scan() { // the handshake: prctl has run
		line := sc.Text()
		if n, err := strconv.Atoi(strings.TrimPrefix(line, "pid ")); err == nil && strings.HasPrefix(line, "pid ") {
			pid = n
		}
		handshake = handshake || protocol.IsHandshakeCandidate([]byte(line))
	}
	if pid == 0 || !handshake {
		t.Fatalf("no pid (%d) or handshake (%v) from sh", pid, handshake)
	}
	if !alive(pid) {
		t.Fatal("the worker is not running")
	}
	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	deadline := time.Now().Add(waitLimit)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("the worker outlived its parent")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether a process runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
