package worker_test

import (
	"context"
	"fmt"
	"strings"

	"polyglot.invalid/go/worker"
)

func ExampleWorker_Call() {
	w := worker.New("upper-go", "1.0.0")
	w.Method("upper", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Text string `json:"text"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		return strings.ToUpper(args.Text), nil
	})
	out, err := w.Call(context.Background(), "upper", []any{"hello"})
	fmt.Println(out, err)
	_, err = w.Call(context.Background(), "upper", []any{42})
	fmt.Println(err)
	// Output:
	// HELLO <nil>
	// INVALID_PARAMS: upper: params.text: expected a string, got integer 42
}

func ExampleCall_Bind() {
	// Positional and named params bind alike; limit is optional (omitempty).
	for _, params := range []any{
		[]any{[]any{"a", "b"}, int64(3)},
		map[string]any{"documents": []any{"c"}},
		map[string]any{"limit": int64(1)},
	} {
		var args struct {
			Documents []string `json:"documents"`
			Limit     int      `json:"limit,omitempty"`
		}
		call := &worker.Call{Method: "grep", Params: params}
		err := call.Bind(&args)
		fmt.Println(args.Documents, args.Limit, err)
	}
	// Output:
	// [a b] 3 <nil>
	// [c] 0 <nil>
	// [] 1 INVALID_PARAMS: grep: params.documents: missing (required)
}
