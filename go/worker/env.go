package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"polyglot.invalid/go/protocol"
)

// ErrNotStartedByHost is matched (errors.Is) by the error of [Worker.ServeStdio] when the
// program was not started by polyglot-host: POLYGLOT_PROTOCOL is not set.
var ErrNotStartedByHost = errors.New("not started by polyglot-host")

// NotStartedError is the error of a worker run by hand. Its text says, in plain language,
// what the program is and how it is meant to run.
type NotStartedError struct {
	// Module is the module the worker serves.
	Module string
}

func (e *NotStartedError) Error() string {
	return fmt.Sprintf("this program is a polyglot worker for module %q; it is started by "+
		"polyglot-host, which speaks to it over stdin/stdout (see docs/protocol.md). "+
		"Add it to a module.json and run polyglot-host instead.", e.Module)
}

// Is makes errors.Is(err, ErrNotStartedByHost) true.
func (e *NotStartedError) Is(target error) bool { return target == ErrNotStartedByHost }

// EnvError is a POLYGLOT_* variable holding a value this SDK cannot serve with.
type EnvError struct {
	Variable string
	Value    string
	Problem  string
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Variable, e.Value, e.Problem)
}

// The transports of docs/protocol.md, section 1 (POLYGLOT_TRANSPORT).
const (
	transportStdio  = "stdio"
	transportSocket = "socket"
	transportGRPC   = protocol.TransportGRPC
)

// serveConfig is what the host's environment asks for.
type serveConfig struct {
	opts      ServeOptions
	transport string // stdio, socket or grpc
	socket    string // with socket: the host's socket
	listen    string // with grpc: POLYGLOT_GRPC_LISTEN, set for a remote worker; "" when host-started
}

// configFromEnv reads POLYGLOT_PROTOCOL, _CODEC, _MAX_FRAME, _TRANSPORT, _SOCKET and
// _GRPC_LISTEN.
func configFromEnv(module string, lookup func(string) (string, bool)) (serveConfig, error) {
	cfg := serveConfig{transport: transportStdio}
	protocolVersion, ok := lookup(protocol.EnvProtocol)
	if !ok {
		return cfg, &NotStartedError{Module: module}
	}
	if protocolVersion != strconv.Itoa(protocol.ProtocolVersion) {
		return cfg, &EnvError{protocol.EnvProtocol, protocolVersion, fmt.Sprintf(
			"the host speaks this protocol version, but this worker's SDK (Go) speaks version %d; "+
				"use a host and an SDK of the same protocol version", protocol.ProtocolVersion)}
	}
	if v, _ := lookup(protocol.EnvCodec); v != "" {
		c, err := protocol.ParseCodec(v)
		if err != nil {
			return cfg, &EnvError{protocol.EnvCodec, v, err.Error()}
		}
		cfg.opts.Codec = c
	}
	if v, _ := lookup(protocol.EnvMaxFrame); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return cfg, &EnvError{protocol.EnvMaxFrame, v, "expected a number of bytes >= 1"}
		}
		cfg.opts.MaxFrame = n
	}
	if v, _ := lookup(protocol.EnvTransport); v != "" {
		cfg.transport = v
	}
	switch cfg.transport {
	case transportStdio:
	case transportSocket:
		cfg.socket, _ = lookup(protocol.EnvSocket)
		if cfg.socket == "" {
			return cfg, &EnvError{protocol.EnvSocket, "", "the socket transport needs the path of the host's socket"}
		}
	case transportGRPC:
		cfg.listen, _ = lookup(protocol.EnvGRPCListen)
		if cfg.listen != "" {
			if _, _, err := parseListen(cfg.listen); err != nil {
				return cfg, &EnvError{protocol.EnvGRPCListen, cfg.listen, err.Error()}
			}
		}
	default:
		return cfg, &EnvError{protocol.EnvTransport, cfg.transport, `expected "stdio", "socket" or "grpc"`}
	}
	return cfg, nil
}

// ServeStdio serves the worker as the host started it: reads POLYGLOT_* from the
// environment, then speaks the protocol over stdin/stdout, or over the Unix socket the
// host names (POLYGLOT_TRANSPORT=socket), until the input ends or $shutdown is done. With
// POLYGLOT_TRANSPORT=grpc it is [Worker.ServeGRPC].
//
// With stdio, stdout is taken for the protocol: it moves to a private descriptor,
// descriptor 1 points at stderr and os.Stdout is set to os.Stderr, so a stray
// fmt.Println (or a C library's printf) lands in the host's log instead of corrupting
// the protocol; stdin moves the same way and descriptor 0 reads /dev/null. On Linux the
// process is killed when its parent (the host) dies.
//
// The error matches [ErrNotStartedByHost] when the program was run by hand, and is an
// [*EnvError] when the environment asks for what this SDK cannot do. It returns nil when
// the input ended or $shutdown was done; calls still running when the input ended are
// abandoned (the caller is expected to exit).
func (w *Worker) ServeStdio(ctx context.Context) error {
	cfg, err := configFromEnv(w.module, os.LookupEnv)
	if err != nil {
		return err
	}
	if cfg.transport == transportGRPC {
		return w.serveGRPC(ctx, cfg)
	}
	dieWithParent()
	var r io.Reader
	var wr io.Writer
	switch cfg.transport {
	case transportSocket:
		var d net.Dialer
		sock, err := d.DialContext(ctx, "unix", cfg.socket)
		if err != nil {
			return fmt.Errorf("connecting to the host's socket %s: %w", cfg.socket, err)
		}
		defer sock.Close()
		r, wr = sock, sock
	default:
		in, out, err := takeStdio()
		if err != nil {
			return fmt.Errorf("taking stdin and stdout for the protocol: %w", err)
		}
		r, wr = in, out
	}
	_, err = w.ServeIO(ctx, r, wr, cfg.opts)
	return err
}

// Serve is all of a worker's main: [Worker.ServeStdio] (which is [Worker.ServeGRPC] with
// POLYGLOT_TRANSPORT=grpc), then it ends the process with status 0 when the input ended,
// $shutdown was done or (a remote gRPC worker) SIGTERM or SIGINT was served, without
// waiting for handlers still running. Run by hand (without the host's environment), it says what the program is on
// stderr and exits with status 1; any other failure is reported there too, with status 1.
func (w *Worker) Serve() {
	err := w.ServeStdio(context.Background())
	if err == nil {
		os.Exit(0)
	}
	if errors.Is(err, ErrNotStartedByHost) {
		fmt.Fprintln(os.Stderr, err)
	} else {
		fmt.Fprintf(os.Stderr, "polyglot worker %s: %v\n", w.module, err)
	}
	os.Exit(1)
}

// logStderr writes one line to stderr, which the host forwards to its log.
func logStderr(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "polyglot worker: "+format+"\n", args...)
}
