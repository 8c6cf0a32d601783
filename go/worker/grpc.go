package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// The gRPC transport of docs/protocol.md, section 10: the server's lifetime. The service
// itself is grpc_service.go; a session's byte streams are grpc_stream.go.

// remoteDrainTimeout is how long a remote worker that got SIGTERM or SIGINT (or
// $shutdown) waits for the calls it holds before it exits anyway: the protocol's 5 s, the
// grace period a host gives a worker it started, so both kinds stop alike.
const remoteDrainTimeout = 5 * time.Second

// grpcStopTimeout bounds the graceful stop of the gRPC server once every call is done:
// long enough for the last responses and trailers to leave, short enough that a client
// holding a connection open cannot keep the worker alive.
const grpcStopTimeout = 2 * time.Second

// minRecvLimit is the smallest receive limit of the server: a chunk of up to 4 MiB of data
// (section 10), plus room for the message's own framing. The limit is the frame limit
// when that is larger, so that a unary Call takes params as large as a frame.
const minRecvLimit = 4<<20 + 64<<10

// keepalivePolicy lets clients ping a connection every few seconds, also when no RPC is
// open: grpc-go's default (a ping at most every 5 minutes) would close the connection of
// a host that checks a remote worker's connection more often, with "too many pings".
var keepalivePolicy = keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}

// socketName is the file name of a host-started worker's Unix socket, in a fresh private
// temporary directory.
const socketName = "worker.sock"

// ServeGRPC serves the worker over gRPC (docs/protocol.md, section 10): the service
// polyglot.v1.Worker, whose Session stream carries the same protocol as stdio, beside
// the unary RPCs Describe, Call, CallStream, Health and Shutdown. It reads POLYGLOT_*
// from the environment as [Worker.ServeStdio] does (which calls it for
// POLYGLOT_TRANSPORT=grpc; here the variable is not consulted).
//
// Started by the host (POLYGLOT_GRPC_LISTEN unset), it listens on a Unix socket
// worker.sock in a new private temporary directory (TCP 127.0.0.1:0 where that fails),
// and only then prints its handshake line on stdout, with "transport":"grpc" and the
// "address". Stdout and stderr stay the program's own. It returns nil when stdin reaches
// end of file (at once: calls still running are abandoned, the socket is removed), or
// after $shutdown (on any session) or the Shutdown RPC once every call held was answered.
//
// A remote worker (POLYGLOT_GRPC_LISTEN=host:port or unix:/path) listens there, prints
// the same line, ignores stdin, and serves until SIGTERM or SIGINT (or $shutdown): it then
// answers new calls SHUTTING_DOWN, waits up to 5 s for the calls it holds, and returns
// nil.
//
// Ending a session cancels that session's calls; the worker keeps serving others. The
// method slots ([WithMaxConcurrency]) are shared by every session and unary call. When
// ctx is cancelled it stops at once and returns ctx's error. The errors are those of
// ServeStdio, and failures to listen or serve.
func (w *Worker) ServeGRPC(ctx context.Context) error {
	cfg, err := configFromEnv(w.module, os.LookupEnv)
	if err != nil {
		return err
	}
	return w.serveGRPC(ctx, cfg)
}

