package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"polyglot.invalid/go/protocol"
)

// flushTimeout bounds how long a worker that stops waits for its last frames to be
// written: long enough for any live host to read them, short enough that a host that
// stopped reading cannot keep the worker alive.
const flushTimeout = 2 * time.Second

// Ended says how [Worker.ServeIO] ended.
type Ended int

const (
	// InputClosed: the input reached end of file (the host is gone, or closed the
	// stream to stop the worker). Calls still running were abandoned.
	InputClosed Ended = iota + 1
	// Shutdown: $shutdown, and every call held was answered.
	Shutdown
)

func (e Ended) String() string {
	switch e {
	case InputClosed:
		return "input closed"
	case Shutdown:
		return "shutdown"
	}
	return "not ended"
}

// ServeOptions are the options of one serve loop, which [Worker.ServeStdio] reads from
// the host's environment. The zero value is JSON with the default frame limit.
type ServeOptions struct {
	// Codec is the codec of every frame after the handshake.
	Codec protocol.Codec
	// MaxFrame is the frame size limit in bytes; 0 means protocol.DefaultMaxFrame.
	MaxFrame int
}

// shared is what every connection of one server shares: the method slots, so that
// maxConcurrency bounds the whole worker and not each connection, and $shutdown, which
// stops the whole worker. [Worker.ServeIO] makes one for its single connection; the gRPC
// server one for all its sessions and unary calls.
type shared struct {
	slots chan struct{} // one token per call running a method (maxConcurrency)

	shuttingDown atomic.Bool   // set once by beginShutdown, under mu
	shutdown     chan struct{} // closed by beginShutdown

	mu    sync.Mutex
	holds int           // sessions and unary calls held (gRPC), see hold
	idle  chan struct{} // closed once shutting down with nothing held
}

func newShared(maxConcurrency int) *shared {
	return &shared{
		slots:    make(chan struct{}, maxConcurrency),
		shutdown: make(chan struct{}),
		idle:     make(chan struct{}),
	}
}

// beginShutdown stops new calls everywhere: every connection answers them SHUTTING_DOWN
// from now on, and ends once it holds nothing. Calling it again does nothing.
func (s *shared) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Swap(true) {
		return
	}
	close(s.shutdown)
	if s.holds == 0 {
		close(s.idle)
	}
}

// hold counts one more session or unary call, which a shutdown waits for (see idle). It
// reports false, counting nothing, once shutting down: the caller then refuses its work.
func (s *shared) hold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.holds++
	return true
}

// release ends what hold counted.
func (s *shared) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds--
	if s.holds == 0 && s.shuttingDown.Load() {
		close(s.idle)
	}
}

