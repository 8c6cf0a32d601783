package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// CodecMetadata is the request metadata of a Session that names its codec, json or
// msgpack (docs/protocol.md, section 10); without it a session uses POLYGLOT_CODEC.
const CodecMetadata = "polyglot-codec"

// healthStatusUnhealthy is the Health RPC's status for a health function that failed; ok
// and degraded come from the function's map.
const healthStatusUnhealthy = "unhealthy"

// grpcService is polyglot.v1.Worker for one Worker. Its sessions and unary calls share
// the method slots and $shutdown.
type grpcService struct {
	polyglotv1.UnimplementedWorkerServer

	w       *Worker
	opts    ServeOptions // the worker's default codec and its frame limit
	address string       // where it listens, as announced
	shared  *shared
	ctx     context.Context // cancelled when the server stops: ends every session and call
}

// handshake is the handshake of a session in codec: the worker's, with the transport and
// the address it printed.
func (s *grpcService) handshake(codec protocol.Codec) *protocol.Handshake {
	h := s.w.Handshake(codec)
	h.Transport = protocol.TransportGRPC
	h.Address = s.address
	return h
}

// Session carries the protocol of sections 2-8 over the stream: the handshake line, then
// frames in the session's codec, served by the same loop as stdio.
func (s *grpcService) Session(stream polyglotv1.Worker_SessionServer) error {
	codec := s.opts.Codec
	if v := metadata.ValueFromIncomingContext(stream.Context(), CodecMetadata); len(v) > 0 && v[0] != "" {
		c, err := protocol.ParseCodec(v[0])
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "metadata %s: %v", CodecMetadata, err)
		}
		codec = c
	}
	if !s.shared.hold() {
		return status.Error(codes.Unavailable, "the worker is shutting down and takes no new sessions")
	}
	defer s.shared.release()

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()

	in := &sessionReader{stream: stream}
	out := &sessionWriter{stream: stream}
	opts := s.opts
	opts.Codec = codec
	_, err := s.w.serveConn(ctx, in, out, opts, s.shared, s.handshake(codec))
	out.close() // nothing may be sent once this handler returns
	switch {
	case s.ctx.Err() != nil:
		return status.Error(codes.Unavailable, "the worker stopped")
	case stream.Context().Err() != nil:
		return status.FromContextError(stream.Context().Err()).Err()
	case err != nil:
		code := codes.Internal
		if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
			code = st.Code() // a chunk over the limit, say: ResourceExhausted
		}
		return status.Errorf(code, "session: %v", err)
	}
	return nil // the input ended, or $shutdown and every call was answered
}

// Describe gives the handshake's fields.
func (s *grpcService) Describe(context.Context, *polyglotv1.DescribeRequest) (*polyglotv1.DescribeResponse, error) {
	h := s.w.Handshake(s.opts.Codec)
	return &polyglotv1.DescribeResponse{
		Protocol:       uint32(h.Protocol),
		Module:         h.Module,
		Version:        h.Version,
		Language:       h.Language,
		Methods:        h.Methods,
		MaxConcurrency: uint32(h.MaxConcurrency),
		Codec:          h.Codec.String(),
		Pid:            uint32(os.Getpid()),
	}, nil
}

// Call runs one method; its progress goes nowhere.
func (s *grpcService) Call(ctx context.Context, req *polyglotv1.WorkerCallRequest) (*polyglotv1.WorkerCallResponse, error) {
	return s.call(ctx, req, nil)
}

// CallStream runs one method, sending each progress value as an event before the result.
func (s *grpcService) CallStream(req *polyglotv1.WorkerCallRequest, stream polyglotv1.Worker_CallStreamServer) error {
	send := func(data []byte) error {
		return stream.Send(&polyglotv1.WorkerCallEvent{Event: &polyglotv1.WorkerCallEvent_Progress{Progress: data}})
	}
	resp, err := s.call(stream.Context(), req, send)
	if err != nil {
		return err
	}
	return stream.Send(&polyglotv1.WorkerCallEvent{Event: &polyglotv1.WorkerCallEvent_Result{Result: resp}})
}

