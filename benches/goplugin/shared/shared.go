// Package shared is what the bench driver and the echo plugin agree on, the go-plugin
// way: the handshake, the plugin map, the Go interface, and the gRPC glue between that
// interface and the generated echo.v1 service.
package shared

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"polyglot.invalid/benches/goplugin/gen/echov1"
)

// Handshake makes sure the driver launches this plugin and nothing else: a plugin run
// by hand, without the cookie in its environment, says so and exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "POLYGLOT_BENCH_GOPLUGIN",
	MagicCookieValue: "echo",
}

// PluginName is the key of the echo plugin in PluginMap.
const PluginName = "echo"

// PluginMap is the set of plugins the driver can dispense (and the plugin serves).
var PluginMap = map[string]plugin.Plugin{
	PluginName: &EchoPlugin{},
}

// Echoer returns the payload it is given.
type Echoer interface {
	Echo(ctx context.Context, payload []byte) ([]byte, error)
}

// EchoPlugin serves an Echoer over go-plugin's gRPC protocol. Impl is set on the plugin
// side only.
type EchoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Echoer
}

// GRPCServer registers the echo service on the plugin's gRPC server.
func (p *EchoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	echov1.RegisterEchoServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient is the driver's Echoer: a client of the echo service on go-plugin's
// connection to the plugin.
func (p *EchoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &GRPCClient{client: echov1.NewEchoClient(c)}, nil
}

// GRPCClient is an Echoer that calls the plugin.
type GRPCClient struct {
	client echov1.EchoClient
}

// Echo sends payload to the plugin and returns its answer.
func (c *GRPCClient) Echo(ctx context.Context, payload []byte) ([]byte, error) {
	resp, err := c.client.Echo(ctx, &echov1.EchoRequest{Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	return resp.GetPayload(), nil
}

type grpcServer struct {
	echov1.UnimplementedEchoServer
	impl Echoer
}

func (s *grpcServer) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	out, err := s.impl.Echo(ctx, req.GetPayload())
	if err != nil {
		return nil, err
	}
	return &echov1.EchoResponse{Payload: out}, nil
}
