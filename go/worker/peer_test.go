package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"polyglot.invalid/go/protocol"
)

// waitLimit bounds every single wait of a test on a worker: a broken worker fails the
// test instead of hanging it.
const waitLimit = 10 * time.Second

// peer plays the host for an in-process worker: it feeds requests to ServeIO through a
// pipe and reads the handshake and then the frames the worker writes.
type peer struct {
	t         *testing.T
	codec     protocol.Codec
	in        *io.PipeWriter
	messages  chan map[string]any
	handshake chan *protocol.Handshake
	ended     chan serveResult
	writes    atomic.Int64 // Write calls the worker made on its output
	cancel    context.CancelFunc

	gate     chan struct{} // when set, the first Write waits until it is closed
	held     atomic.Int64  // lines in that first Write
	gateOnce sync.Once
}

type serveResult struct {
	ended Ended
	err   error
}

// countingWriter counts the worker's Write calls, and can hold the first one back.
type countingWriter struct {
	p *peer
	w io.Writer
}

func (c countingWriter) Write(b []byte) (int, error) {
	if c.p.writes.Add(1) == 1 && c.p.gate != nil {
		c.p.held.Store(int64(bytes.Count(b, []byte("\n"))))
		<-c.p.gate
	}
	return c.w.Write(b)
}

func startPeer(t *testing.T, w *Worker, opts ServeOptions) *peer {
	return startPeerGated(t, w, opts, nil)
}

// startPeerGated starts a worker whose first Write (the handshake) waits for gate.
func startPeerGated(t *testing.T, w *Worker, opts ServeOptions, gate chan struct{}) *peer {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		t:         t,
		codec:     opts.Codec,
		in:        inW,
		messages:  make(chan map[string]any, 1000),
		handshake: make(chan *protocol.Handshake, 1),
		ended:     make(chan serveResult, 1),
		cancel:    cancel,
		gate:      gate,
	}
	go func() {
		ended, err := w.ServeIO(ctx, inR, countingWriter{p, outW}, opts)
		outW.Close()
		p.ended <- serveResult{ended, err}
	}()
	go p.read(outR)
	t.Cleanup(func() {
		cancel()
		inW.Close()
		outR.Close()
	})
	return p
}

func (p *peer) read(r io.Reader) {
	br := bufio.NewReader(r)
	line, err := br.ReadBytes('\n')
	if err != nil {
		close(p.messages)
		return
	}
	h, err := protocol.ParseHandshake(line)
	if err != nil {
		p.t.Errorf("bad handshake %q: %v", line, err)
	}
	p.handshake <- h
	fr := protocol.NewFrameReader(br, p.codec, 1<<30)
	for {
		f, err := fr.Next()
		if err != nil {
			close(p.messages)
			return
		}
		v, err := p.codec.Decode(f.Payload)
		if err != nil {
			p.t.Errorf("the worker wrote a frame that does not decode: %v", err)
			continue
		}
		if _, err := protocol.ParseMessage(v); err != nil {
			p.t.Errorf("the worker wrote an invalid message %v: %v", v, err)
		}
		p.messages <- v.(map[string]any)
	}
}

func (p *peer) hello() *protocol.Handshake {
	p.t.Helper()
	select {
	case h := <-p.handshake:
		return h
	case <-time.After(waitLimit):
		p.t.Fatal("no handshake")
		return nil
	}
}

// send writes one request (a map, or any value) as a frame.
func (p *peer) send(msg any) {
	p.t.Helper()
	frame, _, err := p.codec.EncodeFrame(nil, msg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(frame)
}

func (p *peer) sendRaw(b []byte) {
	p.t.Helper()
	if _, err := p.in.Write(b); err != nil {
		p.t.Fatalf("writing to the worker: %v", err)
	}
}

func (p *peer) recv() map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.messages:
		if !ok {
			p.t.Fatal("the worker's output ended")
		}
		return m
	case <-time.After(waitLimit):
		p.t.Fatal("no message in time")
		return nil
	}
}

// noMessage checks that nothing more arrives within d.
func (p *peer) noMessage(d time.Duration) {
	p.t.Helper()
	select {
	case m, ok := <-p.messages:
		if ok {
			p.t.Fatalf("unexpected message %v", m)
		}
	case <-time.After(d):
	}
}

// response waits for the response to id; messages before it go to seen.
func (p *peer) response(id any, seen *[]map[string]any) map[string]any {
	p.t.Helper()
	for {
		m := p.recv()
		if seen != nil {
			*seen = append(*seen, m)
		}
		_, isResult := m["result"]
		_, isError := m["error"]
		if sameID(m["id"], id) && (isResult || isError) {
			return m
		}
	}
}

func (p *peer) call(id any, method string, params any) map[string]any {
	p.t.Helper()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	p.send(req)
	return p.response(id, nil)
}

// wait waits for ServeIO to return.
func (p *peer) wait() serveResult {
	p.t.Helper()
	select {
	case r := <-p.ended:
		return r
	case <-time.After(waitLimit):
		p.t.Fatal("ServeIO did not return")
		return serveResult{}
	}
}

func errorCode(t *testing.T, m map[string]any) string {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", m)
	}
	return e["code"].(string)
}

func errorMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func mustResult(t *testing.T, m map[string]any) any {
	t.Helper()
	r, ok := m["result"]
	if !ok {
		t.Fatalf("not a result: %v", m)
	}
	return r
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errPlain = errors.New("disk on fire")

func fmtID(v any) string { return fmt.Sprintf("%T(%v)", v, v) }

// sameID compares ids as the protocol does: 1 (int) and int64(1) are the same id.
func sameID(a, b any) bool {
	x, okA := protocol.IDFromValue(a)
	y, okB := protocol.IDFromValue(b)
	return okA && okB && x == y
}