// acquire takes a method slot, or gives up when ctx ends first.
func (s *shared) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		if ctx.Err() != nil {
			<-s.slots
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

// releaseSlot gives back a slot taken with acquire.
func (s *shared) releaseSlot() { <-s.slots }

// conn serves one stream: frames in, dispatch, calls in flight, frames out.
type conn struct {
	w        *Worker
	codec    protocol.Codec
	maxFrame int
	out      *output
	ctx      context.Context // cancelled when serving ends: every handler's ctx derives from it
	shared   *shared

	mu            sync.Mutex
	calls         map[protocol.ID]*Call // calls with an id not answered yet; whoever removes one answers it, under mu
	notifications int                   // notifications running
	drained       chan struct{}         // closed once shutting down with nothing held
	drainedClosed bool
}

// ServeIO serves the worker over one pair of byte streams: writes the handshake, then
// answers requests read from r on w until the input ends (InputClosed: calls still
// running are abandoned, their ctx cancelled) or $shutdown was received and every call
// held is answered (Shutdown). When ctx is cancelled it stops the same way and returns
// ctx's error. The error is also set when reading or writing the streams fails.
//
// It returns without waiting for a Read on r that is still blocked; that goroutine ends
// with the next Read. Used by ServeStdio for stdio and sockets, and directly by tests.
func (w *Worker) ServeIO(ctx context.Context, r io.Reader, wr io.Writer, opts ServeOptions) (Ended, error) {
	return w.serveConn(ctx, r, wr, opts, newShared(w.maxConcurrency), w.Handshake(opts.Codec))
}

// serveConn is ServeIO with the state it shares with other connections (gRPC sessions)
// and the handshake to send first.
func (w *Worker) serveConn(ctx context.Context, r io.Reader, wr io.Writer, opts ServeOptions, sh *shared, hs *protocol.Handshake) (Ended, error) {
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = protocol.DefaultMaxFrame
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	c := &conn{
		w:        w,
		codec:    opts.Codec,
		maxFrame: opts.MaxFrame,
		out:      newOutput(),
		ctx:      ctx,
		shared:   sh,
		calls:    map[protocol.ID]*Call{},
		drained:  make(chan struct{}),
	}
	w.addServing(c)
	defer w.removeServing(c)

	c.out.send(hs.Line())
	go c.out.run(wr)
	readDone := make(chan error, 1)
	go func() { readDone <- c.readLoop(r) }()

	var ended Ended
	var err error
	shutdown := sh.shutdown // set to nil once seen, so the loop stops selecting it
	for ended == 0 && err == nil {
		select {
		case rerr := <-readDone:
			var te *protocol.TruncatedError
			switch {
			case errors.As(rerr, &te):
				logStderr("the input ended inside a frame (%d bytes of it)", te.Buffered)
			case rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, context.Canceled):
				err = fmt.Errorf("reading from the host: %w", rerr)
			}
			ended = InputClosed
			if err == nil && c.isShuttingDown() {
				// The host may close the input right after $shutdown: still drain.
				select {
				case <-c.drained:
					ended = Shutdown
				case <-ctx.Done():
					ended, err = 0, ctx.Err()
				case werr := <-c.out.broken:
					err = fmt.Errorf("writing to the host: %w", werr)
				}
			}
		case <-shutdown:
			// $shutdown, here or on another connection of the same server: this one
			// ends once it holds nothing.
			shutdown = nil
			c.mu.Lock()
			c.maybeDrainedLocked()
			c.mu.Unlock()
		case <-c.drained:
			ended = Shutdown
		case <-ctx.Done():
			err = ctx.Err()
		case werr := <-c.out.broken:
			err = fmt.Errorf("writing to the host: %w", werr)
		}
	}
	stop() // abandons calls still running: their ctx is cancelled
	if !c.out.close(flushTimeout) && err == nil {
		logStderr("the last messages could not be written (the host stopped reading)")
	}
	return ended, err
}

// readLoop reads frames and dispatches them until the input ends or serving stops.
func (c *conn) readLoop(r io.Reader) error {
	fr := protocol.NewFrameReader(r, c.codec, c.maxFrame)
	for {
		f, err := fr.Next()
		if err != nil {
			return err
		}
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		if f.TooLarge {
			if f.ID.Valid() {
				c.answer(f.ID, protocol.NewError(f.ID, CodeFrameTooLarge,
					fmt.Sprintf("the request is %d bytes, over the frame limit of %d bytes", f.Size, c.maxFrame), nil, -1))
			} else {
				logStderr("dropped a %d-byte request over the frame limit (no id readable)", f.Size)
			}
			continue
		}
		req, err := protocol.DecodeRequest(c.codec, f.Payload)
		if err != nil {
			c.refuse(f.Payload, err)
			continue
		}
		c.dispatch(req)
	}
}

// refuse answers a request that does not decode, or is not a valid envelope, with
// INVALID_REQUEST when its id can be read.
func (c *conn) refuse(payload []byte, err error) {
	var id protocol.ID
	var ir *protocol.InvalidRequestError
	if errors.As(err, &ir) {
		id = ir.ID
	} else {
		id, _ = protocol.IDFromHead(c.codec, payload)
	}
	if !id.Valid() {
		logStderr("dropped an invalid request: %v", err)
		return
	}
	c.answer(id, protocol.NewError(id, CodeInvalidRequest, err.Error(), nil, -1))
}

// dispatch handles one valid request.
func (c *conn) dispatch(req *protocol.Request) {
	id, method := req.ID, req.Method
	switch method {
	case protocol.MethodCancel:
		c.cancel(req.Params)
		if id.Valid() {
			c.answer(id, protocol.NewResult(id, nil, 0))
		}
		return
	case protocol.MethodShutdown:
		if id.Valid() {
			c.answer(id, protocol.NewResult(id, nil, 0))
		}
		c.shared.beginShutdown() // every connection, this one too, sees it on shared.shutdown
		return
	}
	fn := c.w.methods[method]
	if !id.Valid() {
		// A notification: run it, answer nothing.
		switch {
		case c.isShuttingDown() || strings.HasPrefix(method, "$"):
		case fn == nil:
			logStderr("dropped a notification of %q, a method this worker does not serve", method)
		default:
			c.startNotification(req, fn)
		}
		return
	}
	var refusal *Error
	c.mu.Lock()
	_, inFlight := c.calls[id]
	c.mu.Unlock()
	switch {
	case c.isShuttingDown():
		refusal = shuttingDownError(method)
	case method == protocol.MethodHealth:
	case strings.HasPrefix(method, "$"):
		refusal = Errorf(CodeMethodNotFound, "%q is not a reserved method this worker knows", method)
	case fn == nil:
		refusal = c.w.notServed(method)
	}
	if refusal == nil && inFlight {
		refusal = Errorf(CodeInvalidRequest, "id %v is already in use by a call that is still running", id)
	}
	if refusal != nil {
		c.answer(id, protocol.NewError(id, refusal.Code, refusal.Message, nil, -1))
		return
	}
	c.startCall(req, fn)
}

