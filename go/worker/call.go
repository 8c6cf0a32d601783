package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"polyglot.invalid/go/protocol"
)

// Call is one call of a method: its params, and what the handler can send while it runs.
// Its methods are safe to use from any goroutine, also after the handler returned (they
// then do nothing).
type Call struct {
	// Method is the method the host called.
	Method string
	// Params are the call's params in the decoded form of package protocol: nil,
	// bool, int64, uint64, float64, string, []byte, []any or map[string]any. By
	// convention an array of positional arguments or an object of named ones.
	Params any

	id       protocol.ID
	timeout  time.Duration     // 0 when the host gave none
	conn     *conn             // nil outside a served connection (Worker.Call, gRPC unary calls)
	progress func(v any) error // set for a gRPC CallStream: sends one progress event, under mu
	cancel   context.CancelFunc

	mu   sync.Mutex
	done bool // answered: nothing more is sent for this call
}

// ID is the call's id as the host sent it: int64, uint64 (only above math.MaxInt64) or
// string; nil for a notification (a call that is not answered) and for a call through
// the unary gRPC RPCs (Call, CallStream), which have no id.
func (c *Call) ID() any { return c.id.Value() }

// Timeout is how long the host waits for this call (its timeoutMs), when it said so. On
// that deadline the host cancels the call, which cancels the handler's ctx.
func (c *Call) Timeout() (time.Duration, bool) { return c.timeout, c.timeout > 0 }

// Arg is the i-th positional argument: element i of array params (nil past the end), the
// params themselves for i == 0 when they are neither an array nor an object (nor null),
// else nil.
func (c *Call) Arg(i int) any {
	switch p := c.Params.(type) {
	case []any:
		if i >= 0 && i < len(p) {
			return p[i]
		}
		return nil
	case map[string]any, nil:
		return nil
	default:
		if i == 0 {
			return p
		}
		return nil
	}
}

// Bind stores the params into dst, a pointer: most usefully to a struct, which takes
// named params (an object, by `json` field names) and positional ones (an array, in field
// order) alike. Fields are required unless their tag says omitempty. See protocol.Bind
// for the rules. The error is an INVALID_PARAMS *Error naming the param that does not
// fit, ready to return from the handler.
func (c *Call) Bind(dst any) error {
	err := protocol.Bind(c.Params, dst)
	if err == nil {
		return nil
	}
	var be *protocol.BindError
	if errors.As(err, &be) {
		where := "params" + be.Path
		return &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("%s: %s: %s", c.Method, where, be.Problem)}
	}
	return err // dst is not something Bind can fill: the method's own mistake
}

// Progress sends a progress message ({"id": ..., "progress": v}) for this call; the
// host's caller sees each one in order, before the result. Through gRPC's CallStream it is
// a progress event. It does nothing for a notification, for a unary gRPC Call, or once
// the call was answered (or cancelled). The error says why v cannot be sent (outside the
// data model, or over the frame limit).
func (c *Call) Progress(v any) error {
	if c.progress != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.done {
			return nil
		}
		return c.progress(v)
	}
	if c.conn == nil || !c.id.Valid() {
		return nil
	}
	frame, err := c.conn.encode(&protocol.Progress{ID: c.id, Progress: v})
	if err != nil {
		return fmt.Errorf("progress for call %v: %w", c.id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.conn.out.send(frame)
	}
	return nil
}

// Log sends a log message: level is trace, debug, info, warn or error; fields (nil for
// none) are structured details the host logs beside the message. Outside a served
// connection it goes to stderr.
func (c *Call) Log(level, message string, fields map[string]any) error {
	if c.conn == nil {
		if !protocol.ValidLogLevel(level) {
			return fmt.Errorf("log level %q is not one of %v", level, protocol.LogLevels)
		}
		logStderr("%s: %s%s", level, message, formatFields(fields))
		return nil
	}
	return c.conn.log(level, message, fields)
}

// finish sends the call's response frame, unless it was answered already; after it no
// progress is sent for the call. The conn calls it holding conn.mu (lock order: conn.mu,
// then Call.mu, then the output's).
func (c *Call) finish(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	c.conn.out.send(frame)
}
