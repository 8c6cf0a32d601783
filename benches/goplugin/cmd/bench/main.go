// Command bench measures github.com/hashicorp/go-plugin in its gRPC mode, the baseline
// polyglot's echo bench compares against: it launches the echo plugin the go-plugin way
// (plugin.NewClient, handshake on the plugin's stdout, gRPC over a Unix socket), then
// times echo calls of a 9-byte payload, the size of polyglot's ["hello"] params.
//
//  1. Latency: -warmup calls, then -calls sequential calls, each timed; p50 and p99.
//  2. Throughput: -throughput-calls calls made by -in-flight goroutines at once.
//
// It prints one JSON line on stdout:
//
//	{"p50_us":175.2,"p99_us":310.4,"calls_per_sec":35210,"go_plugin":"v1.8.0"}
//
// Usage:
//
//	bench [-plugin PATH] [-warmup 1000] [-calls 10000] [-throughput-calls 100000] [-in-flight 64]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"polyglot.invalid/benches/goplugin/shared"
)

// payload is as long as the JSON params ["hello"] that polyglot's echo bench sends.
var payload = []byte(`["hello"]`)

// pluginModule is the module whose version the result names.
const pluginModule = "github.com/hashicorp/go-plugin"

// result is the one line the bench prints.
type result struct {
	P50Us       float64 `json:"p50_us"`
	P99Us       float64 `json:"p99_us"`
	CallsPerSec float64 `json:"calls_per_sec"`
	GoPlugin    string  `json:"go_plugin"`
}

type config struct {
	plugin          string
	warmup          int
	calls           int
	throughputCalls int
	inFlight        int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.plugin, "plugin", "", "the echo plugin binary (default: echo-plugin beside this program)")
	flag.IntVar(&cfg.warmup, "warmup", 1000, "sequential calls before the latency is measured")
	flag.IntVar(&cfg.calls, "calls", 10000, "sequential calls whose latency is measured")
	flag.IntVar(&cfg.throughputCalls, "throughput-calls", 100000, "calls of the throughput run")
	flag.IntVar(&cfg.inFlight, "in-flight", 64, "goroutines calling at once in the throughput run")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if cfg.calls < 1 || cfg.warmup < 0 || cfg.throughputCalls < 1 || cfg.inFlight < 1 {
		fmt.Fprintln(os.Stderr, "bench: -calls, -throughput-calls and -in-flight must be at least 1, -warmup at least 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	path, err := pluginPath(cfg.plugin)
	if err != nil {
		return err
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// go-plugin logs every plugin start and stop at debug level; keep stderr for
		// what goes wrong.
		Logger: hclog.New(&hclog.LoggerOptions{Name: "bench", Level: hclog.Warn, Output: os.Stderr}),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("starting the plugin %s: %w", path, err)
	}
	raw, err := rpc.Dispense(shared.PluginName)
	if err != nil {
		return fmt.Errorf("dispensing %q: %w", shared.PluginName, err)
	}
	echo := raw.(shared.Echoer)

	p50, p99, err := latency(ctx, echo, cfg.warmup, cfg.calls)
	if err != nil {
		return err
	}
	perSec, err := throughput(ctx, echo, cfg.throughputCalls, cfg.inFlight)
	if err != nil {
		return err
	}
	line, err := json.Marshal(result{
		P50Us:       round1(micros(p50)),
		P99Us:       round1(micros(p99)),
		CallsPerSec: math.Round(perSec),
		GoPlugin:    moduleVersion(pluginModule),
	})
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	fmt.Println(string(line))
	return nil
}

// pluginPath is the -plugin flag, or echo-plugin in this program's folder.
func pluginPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this program to find the plugin beside it (use -plugin): %w", err)
	}
	path := filepath.Join(filepath.Dir(self), "echo-plugin")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no plugin beside this program (build ./cmd/echo-plugin into the same folder, or use -plugin): %w", err)
	}
	return path, nil
}

// call makes one echo call and checks the answer.
func call(ctx context.Context, echo shared.Echoer) error {
	out, err := echo.Echo(ctx, payload)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, payload) {
		return fmt.Errorf("the plugin answered %q to %q", out, payload)
	}
	return nil
}

// latency times n sequential calls after warmup untimed ones; it returns the p50 and
// p99 (nearest rank).
func latency(ctx context.Context, echo shared.Echoer, warmup, n int) (p50, p99 time.Duration, err error) {
	for i := 0; i < warmup; i++ {
		if err := call(ctx, echo); err != nil {
			return 0, 0, fmt.Errorf("warm-up call %d: %w", i+1, err)
		}
	}
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if err := call(ctx, echo); err != nil {
			return 0, 0, fmt.Errorf("latency call %d: %w", i+1, err)
		}
		took[i] = time.Since(start)
	}
	sort.Slice(took, func(a, b int) bool { return took[a] < took[b] })
	return percentile(took, 0.50), percentile(took, 0.99), nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}

// throughput makes total calls from inFlight goroutines and returns calls per second.
func throughput(ctx context.Context, echo shared.Echoer, total, inFlight int) (float64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < inFlight; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if err := call(ctx, echo); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Set when a call failed, or when the run was interrupted (SIGINT, SIGTERM).
	if err := context.Cause(ctx); err != nil {
		return 0, fmt.Errorf("throughput run: %w", err)
	}
	return float64(total) / elapsed.Seconds(), nil
}

// moduleVersion is the version of module built into this program.
func moduleVersion(module string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == module {
				if dep.Replace != nil {
					return dep.Replace.Version
				}
				return dep.Version
			}
		}
	}
	return "unknown"
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func round1(x float64) float64 { return math.Round(x*10) / 10 }