// answer sends a response that belongs to no call in flight (refusals, $cancel's null).
func (c *conn) answer(id protocol.ID, resp *protocol.Response) {
	c.out.send(c.responseFrame(resp))
}

func (c *conn) isShuttingDown() bool { return c.shared.shuttingDown.Load() }

// shuttingDownError is the SHUTTING_DOWN refusal of a new call of method.
func shuttingDownError(method string) *Error {
	return Errorf(CodeShuttingDown, "the worker is shutting down and takes no new calls (%s)", method)
}

// maybeDrainedLocked closes drained when shutting down with nothing held. c.mu is held.
func (c *conn) maybeDrainedLocked() {
	if c.isShuttingDown() && len(c.calls) == 0 && c.notifications == 0 && !c.drainedClosed {
		c.drainedClosed = true
		close(c.drained)
	}
}

func (c *conn) newCall(req *protocol.Request) (*Call, context.Context) {
	ctx, cancel := context.WithCancel(c.ctx)
	call := &Call{Method: req.Method, Params: req.Params, id: req.ID, conn: c, cancel: cancel}
	if req.TimeoutMs != nil {
		call.timeout = time.Duration(*req.TimeoutMs) * time.Millisecond
	}
	return call, ctx
}

// startCall runs a call with an id on its own goroutine and answers it when it is done
// (unless $cancel answered it first). fn nil means $health, which takes no method slot.
func (c *conn) startCall(req *protocol.Request, fn HandlerFunc) {
	call, ctx := c.newCall(req)
	c.mu.Lock()
	// Checked again under c.mu: a $shutdown on another connection may have come since
	// dispatch looked, and once it counts this connection drained no call may join.
	if fn != nil && c.isShuttingDown() {
		c.mu.Unlock()
		call.cancel()
		e := shuttingDownError(req.Method)
		c.answer(req.ID, protocol.NewError(req.ID, e.Code, e.Message, nil, -1))
		return
	}
	c.calls[req.ID] = call
	c.mu.Unlock()
	started := time.Now()
	go func() {
		defer call.cancel()
		var result any
		var err error
		if fn == nil {
			result, err = c.w.runHealth(ctx)
		} else {
			if !c.shared.acquire(ctx) {
				return // cancelled (and answered) while it waited for a slot
			}
			result, err = invoke(ctx, fn, call)
			c.shared.releaseSlot()
		}
		took := time.Since(started)
		var resp *protocol.Response
		if err != nil {
			code := CodeInternal
			if fn == nil {
				code = CodeUnhealthy
			}
			e := errorObject(err, code)
			resp = protocol.NewError(req.ID, e.Code, e.Message, e.Data, took)
		} else {
			resp = protocol.NewResult(req.ID, result, took)
		}
		frame := c.responseFrame(resp)
		// Removed and answered under c.mu: once the call is gone from calls (and the
		// worker may count itself drained), its answer is already queued.
		c.mu.Lock()
		if c.calls[req.ID] == call {
			delete(c.calls, req.ID)
			call.finish(frame)
		}
		c.maybeDrainedLocked()
		c.mu.Unlock()
	}()
}

// startNotification runs a notification on its own goroutine; nothing is answered.
func (c *conn) startNotification(req *protocol.Request, fn HandlerFunc) {
	call, ctx := c.newCall(req)
	c.mu.Lock()
	if c.isShuttingDown() { // as in startCall
		c.mu.Unlock()
		call.cancel()
		return
	}
	c.notifications++
	c.mu.Unlock()
	go func() {
		defer call.cancel()
		if c.shared.acquire(ctx) {
			if _, err := invoke(ctx, fn, call); err != nil {
				logStderr("notification %s failed: %v", req.Method, err)
			}
			c.shared.releaseSlot()
		}
		c.mu.Lock()
		c.notifications--
		c.maybeDrainedLocked()
		c.mu.Unlock()
	}()
}

