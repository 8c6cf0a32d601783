package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// maxRecvMessage is the largest message the client accepts from the host: a result as
// large as the protocol's default frame limit (64 MiB), plus the response's other fields.
// gRPC's default (4 MiB) would refuse results every worker may send.
const maxRecvMessage = protocol.DefaultMaxFrame + 1<<20

// Client is a connection to one polyglot-host. It is safe for concurrent use; calls share
// one HTTP/2 connection.
type Client struct {
	conn  *grpc.ClientConn
	rt    polyglotv1.RuntimeClient
	codec protocol.Codec
}

// options are what Dial's options set.
type options struct {
	apiKey   string
	codec    protocol.Codec
	tls      *tls.Config
	dialOpts []grpc.DialOption
}

// Option configures a [Client] in [Dial].
type Option func(*options)

// WithAPIKey sends key with every RPC, as the metadata `authorization: Bearer <key>` the
// host checks when it runs with --api-key (or POLYGLOT_API_KEY).
func WithAPIKey(key string) Option {
	return func(o *options) { o.apiKey = key }
}

// WithCodec sets the codec of params and results: protocol.JSON (the default) or
// protocol.Msgpack. Either decodes to the same Go values.
func WithCodec(c protocol.Codec) Option {
	return func(o *options) { o.codec = c }
}

// WithTLS connects over TLS with cfg, whatever the target's scheme; an https:// target
// uses TLS with the system's roots without it.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a custom dialer), after
// the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Dial makes a client of the host at target: a URL as the host's own --connect takes it
// (http://127.0.0.1:50051, or https://host:port for TLS), host:port (plain text), or
// unix:/path. Like grpc.NewClient it does not wait for the connection: the first RPC
// connects, and fails with codes.Unavailable when nothing answers.
//
// The error says what is wrong with target or the options.
func Dial(target string, opts ...Option) (*Client, error) {
	o := options{codec: protocol.JSON}
	for _, opt := range opts {
		opt(&o)
	}
	if o.codec != protocol.JSON && o.codec != protocol.Msgpack {
		return nil, fmt.Errorf("client: unknown codec %v", o.codec)
	}
	addr, secure, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	switch {
	case o.tls != nil:
		creds = credentials.NewTLS(o.tls)
		secure = true
	case secure:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMessage)),
	}
	if o.apiKey != "" {
		if strings.ContainsAny(o.apiKey, "\r\n") {
			return nil, fmt.Errorf("client: the API key has characters a header cannot carry")
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{key: o.apiKey}))
	}
	conn, err := grpc.NewClient(addr, append(dialOpts, o.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", target, err)
	}
	return &Client{conn: conn, rt: polyglotv1.NewRuntimeClient(conn), codec: o.codec}, nil
}

// parseTarget gives the gRPC target of a URL, host:port or unix:/path, and whether the
// URL asks for TLS.
func parseTarget(target string) (addr string, secure bool, err error) {
	switch {
	case target == "":
		return "", false, fmt.Errorf("client: no target: want a URL such as http://127.0.0.1:50051")
	case strings.HasPrefix(target, "unix:"):
		return target, false, nil
	case strings.Contains(target, "://"):
		u, err := url.Parse(target)
		if err != nil {
			return "", false, fmt.Errorf("client: %q is not a URL: %w", target, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false, fmt.Errorf("client: %q: the scheme must be http or https", target)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", false, fmt.Errorf("client: %q: want scheme://host:port and nothing more", target)
		}
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host += ":" + port
		}
		return host, u.Scheme == "https", nil
	default:
		return target, false, nil
	}
}

// Close closes the connection; RPCs in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the client's gRPC connection, for other services of the host (its
// grpc.health.v1 service, reflection).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// bearer sends the API key as `authorization: Bearer <key>`.
type bearer struct{ key string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

// RequireTransportSecurity is false: a host on loopback serves plain text, and sends its
// key over it as the host's own --connect does.
func (b bearer) RequireTransportSecurity() bool { return false }
