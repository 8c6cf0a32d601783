// Command echo-plugin is the go-plugin side of the baseline: it serves the echo service
// over go-plugin's gRPC protocol. The bench driver starts it; run by hand, go-plugin
// explains that it is a plugin and exits.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"

	"polyglot.invalid/benches/goplugin/shared"
)

// echo returns its payload unchanged.
type echo struct{}

func (echo) Echo(_ context.Context, payload []byte) ([]byte, error) {
	return payload, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: map[string]plugin.Plugin{
			shared.PluginName: &shared.EchoPlugin{Impl: echo{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
