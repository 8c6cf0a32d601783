package worker

import (
	"fmt"
)

// WriteRawForTests writes data as it is to the protocol stream, in order with the
// worker's other output: e.g. a line that is not a frame. TEST ONLY: it exists so that a
// host's tests can make a worker break the protocol; a real method never needs it. It
// does nothing outside a served connection.
func WriteRawForTests(call *Call, data []byte) {
	if call.conn != nil {
		call.conn.out.send(append([]byte(nil), data...))
	}
}

// WriteMessageForTests writes msg (an object, keys in sorted order) as one frame of the
// worker's codec, unchecked against the calls in flight: e.g. a response to an id the
// host never issued. TEST ONLY, like [WriteRawForTests].
func WriteMessageForTests(call *Call, msg map[string]any) error {
	if call.conn == nil {
		return nil
	}
	frame, _, err := call.conn.codec.EncodeFrame(nil, msg)
	if err != nil {
		return fmt.Errorf("test message: %w", err)
	}
	call.conn.out.send(frame)
	return nil
}
