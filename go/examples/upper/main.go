package main

import (
	"context"
	"strings"

	"polyglot.invalid/go/worker"
)

func main() {
	w := worker.New("upper-go", "1.0.0")
	w.Method("upper", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Text string `json:"text"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err // INVALID_PARAMS, naming the param
		}
		return strings.ToUpper(args.Text), nil
	})
	w.Serve()
}
