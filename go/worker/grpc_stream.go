package worker

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"polyglot.invalid/go/gen/polyglotv1"
)

// maxChunk is the most data the worker puts in one Chunk of a session: the protocol's
// 1 MiB (section 10), well under the 4 MiB every receiver takes, so a large frame
// travels as several messages instead of one the size of the frame.
const maxChunk = 1 << 20

// errSessionEnded is what a session's writer returns once its RPC handler is done.
var errSessionEnded = errors.New("the session ended")

// sessionReader is a Session's request stream as an io.Reader: the chunks' bytes in
// order, boundaries dropped. The end of the RPC, by the host's half-close or its
// cancellation, is io.EOF, as when stdin ends.
type sessionReader struct {
	stream polyglotv1.Worker_SessionServer
	buf    []byte // what the last chunk has left
}

func (r *sessionReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		chunk, err := r.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || r.stream.Context().Err() != nil {
				return 0, io.EOF
			}
			return 0, err
		}
		r.buf = chunk.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// sessionWriter is a Session's response stream as an io.Writer: each Write is sent as
// chunks of at most maxChunk bytes. The serve loop writes from one goroutine at a time;
// close makes later writes fail and waits for one in progress, so that nothing is sent on
// the stream once its handler has returned (which gRPC does not allow).
type sessionWriter struct {
	stream polyglotv1.Worker_SessionServer

	mu      sync.Mutex
	closed  bool
	writing sync.WaitGroup // a Write in progress; Add only under mu while not closed
}

func (w *sessionWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, errSessionEnded
	}
	w.writing.Add(1)
	w.mu.Unlock()
	defer w.writing.Done()
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxChunk)
		// A copy: a message must not change once sent, and the caller reuses p.
		if err := w.stream.Send(&polyglotv1.Chunk{Data: bytes.Clone(p[:k])}); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// close makes every later Write fail, then waits for the Write in progress, if any.
func (w *sessionWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.writing.Wait()
}
