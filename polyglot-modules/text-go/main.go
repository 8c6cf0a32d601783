// Command text-go is the bundled Go module of polyglot: text processing whose work runs
// concurrently, each call's documents spread over a bounded number of goroutines.
//
//   - grep(documents, pattern): for each document, the matches of an RE2 pattern.
//   - sha256(items): the SHA-256 digest of each string or binary item, in hex.
//   - wordCount(documents): the number of words in each document.
//
// The exact definitions are in README.md. It is built and started by polyglot-host
// (module.json); run by hand it says so and exits.
package main

import (
	"context"
	"fmt"

	"polyglot.invalid/go/worker"
)

// version is the module's version, as in module.json.
const version = "1.0.0"

// maxConcurrency is how many calls one worker takes at once. Each call already spreads
// its documents over GOMAXPROCS goroutines, so more calls at once only queue CPU work;
// 16 keeps short calls from waiting behind a long one.
const maxConcurrency = 16

func main() {
	newWorker().Serve()
}

func newWorker() *worker.Worker {
	w := worker.New("text-go", version, worker.WithMaxConcurrency(maxConcurrency))
	w.Method("grep", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Documents []string `json:"documents"`
			Pattern   string   `json:"pattern"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		re, err := compilePattern(args.Pattern)
		if err != nil {
			return nil, err
		}
		return grep(ctx, args.Documents, re)
	})
	w.Method("sha256", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Items []any `json:"items"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		items := make([][]byte, len(args.Items))
		for i, it := range args.Items {
			switch x := it.(type) {
			case string:
				items[i] = []byte(x)
			case []byte:
				items[i] = x
			default:
				return nil, worker.InvalidParams("sha256: params.items[%d]: expected a string or binary, got %s", i, kind(it))
			}
		}
		return sha256Hex(ctx, items)
	})
	w.Method("wordCount", func(ctx context.Context, call *worker.Call) (any, error) {
		var args struct {
			Documents []string `json:"documents"`
		}
		if err := call.Bind(&args); err != nil {
			return nil, err
		}
		return wordCount(ctx, args.Documents)
	})
	return w
}

// kind names a decoded value's type for an error message.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
