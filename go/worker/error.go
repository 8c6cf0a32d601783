package worker

import (
	"errors"
	"fmt"

	"polyglot.invalid/go/protocol"
)

// The protocol's error codes (docs/protocol.md, section 6), for [Error.Code]. Methods
// may also use their own UPPER_SNAKE codes.
const (
	CodeMethodNotFound = protocol.CodeMethodNotFound
	CodeInvalidParams  = protocol.CodeInvalidParams
	CodeInvalidRequest = protocol.CodeInvalidRequest
	CodeInternal       = protocol.CodeInternal
	CodeCancelled      = protocol.CodeCancelled
	CodeFrameTooLarge  = protocol.CodeFrameTooLarge
	CodeShuttingDown   = protocol.CodeShuttingDown
	CodeUnhealthy      = protocol.CodeUnhealthy
	CodeNotSupported   = protocol.CodeNotSupported
)

// Error is what a handler returns to answer its call with an error response: Code is one
// of the Code constants or the method's own UPPER_SNAKE code, Message is for people, Data
// (any value, nil for none) is for programs.
//
// A handler may return Error or *Error, or wrap either (fmt.Errorf with %w): the
// response carries the first one found with errors.As.
type Error struct {
	Code    string
	Message string
	Data    any
}

// Error gives "CODE: message".
func (e Error) Error() string { return e.Code + ": " + e.Message }

// Errorf is an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParams is an INVALID_PARAMS *Error with a formatted message: the params do not
// fit the method.
func InvalidParams(format string, args ...any) *Error {
	return Errorf(CodeInvalidParams, format, args...)
}

// asError finds an Error (or *Error) in err's chain.
func asError(err error) (Error, bool) {
	var p *Error
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	var v Error
	if errors.As(err, &v) {
		return v, true
	}
	return Error{}, false
}

// errorObject is what err becomes on the wire: its Error, or fallbackCode (INTERNAL)
// with its text. An error whose Error method panics (a nil *Error, say) cannot crash the
// worker: it becomes fallbackCode too.
func errorObject(err error, fallbackCode string) (obj *protocol.ErrorObject) {
	defer func() {
		if p := recover(); p != nil {
			obj = &protocol.ErrorObject{Code: fallbackCode, Message: fmt.Sprintf("the method's error (%T) cannot be read: %v", err, p)}
		}
	}()
	if p, ok := err.(*Error); ok && p == nil {
		return &protocol.ErrorObject{Code: fallbackCode, Message: "the method returned a nil *worker.Error"}
	}
	if e, ok := asError(err); ok {
		if e.Code == "" { // a code is required on the wire
			e.Code = fallbackCode
		}
		return &protocol.ErrorObject{Code: e.Code, Message: e.Message, Data: e.Data}
	}
	return &protocol.ErrorObject{Code: fallbackCode, Message: err.Error()}
}
