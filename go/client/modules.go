package client

import (
	"context"
	"errors"
	"io"

	"polyglot.invalid/go/gen/polyglotv1"
)

// ListModules gives every module the host has loaded: name, version, language, state,
// health, methods, fallbacks, instances, restarts, calls in flight, last error. The error
// is an [*Error].
func (c *Client) ListModules(ctx context.Context) ([]*polyglotv1.ModuleInfo, error) {
	resp, err := c.rt.ListModules(ctx, &polyglotv1.ListModulesRequest{})
	if err != nil {
		return nil, errorOf(err)
	}
	return resp.GetModules(), nil
}

// GetModule gives one module's status. The error is an [*Error], of kind
// [KindModuleNotFound] for a module the host has not loaded.
func (c *Client) GetModule(ctx context.Context, module string) (*polyglotv1.ModuleInfo, error) {
	resp, err := c.rt.GetModule(ctx, &polyglotv1.GetModuleRequest{Module: module})
	if err != nil {
		return nil, errorOf(err)
	}
	return resp, nil
}

// Reload reloads a module without downtime: the host re-reads its manifest, starts new
// workers, then drains the old ones. It gives the versions before and after. The error is
// an [*Error] (codes.FailedPrecondition when the new version cannot start: the running
// one keeps serving).
func (c *Client) Reload(ctx context.Context, module string) (*polyglotv1.ReloadModuleResponse, error) {
	resp, err := c.rt.ReloadModule(ctx, &polyglotv1.ReloadModuleRequest{Module: module})
	if err != nil {
		return nil, errorOf(err)
	}
	return resp, nil
}

// Events is a stream of runtime events from [Client.WatchEvents].
type Events struct {
	stream polyglotv1.Runtime_WatchEventsClient
	cancel context.CancelFunc
}

// WatchEvents streams the host's runtime events as they happen (workers started and
// exited, health changes, fallback use, reloads) of the modules named, or of every module
// when none is. Events end with ctx, or with [Events.Close]. The error is an [*Error].
func (c *Client) WatchEvents(ctx context.Context, modules ...string) (*Events, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rt.WatchEvents(ctx, &polyglotv1.WatchEventsRequest{Modules: modules})
	if err != nil {
		cancel()
		return nil, errorOf(err)
	}
	return &Events{stream: stream, cancel: cancel}, nil
}

// Recv waits for the next event. The error is io.EOF when the host ended the stream, an
// [*Error] otherwise (codes.Canceled once closed).
func (e *Events) Recv() (*polyglotv1.Event, error) {
	ev, err := e.stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, errorOf(err)
	}
	return ev, nil
}

// Close ends the stream.
func (e *Events) Close() { e.cancel() }