// call runs a unary call. A method's error is the response's error; the RPC's error is a
// status for what is not a call at all (undecodable params, a cancelled RPC). progress,
// when set, sends one encoded progress value.
func (s *grpcService) call(ctx context.Context, req *polyglotv1.WorkerCallRequest, progress func([]byte) error) (*polyglotv1.WorkerCallResponse, error) {
	codec := protocol.JSON
	if req.GetCodec() != "" {
		c, err := protocol.ParseCodec(req.GetCodec())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "codec: %v", err)
		}
		codec = c
	}
	var params any
	if len(req.GetParams()) > 0 {
		if len(req.GetParams()) > s.opts.MaxFrame {
			return nil, status.Errorf(codes.ResourceExhausted, "the params are %d bytes, over the frame limit of %d bytes", len(req.GetParams()), s.opts.MaxFrame)
		}
		p, err := codec.Decode(req.GetParams())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "the params are not valid %s: %v", codec, err)
		}
		params = p
	}
	method := req.GetMethod()
	fn := s.w.methods[method]
	switch {
	case strings.HasPrefix(method, "$"):
		return errorResponse(codec, Errorf(CodeMethodNotFound,
			"%q is reserved for the protocol; the RPCs Health and Shutdown do what the reserved methods do", method), 0), nil
	case fn == nil:
		return errorResponse(codec, s.w.notServed(method), 0), nil
	}
	if !s.shared.hold() {
		return errorResponse(codec, shuttingDownError(method), 0), nil
	}
	defer s.shared.release()

	// The call's ctx ends with the RPC (cancelled, or its deadline), with its timeout_ms,
	// and when the server stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	call := &Call{Method: method, Params: params, cancel: cancel}
	if ms := req.GetTimeoutMs(); ms > 0 {
		call.timeout = time.Duration(ms) * time.Millisecond
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, call.timeout)
		defer stop()
	}
	if progress != nil {
		call.progress = func(v any) error {
			data, err := s.encode(codec, v)
			if err != nil {
				return fmt.Errorf("progress: %w", err)
			}
			return progress(data)
		}
	}

	started := time.Now()
	if !s.shared.acquire(ctx) {
		return nil, s.endedStatus(ctx, method)
	}
	result, err := invoke(ctx, fn, call)
	s.shared.releaseSlot()
	took := time.Since(started)
	call.mu.Lock()
	call.done = true // no progress after this point: the result is the last event
	call.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return nil, s.endedStatus(ctx, method)
	}
	if err != nil {
		return errorResponse(codec, err, took), nil
	}
	data, err := s.encode(codec, result)
	if err != nil {
		var tooLarge *protocol.FrameTooLargeError
		if errors.As(err, &tooLarge) {
			return errorResponse(codec, Errorf(CodeFrameTooLarge, "the result is %d bytes, over the frame limit of %d bytes", tooLarge.Size, tooLarge.Limit), took), nil
		}
		return errorResponse(codec, Errorf(CodeInternal, "the result cannot be sent: %v", err), took), nil
	}
	return &polyglotv1.WorkerCallResponse{
		Outcome:         &polyglotv1.WorkerCallResponse_Result{Result: data},
		ExecutionTimeUs: uint64(took.Microseconds()),
	}, nil
}

// endedStatus is the status of a call whose ctx ended before it was answered: the RPC's
// own end (cancelled, deadline), its timeout_ms, or the server stopping.
func (s *grpcService) endedStatus(ctx context.Context, method string) error {
	switch {
	case s.ctx.Err() != nil:
		return status.Errorf(codes.Unavailable, "the worker stopped while %s ran", method)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s did not finish in time", method)
	default:
		return status.Errorf(codes.Canceled, "%s was cancelled", method)
	}
}

// encode gives v in codec, refusing a value over the frame limit.
func (s *grpcService) encode(codec protocol.Codec, v any) ([]byte, error) {
	data, err := encodeValue(codec, v)
	if err != nil {
		return nil, err
	}
	if len(data) > s.opts.MaxFrame {
		return nil, &protocol.FrameTooLargeError{Size: len(data), Limit: s.opts.MaxFrame}
	}
	return data, nil
}

// encodeValue is codec.Encode, with a panic in a value's own marshaler turned into an
// error.
func encodeValue(codec protocol.Codec, v any) (data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			data, err = nil, fmt.Errorf("encoding it panicked: %v", p)
		}
	}()
	return codec.Encode(v)
}

// errorResponse is a call's error as the response, its data encoded in codec (an error
// whose data cannot be sent becomes INTERNAL, saying why), with the time the method took
// (0 for a call refused before it ran).
func errorResponse(codec protocol.Codec, err error, took time.Duration) *polyglotv1.WorkerCallResponse {
	obj := errorObject(err, CodeInternal)
	we := &polyglotv1.WorkerError{Code: obj.Code, Message: obj.Message}
	if obj.Data != nil {
		data, err := encodeValue(codec, obj.Data)
		if err != nil {
			we = &polyglotv1.WorkerError{Code: CodeInternal, Message: fmt.Sprintf("the error's data cannot be sent: %v", err)}
		} else {
			we.Data = data
		}
	}
	return &polyglotv1.WorkerCallResponse{
		Outcome:         &polyglotv1.WorkerCallResponse_Error{Error: we},
		ExecutionTimeUs: uint64(took.Microseconds()),
	}
}

// Health is $health: ok or degraded (with the reason) from the health function, or
// unhealthy with its error's message.
func (s *grpcService) Health(ctx context.Context, _ *polyglotv1.WorkerHealthRequest) (*polyglotv1.WorkerHealthResponse, error) {
	res, err := s.w.runHealth(ctx)
	if err != nil {
		return &polyglotv1.WorkerHealthResponse{Status: healthStatusUnhealthy, Reason: errorObject(err, CodeUnhealthy).Message}, nil
	}
	st, _ := res["status"].(string)
	if st == "" {
		st = "ok"
	}
	reason, _ := res["reason"].(string)
	return &polyglotv1.WorkerHealthResponse{Status: st, Reason: reason}, nil
}

// Shutdown is $shutdown: answered once the worker takes no new calls; it then finishes the
// calls held and stops.
func (s *grpcService) Shutdown(context.Context, *polyglotv1.WorkerShutdownRequest) (*polyglotv1.WorkerShutdownResponse, error) {
	s.shared.beginShutdown()
	return &polyglotv1.WorkerShutdownResponse{}, nil
}