// invoke runs a handler, turning a panic into an INTERNAL error (and its stack into a
// stderr report).
func invoke(ctx context.Context, fn HandlerFunc, call *Call) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			logStderr("method %s panicked: %v\n%s", call.Method, p, debug.Stack())
			result, err = nil, Errorf(CodeInternal, "the method panicked: %v", p)
		}
	}()
	return fn(ctx, call)
}

// runHealth answers $health: the health function's map merged into {"status": "ok"}.
func (w *Worker) runHealth(ctx context.Context) (result map[string]any, err error) {
	status := map[string]any{"status": "ok"}
	if w.health == nil {
		return status, nil
	}
	defer func() {
		if p := recover(); p != nil {
			logStderr("the health function panicked: %v\n%s", p, debug.Stack())
			result, err = nil, Errorf(CodeUnhealthy, "the health function panicked: %v", p)
		}
	}()
	extra, err := w.health(ctx)
	if err != nil {
		return nil, err
	}
	for k, v := range extra {
		status[k] = v
	}
	return status, nil
}

// cancel handles $cancel: the call is answered CANCELLED now and its ctx cancelled. An
// unknown id (or one already answered) is ignored.
func (c *conn) cancel(params any) {
	m, _ := params.(map[string]any)
	id, ok := protocol.IDFromValue(m["id"])
	if !ok {
		return
	}
	frame := c.responseFrame(protocol.NewError(id, CodeCancelled, "cancelled by the host", nil, -1))
	c.mu.Lock()
	call := c.calls[id]
	if call != nil {
		delete(c.calls, id)
		call.finish(frame)
	}
	c.maybeDrainedLocked()
	c.mu.Unlock()
	// Answered first, then stopped: a handler that wakes up on its cancelled ctx can no
	// longer send progress ahead of the CANCELLED response.
	if call != nil {
		call.cancel()
	}
}

// encodeFrame is codec.EncodeFrame, with a panic in a value's own MarshalJSON or
// MarshalText turned into an error: a method's result must never crash the worker.
func encodeFrame(codec protocol.Codec, msg any) (frame []byte, n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			frame, n, err = nil, 0, fmt.Errorf("encoding it panicked: %v", p)
		}
	}()
	return codec.EncodeFrame(nil, msg)
}

// encode gives the frame of a message, refusing one over the frame limit.
func (c *conn) encode(msg protocol.Message) ([]byte, error) {
	frame, n, err := encodeFrame(c.codec, msg)
	if err != nil {
		return nil, err
	}
	if n > c.maxFrame {
		return nil, &protocol.FrameTooLargeError{Size: n, Limit: c.maxFrame}
	}
	return frame, nil
}

// responseFrame encodes a response; one that cannot be sent is replaced by an error
// response for the same call: FRAME_TOO_LARGE over the limit, INTERNAL outside the data
// model.
func (c *conn) responseFrame(resp *protocol.Response) []byte {
	frame, n, err := encodeFrame(c.codec, resp)
	if err != nil {
		what, field := "result", ".result"
		if resp.Error != nil {
			what, field = "error's data", ".error.data"
		}
		var ee *protocol.EncodeError
		if errors.As(err, &ee) {
			ee.Path = strings.TrimPrefix(ee.Path, field) // relative to the result
		}
		alt := *resp
		alt.Result = nil
		alt.Error = &protocol.ErrorObject{Code: CodeInternal, Message: fmt.Sprintf("the %s cannot be sent: %v", what, err)}
		frame, n, err = c.codec.EncodeFrame(nil, &alt)
		if err != nil { // a message of strings and integers always encodes
			panic("worker: an error response failed to encode: " + err.Error())
		}
	}
	if n > c.maxFrame {
		alt := *resp
		alt.Result = nil
		alt.Error = &protocol.ErrorObject{Code: CodeFrameTooLarge,
			Message: fmt.Sprintf("the response is %d bytes, over the frame limit of %d bytes", n, c.maxFrame)}
		frame, _, _ = c.codec.EncodeFrame(nil, &alt)
	}
	return frame
}

// log sends a log message.
func (c *conn) log(level, message string, fields map[string]any) error {
	if !protocol.ValidLogLevel(level) {
		return fmt.Errorf("log level %q is not one of %v", level, protocol.LogLevels)
	}
	frame, err := c.encode(&protocol.Log{Level: level, Message: message, Fields: fields})
	if err != nil {
		logStderr("a log message could not be sent (%v): %s: %s", err, level, message)
		return fmt.Errorf("log message: %w", err)
	}
	c.out.send(frame)
	return nil
}
