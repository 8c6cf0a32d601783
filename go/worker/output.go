package worker

import (
	"io"
	"sync"
	"time"
)

// keepOutputBuffer is the largest write buffer kept for reuse: after one large response
// the writer gives its memory back instead of holding it for the rest of the session.
const keepOutputBuffer = 1 << 20

// output is the worker's side of the protocol stream. Frames are appended to one shared
// buffer; a single writer goroutine writes whatever has gathered in one Write call, so a
// burst of responses finished together costs one syscall, not one per response, and a
// frame is never held back while the writer is idle.
type output struct {
	mu     sync.Mutex
	buf    []byte // frames waiting to be written
	spare  []byte // the last written buffer, reused
	closed bool
	wake   chan struct{} // capacity 1: "there is something to write, or closed"
	done   chan struct{} // closed when the writer goroutine ends
	broken chan error    // capacity 1: the write error that stopped the writer
}

func newOutput() *output {
	return &output{
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		broken: make(chan error, 1),
	}
}

// send queues one whole frame; it never blocks on the stream. Frames sent after close
// are dropped.
func (o *output) send(frame []byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	wasEmpty := len(o.buf) == 0
	o.buf = append(o.buf, frame...)
	o.mu.Unlock()
	if wasEmpty {
		o.signal()
	}
}

func (o *output) signal() {
	select {
	case o.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// run writes queued frames to w until closed and drained, or until a write fails.
func (o *output) run(w io.Writer) {
	defer close(o.done)
	for {
		o.mu.Lock()
		batch := o.buf
		o.buf, o.spare = o.spare[:0], nil
		closed := o.closed
		o.mu.Unlock()
		if len(batch) > 0 {
			if _, err := w.Write(batch); err != nil {
				o.mu.Lock()
				o.closed = true
				o.buf = nil
				o.mu.Unlock()
				o.broken <- err
				return
			}
			if cap(batch) <= keepOutputBuffer {
				o.mu.Lock()
				o.spare = batch[:0]
				o.mu.Unlock()
			}
			continue
		}
		if closed {
			return
		}
		<-o.wake
	}
}

// close stops taking frames and waits up to timeout for the writer to write what is
// queued. It reports whether everything was written in time.
func (o *output) close(timeout time.Duration) bool {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
	select {
	case <-o.done:
	case <-time.After(timeout):
		return false
	}
	select {
	case err := <-o.broken:
		o.broken <- err // keep it for whoever else looks
		return false
	default:
		return true
	}
}
