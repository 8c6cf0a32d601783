// Command client calls one method of a module through a running polyglot-host, over its
// gRPC API, and prints the result as one line of JSON.
//
//	go run ./examples/client -connect http://127.0.0.1:50051 [-api-key KEY] MODULE METHOD [JSON_PARAMS]
//
// JSON_PARAMS (default []) is an array of positional arguments or an object of named
// ones; binary values are {"$bytes": "<base64>"} (docs/protocol.md, section 7). The API
// key defaults to $POLYGLOT_API_KEY. On an error it prints "error: CODE (kind): message"
// to stderr and exits 1 (2 for a mistake on the command line).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"polyglot.invalid/go/client"
	"polyglot.invalid/go/protocol"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the program, returning its exit status.
func run(args []string) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: client -connect URL [-api-key KEY] [-timeout-ms N] MODULE METHOD [JSON_PARAMS]")
		fs.PrintDefaults()
	}
	connect := fs.String("connect", "", "the host's gRPC address, e.g. http://127.0.0.1:50051")
	apiKey := fs.String("api-key", os.Getenv("POLYGLOT_API_KEY"), "the host's API key (default $POLYGLOT_API_KEY)")
	timeoutMs := fs.Int64("timeout-ms", 0, "the call's deadline in milliseconds (0: the host's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *connect == "" || fs.NArg() < 2 || fs.NArg() > 3 {
		fs.Usage()
		return 2
	}
	module, method := fs.Arg(0), fs.Arg(1)
	params := []byte("[]")
	if fs.NArg() == 3 {
		params = []byte(fs.Arg(2))
	}
	// Checked here, so a typo is a usage error; sent as typed (client.Raw).
	if _, err := protocol.JSON.Decode(params); err != nil {
		fmt.Fprintf(os.Stderr, "error: the params are not valid JSON: %v\n", err)
		return 2
	}

	var opts []client.Option
	if *apiKey != "" {
		opts = append(opts, client.WithAPIKey(*apiKey))
	}
	c, err := client.Dial(*connect, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	defer c.Close()
	var callOpts []client.CallOption
	if *timeoutMs > 0 {
		callOpts = append(callOpts, client.WithTimeout(time.Duration(*timeoutMs)*time.Millisecond))
	}
	reply, err := c.Call(context.Background(), module, method, client.Raw(params), callOpts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	out, err := oneLine(reply)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	fmt.Printf("%s\n", out)
	return 0
}

// oneLine is the result as one line of JSON: the host's own JSON, compacted (keys and
// numbers as the host wrote them).
func oneLine(r *client.Reply) ([]byte, error) {
	if r.Codec != protocol.JSON { // not with client.Dial's default codec; kept for safety
		return protocol.JSON.Encode(r.Value)
	}
	if len(r.Raw) == 0 {
		return []byte("null"), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, r.Raw); err != nil {
		return nil, errors.New("the host's result is not JSON: " + err.Error())
	}
	return buf.Bytes(), nil
}
