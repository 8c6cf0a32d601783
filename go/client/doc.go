// Package client calls polyglot modules through a running polyglot-host, over its gRPC
// API: the service polyglot.v1.Runtime of proto/polyglot/v1/runtime.proto.
//
//	c, err := client.Dial("http://127.0.0.1:50051", client.WithAPIKey(key))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	reply, err := c.Call(ctx, "text-go", "wordCount", []any{"a b a"})
//	if err != nil {
//		var e *client.Error // the gRPC code, and the host's ErrorDetail when it sent one
//		if errors.As(err, &e) && e.Kind() == client.KindRemote {
//			log.Printf("the worker answered %s: %s", e.RemoteCode(), e.RemoteMessage())
//		}
//		return err
//	}
//	fmt.Println(reply.Value, reply.ServedBy, reply.ExecutionTime)
//
// Params and results travel encoded in the client's codec (JSON unless [WithCodec] says
// MessagePack) with the value rules of docs/protocol.md section 7, so the client needs no
// schema of the modules it calls: params are any Go value package protocol encodes, and
// results come back decoded into its types (nil, bool, int64, uint64, float64, string,
// []byte, []any, map[string]any), or typed with [Reply.Bind].
//
// Every error of an RPC is an [*Error]: its gRPC code and message, and the host's
// ErrorDetail (the kind of failure, the module and method, a worker's own error code,
// message and data, the causes when no implementation could take the call).
//
// # Layout
//
//   - client.go: [Client], [Dial] and its options.
//   - call.go: [Client.Call], [Client.CallStream], [Reply] and the call options.
//   - modules.go: [Client.ListModules], [Client.GetModule], [Client.Reload],
//     [Client.WatchEvents].
//   - error.go: [Error], the status and the host's ErrorDetail read back from an RPC.
package client
