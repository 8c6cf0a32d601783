package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"polyglot.invalid/go/client"
)

// The README's example: a call through a host on loopback, with an API key. (Compiled, not
// run: it needs a running polyglot-host.)
func Example() {
	ctx := context.Background()
	c, err := client.Dial("http://127.0.0.1:50051", client.WithAPIKey("KEY"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Call(ctx, "text-go", "wordCount", []any{"a b a"}, client.WithTimeout(time.Second))
	if err != nil {
		var e *client.Error // the gRPC code, and the host's ErrorDetail
		if errors.As(err, &e) && e.Kind() == client.KindRemote {
			log.Printf("the worker answered %s: %s", e.RemoteCode(), e.RemoteMessage())
		}
		log.Fatal(err)
	}
	fmt.Println(reply.Value, reply.ServedBy, reply.Version, reply.ExecutionTime)
}

// Progress arrives in order before the result.
func ExampleClient_CallStream() {
	c, err := client.Dial("http://127.0.0.1:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	reply, err := c.CallStream(context.Background(), "text-go", "grep", map[string]any{"pattern": "a+"},
		func(p any) { fmt.Println("progress:", p) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Value)
}
