package client

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"polyglot.invalid/go/gen/polyglotv1"
	"polyglot.invalid/go/protocol"
)

// The kinds of failure the host names in an error's ErrorDetail ([Error.Kind]).
const (
	KindModuleNotFound  = "module_not_found"
	KindMethodNotFound  = "method_not_found"
	KindTimeout         = "timeout"
	KindWorkerExited    = "worker_exited"
	KindRemote          = "remote" // the worker answered an error of its own: see RemoteCode
	KindFrameTooLarge   = "frame_too_large"
	KindOverloaded      = "overloaded"
	KindUnavailable     = "unavailable"
	KindFallbackFailed  = "fallback_failed"
	KindShuttingDown    = "shutting_down"
	KindInvalidArgument = "invalid_argument"
)

// codeUnknown is codes.Unknown, for errors the client makes up itself.
const codeUnknown = codes.Unknown

// Error is the error of an RPC: the gRPC status, and the host's ErrorDetail when it
// attached one (it does to every error of a call; not to a refused API key, nor to a
// failure of the connection itself).
type Error struct {
	// Code is the gRPC status code: NotFound for an unknown module or method,
	// DeadlineExceeded for a timeout, Unavailable when no instance could take the call,
	// Unauthenticated for a missing or wrong API key, and for a worker's own error
	// InvalidArgument (INVALID_PARAMS), Unimplemented, Cancelled, ResourceExhausted or
	// Unknown (any other code).
	Code codes.Code
	// Message is the status message, for people.
	Message string
	// Detail is the host's ErrorDetail; nil when there was none.
	Detail *polyglotv1.ErrorDetail
}

// Error gives "CODE (kind): message", as the host's own command line prints it.
func (e *Error) Error() string {
	if k := e.Kind(); k != "" {
		return fmt.Sprintf("%s (%s): %s", CodeName(e.Code), k, e.Message)
	}
	return fmt.Sprintf("%s: %s", CodeName(e.Code), e.Message)
}

// GRPCStatus makes status.Code and status.FromError see the error's code and message.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Kind is the host's kind of failure (one of the Kind constants); "" without a detail.
func (e *Error) Kind() string { return e.Detail.GetKind() }

// RemoteCode is, for a worker's own error ([KindRemote], or a fallback that failed so),
// its error code: INVALID_PARAMS, METHOD_NOT_FOUND, or the method's own UPPER_SNAKE code.
func (e *Error) RemoteCode() string { return e.Detail.GetCode() }

// RemoteMessage is, like RemoteCode, the worker's own error message.
func (e *Error) RemoteMessage() string { return e.Detail.GetMessage() }

// Data decodes the data of a worker's error (nil when it had none). The error says that
// the host's JSON does not decode.
func (e *Error) Data() (any, error) {
	raw := e.Detail.GetDataJson()
	if raw == "" {
		return nil, nil
	}
	v, err := protocol.JSON.Decode([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("client: the error's data: %w", err)
	}
	return v, nil
}

// Causes are why each implementation tried could not take the call, as
// "implementation: reason".
func (e *Error) Causes() []string {
	var out []string
	for _, c := range e.Detail.GetCauses() {
		out = append(out, c.GetImplementation()+": "+c.GetReason())
	}
	return out
}

// CodeName is a gRPC code's canonical name, as other languages print it: NOT_FOUND,
// CANCELLED, UNAVAILABLE, ...
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

// codeNames are the canonical names of the codes, by number.
var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// errorOf reads an RPC's error: its status, and the host's ErrorDetail from the status's
// details (an Any in the google.rpc.Status of grpc-status-details-bin, where the host puts
// it). An error that is not a status (ctx ending) gets the context's code.
func errorOf(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if ed, ok := d.(*polyglotv1.ErrorDetail); ok {
			e.Detail = ed
			break
		}
	}
	return e
}

// IsKind reports whether err is an [*Error] of the host's kind (one of the Kind
// constants).
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind() == kind
}
