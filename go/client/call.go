package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// Raw is params already encoded in the client's codec (a JSON text with the default
// codec): Call sends them as they are, where any other value is encoded first.
type Raw []byte

// Reply is a call's result and who served it.
type Reply struct {
	// Value is the result, decoded: nil, bool, int64, uint64, float64, string, []byte,
	// []any or map[string]any.
	Value any
	// Raw is the result as the host sent it, encoded in Codec.
	Raw []byte
	// Codec is the encoding of Raw.
	Codec protocol.Codec
	// ServedBy is the implementation that served the call: the module, a fallback
	// module, or "module (fallback file)".
	ServedBy string
	// Version is the version of the implementation that served it.
	Version string
	// Fallback reports that a fallback served the call.
	Fallback bool
	// Instance is the worker instance that served it.
	Instance uint32
	// ExecutionTime is the time spent in the method as the worker measured it; 0 when
	// unknown.
	ExecutionTime time.Duration
}

// Bind stores the result into dst, a pointer, with the rules of protocol.Bind (a struct
// takes an object by field name or an array by position). The error names what does not
// fit.
func (r *Reply) Bind(dst any) error {
	return protocol.Bind(r.Value, dst)
}

// CallOption sets an option of one call.
type CallOption func(*polyglotv1.CallRequest)

// WithTimeout sets the call's deadline on the host's side (timeout_ms). The deadline of
// ctx applies too, whichever is sooner.
func WithTimeout(d time.Duration) CallOption {
	return func(r *polyglotv1.CallRequest) {
		ms := uint64(max(d.Milliseconds(), 1))
		r.TimeoutMs = &ms
	}
}

// WithRoutingKey sets the key for sticky routing between versions (A/B deployments).
func WithRoutingKey(key string) CallOption {
	return func(r *polyglotv1.CallRequest) { r.RoutingKey = key }
}

// request builds the request of a call.
func (c *Client) request(module, method string, params any, opts []CallOption) (*polyglotv1.CallRequest, error) {
	req := &polyglotv1.CallRequest{Module: module, Method: method, Codec: codecOf(c.codec)}
	switch p := params.(type) {
	case nil: // empty params are null
	case Raw:
		req.Params = p
	default:
		b, err := c.codec.Encode(params)
		if err != nil {
			return nil, fmt.Errorf("client: %s.%s: the params cannot be sent: %w", module, method, err)
		}
		req.Params = b
	}
	for _, o := range opts {
		o(req)
	}
	return req, nil
}

// Call runs module's method with params (nil, [Raw], or any value package protocol
// encodes: by convention a slice of positional arguments or a map or struct of named
// ones) and gives its decoded result and who served it.
//
// The error is an [*Error] for every failure the host or gRPC reports: the module or
// method not found, the worker's own error ([KindRemote]), a timeout, no instance
// available, a wrong API key, the host unreachable, ctx ending. Params that cannot be
// encoded, or a result that does not decode, are plain errors.
func (c *Client) Call(ctx context.Context, module, method string, params any, opts ...CallOption) (*Reply, error) {
	req, err := c.request(module, method, params, opts)
	if err != nil {
		return nil, err
	}
	resp, err := c.rt.Call(ctx, req)
	if err != nil {
		return nil, errorOf(err)
	}
	return c.reply(module, method, resp)
}

// CallStream is [Client.Call] for methods that report progress: progress (which may be
// nil) gets each progress value the method sends, decoded, in order, before CallStream
// returns the result. It runs on the goroutine that called CallStream.
func (c *Client) CallStream(ctx context.Context, module, method string, params any, progress func(any), opts ...CallOption) (*Reply, error) {
	req, err := c.request(module, method, params, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // leaving early (a result that does not decode) ends the stream
	stream, err := c.rt.CallStream(ctx, req)
	if err != nil {
		return nil, errorOf(err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, &Error{Code: codeUnknown, Message: fmt.Sprintf("the host ended the stream of %s.%s without a result", module, method)}
		}
		if err != nil {
			return nil, errorOf(err)
		}
		switch e := ev.GetEvent().(type) {
		case *polyglotv1.CallEvent_Progress:
			if progress == nil {
				continue
			}
			v, err := c.codec.Decode(e.Progress)
			if err != nil {
				return nil, fmt.Errorf("client: %s.%s: a progress value does not decode: %w", module, method, err)
			}
			progress(v)
		case *polyglotv1.CallEvent_Result:
			return c.reply(module, method, e.Result)
		}
	}
}

// reply decodes a call's response.
func (c *Client) reply(module, method string, resp *polyglotv1.CallResponse) (*Reply, error) {
	codec := protocol.JSON
	if resp.GetCodec() == polyglotv1.Codec_CODEC_MSGPACK {
		codec = protocol.Msgpack
	}
	var v any
	if len(resp.GetResult()) > 0 {
		var err error
		if v, err = codec.Decode(resp.GetResult()); err != nil {
			return nil, fmt.Errorf("client: %s.%s: the result does not decode as %v: %w", module, method, codec, err)
		}
	}
	return &Reply{
		Value:         v,
		Raw:           resp.GetResult(),
		Codec:         codec,
		ServedBy:      resp.GetServedBy(),
		Version:       resp.GetVersion(),
		Fallback:      resp.GetFallback(),
		Instance:      resp.GetInstance(),
		ExecutionTime: time.Duration(resp.GetExecutionTimeUs()) * time.Microsecond,
	}, nil
}

// codecOf is a codec as the API names it.
func codecOf(c protocol.Codec) polyglotv1.Codec {
	if c == protocol.Msgpack {
		return polyglotv1.Codec_CODEC_MSGPACK
	}
	return polyglotv1.Codec_CODEC_JSON
}