// serveGRPC is ServeGRPC with the environment read.
func (w *Worker) serveGRPC(ctx context.Context, cfg serveConfig) error {
	if cfg.opts.MaxFrame <= 0 {
		cfg.opts.MaxFrame = protocol.DefaultMaxFrame
	}
	remote := cfg.listen != ""
	if !remote {
		dieWithParent()
	}
	lis, address, removeSocket, err := listenGRPC(cfg.listen)
	if err != nil {
		return err
	}
	defer removeSocket()

	base, stopAll := context.WithCancel(ctx)
	defer stopAll()
	svc := &grpcService{
		w:       w,
		opts:    cfg.opts,
		address: address,
		shared:  newShared(w.maxConcurrency),
		ctx:     base,
	}
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(max(minRecvLimit, cfg.opts.MaxFrame+64<<10)),
		grpc.KeepaliveEnforcementPolicy(keepalivePolicy),
	)
	polyglotv1.RegisterWorkerServer(srv, svc)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	// Listening: now it may say where.
	if _, err := os.Stdout.Write(svc.handshake(cfg.opts.Codec).Line()); err != nil {
		srv.Stop()
		return fmt.Errorf("writing the handshake to stdout: %w", err)
	}

	var stdinClosed <-chan struct{}
	var signals chan os.Signal
	if remote {
		signals = make(chan os.Signal, 2)
		signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
		defer signal.Stop(signals)
	} else {
		stdinClosed = watchStdin()
	}

	// stopNow ends everything at once: sessions, calls, connections.
	stopNow := func() {
		stopAll()
		srv.Stop()
	}
	// stopDrained stops a server that holds no calls any more, letting the last trailers
	// leave.
	stopDrained := func() {
		stopped := make(chan struct{})
		go func() {
			srv.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(grpcStopTimeout):
		}
		stopNow()
	}

	var drainLimit <-chan time.Time // set once a remote worker starts draining
	shutdown := svc.shared.shutdown
	for {
		select {
		case <-ctx.Done():
			stopNow()
			return ctx.Err()
		case err := <-served:
			stopNow()
			if err == nil || errors.Is(err, grpc.ErrServerStopped) {
				return nil
			}
			return fmt.Errorf("serving gRPC on %s: %w", address, err)
		case <-stdinClosed:
			stdinClosed = nil
			if svc.shared.shuttingDown.Load() {
				continue // $shutdown came first: it still drains (docs/protocol.md, section 5)
			}
			stopNow()
			return nil
		case sig := <-signals:
			if svc.shared.shuttingDown.Load() {
				logStderr("%v again: stopping without waiting for the calls still running", sig)
				stopNow()
				return nil
			}
			logStderr("%v: taking no new calls, finishing the ones held (at most %v)", sig, remoteDrainTimeout)
			svc.shared.beginShutdown()
		case <-shutdown:
			shutdown = nil
			if remote {
				drainLimit = time.After(remoteDrainTimeout)
			}
		case <-drainLimit:
			logStderr("calls still running after %v: stopping without them", remoteDrainTimeout)
			stopNow()
			return nil
		case <-svc.shared.idle:
			stopDrained()
			return nil
		}
	}
}

// listenGRPC listens where the worker serves: listen (POLYGLOT_GRPC_LISTEN) for a remote
// worker, else a Unix socket in a new private temporary directory (TCP loopback where that
// fails). It returns the address to announce and a function that removes the socket and
// its directory (safe to call when the listener is closed already).
func listenGRPC(listen string) (net.Listener, string, func(), error) {
	if listen != "" {
		network, addr, err := parseListen(listen)
		if err != nil {
			return nil, "", nil, &EnvError{protocol.EnvGRPCListen, listen, err.Error()}
		}
		lis, err := net.Listen(network, addr)
		if err != nil {
			return nil, "", nil, fmt.Errorf("listening on %s (%s): %w", listen, protocol.EnvGRPCListen, err)
		}
		if network == "unix" {
			return lis, "unix:" + addr, func() { lis.Close() }, nil
		}
		return lis, lis.Addr().String(), func() { lis.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "polyglot-grpc-") // mode 0700: only this user may connect
	if err == nil {
		path := filepath.Join(dir, socketName)
		lis, lerr := net.Listen("unix", path)
		if lerr == nil {
			// Closing a Unix listener removes its socket file; the directory goes after it.
			return lis, "unix:" + path, func() { lis.Close(); os.RemoveAll(dir) }, nil
		}
		os.RemoveAll(dir)
		err = lerr
	}
	logStderr("no Unix socket for gRPC (%v): listening on TCP loopback instead", err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("listening for gRPC on 127.0.0.1: %w", err)
	}
	return lis, lis.Addr().String(), func() { lis.Close() }, nil
}

// parseListen reads a listen address: "unix:/path" (made absolute) or "host:port".
func parseListen(listen string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		if path == "" {
			return "", "", errors.New("unix: needs the socket's path, as in unix:/run/worker.sock")
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", "", err
		}
		return "unix", abs, nil
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return "", "", fmt.Errorf("expected host:port (as in 0.0.0.0:7070) or unix:/path: %v", err)
	}
	return "tcp", listen, nil
}

// watchStdin gives a channel closed when stdin reaches end of file (or fails): the host
// closed it, or died. Whatever arrives before is ignored.
func watchStdin() <-chan struct{} {
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(closed)
	}()
	return closed
}
