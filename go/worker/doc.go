// Package worker writes polyglot workers in Go: a module's methods, served to
// polyglot-host as an out-of-process worker over the wire protocol of docs/protocol.md
// (JSON lines or length-prefixed MessagePack, on stdio, a Unix socket, or gRPC).
//
//	w := worker.New("text-go", "1.0.0")
//	w.Method("upper", func(ctx context.Context, call *worker.Call) (any, error) {
//		var args struct{ Text string `json:"text"` }
//		if err := call.Bind(&args); err != nil {
//			return nil, err // INVALID_PARAMS, naming the param
//		}
//		return strings.ToUpper(args.Text), nil
//	})
//	w.Serve() // all of main: serves until the host says stop, then exits
//
// Each call runs on its own goroutine, so a worker takes many calls at once (up to
// WithMaxConcurrency, announced in the handshake) and answers each when it is done. A
// handler's ctx is cancelled when the host sends $cancel for its call (which is answered
// CANCELLED at once) and when the host goes away. A handler returns a result (any value
// package protocol can encode) or an error: a [Error] becomes that error object, any other
// error INTERNAL; a panic is recovered and answered INTERNAL.
//
// # Layout
//
//   - worker.go: [Worker], [New], the options, method registration, the handshake.
//   - call.go: [Call], what a handler gets: params, binding, progress, logs.
//   - error.go: [Error], a method's error response, and the code constants.
//   - serve.go: [Worker.ServeIO], the protocol loop over any byte stream: dispatch,
//     calls in flight, $health, $cancel, $shutdown; what the connections of one
//     server share (method slots, $shutdown).
//   - output.go: the batched writer of the protocol stream.
//   - env.go: [Worker.Serve] and [Worker.ServeStdio]: the host's environment,
//     transports, and the message for a worker run by hand.
//   - grpc.go: [Worker.ServeGRPC], the gRPC transport's lifetime: listening, the
//     handshake line, stdin's end, signals, draining.
//   - grpc_service.go: the service polyglot.v1.Worker: Session (the serve loop over a
//     stream) and the unary RPCs Describe, Call, CallStream, Health, Shutdown.
//   - grpc_stream.go: a Session stream as the io.Reader and io.Writer of the serve loop,
//     in chunks of at most 1 MiB.
//   - stdio_*.go: taking stdout for the protocol; dying with the host (Linux).
//   - testhooks.go: test-only hooks that break the protocol on purpose.
package worker
