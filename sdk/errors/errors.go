// Package errors defines the one error envelope Microhost uses everywhere: between
// services, at the gateway and across the plugin boundary.
//
// An *Error travels as {"id","code","status","detail"}; its Code is an HTTP status
// so every layer maps it the same way.
package errors

import (
	"context"
	stderrors "errors"
	"fmt"
	"net/http"
)

// Error is the envelope. ID names the service or component that produced it, Code is
// the HTTP status, Status is the status text, Detail says what went wrong and how to
// fix it. Fields carries per-field problems for Unprocessable.
type Error struct {
	ID     string       `json:"id" msgpack:"id"`
	Code   int32        `json:"code" msgpack:"code"`
	Status string       `json:"status" msgpack:"status"`
	Detail string       `json:"detail" msgpack:"detail"`
	Fields []FieldError `json:"fields,omitempty" msgpack:"fields,omitempty"`
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field  string `json:"field" msgpack:"field"`
	Detail string `json:"detail" msgpack:"detail"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("%d %s: %s", e.Code, e.Status, e.Detail)
	}
	return fmt.Sprintf("%s: %d %s: %s", e.ID, e.Code, e.Status, e.Detail)
}

// Is reports whether target is an *Error with the same Code, so
// errors.Is(err, errors.NotFound("", "")) matches any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// New returns an envelope with the given code; Status is filled from the code.
func New(id string, code int32, format string, args ...any) *Error {
	detail := format
	if len(args) > 0 {
		detail = fmt.Sprintf(format, args...)
	}
	return &Error{ID: id, Code: code, Status: statusText(code), Detail: detail}
}

// BadRequest is a 400: the request could not be read.
func BadRequest(id, format string, args ...any) *Error {
	return New(id, http.StatusBadRequest, format, args...)
}

// Unauthorized is a 401: no valid credentials came with the request.
func Unauthorized(id, format string, args ...any) *Error {
	return New(id, http.StatusUnauthorized, format, args...)
}

// Forbidden is a 403: the caller is known but lacks the right.
func Forbidden(id, format string, args ...any) *Error {
	return New(id, http.StatusForbidden, format, args...)
}

// NotFound is a 404.
func NotFound(id, format string, args ...any) *Error {
	return New(id, http.StatusNotFound, format, args...)
}

// MethodNotAllowed is a 405.
func MethodNotAllowed(id, format string, args ...any) *Error {
	return New(id, http.StatusMethodNotAllowed, format, args...)
}

// NotAcceptable is a 406: nothing in Accept can be produced.
func NotAcceptable(id, format string, args ...any) *Error {
	return New(id, http.StatusNotAcceptable, format, args...)
}

// Conflict is a 409.
func Conflict(id, format string, args ...any) *Error {
	return New(id, http.StatusConflict, format, args...)
}

// PayloadTooLarge is a 413: the body is over the configured limit.
func PayloadTooLarge(id, format string, args ...any) *Error {
	return New(id, http.StatusRequestEntityTooLarge, format, args...)
}

// UnsupportedMediaType is a 415: the request's Content-Type has no codec.
func UnsupportedMediaType(id, format string, args ...any) *Error {
	return New(id, http.StatusUnsupportedMediaType, format, args...)
}

// Unprocessable is a 422 with the fields that failed validation.
func Unprocessable(id string, fields []FieldError, format string, args ...any) *Error {
	e := New(id, http.StatusUnprocessableEntity, format, args...)
	e.Fields = fields
	return e
}

// TooManyRequests is a 429.
func TooManyRequests(id, format string, args ...any) *Error {
	return New(id, http.StatusTooManyRequests, format, args...)
}

// Internal is a 500.
func Internal(id, format string, args ...any) *Error {
	return New(id, http.StatusInternalServerError, format, args...)
}

// BadGateway is a 502: a backend answered with something unreadable.
func BadGateway(id, format string, args ...any) *Error {
	return New(id, http.StatusBadGateway, format, args...)
}

// Unavailable is a 503: no instance can take the call now.
func Unavailable(id, format string, args ...any) *Error {
	return New(id, http.StatusServiceUnavailable, format, args...)
}

// Timeout is a 504: the deadline passed before an answer came.
func Timeout(id, format string, args ...any) *Error {
	return New(id, http.StatusGatewayTimeout, format, args...)
}

// FromError returns err as an envelope. An *Error anywhere in the chain is returned
// as is; context deadline and cancellation become Timeout; anything else becomes
// Internal carrying err's text.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e
	}
	switch {
	case stderrors.Is(err, context.DeadlineExceeded):
		return Timeout("", "%s", err.Error())
	case stderrors.Is(err, context.Canceled):
		return New("", StatusClientClosed, "%s", err.Error())
	}
	return Internal("", "%s", err.Error())
}

// Code returns the status code err maps to: 0 for nil, the envelope's code, or 500.
func Code(err error) int32 {
	if err == nil {
		return 0
	}
	return FromError(err).Code
}

// Retryable reports whether a call that failed with err may succeed on another try:
// unavailable, timeouts, bad gateways and too-many-requests. Client errors are not.
func Retryable(err error) bool {
	switch Code(err) {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		http.StatusBadGateway, http.StatusTooManyRequests:
		return true
	}
	return false
}

// StatusClientClosed is the code for a call its caller gave up on (nginx's 499).
const StatusClientClosed = 499

func statusText(code int32) string {
	if code == StatusClientClosed {
		return "Client Closed Request"
	}
	return http.StatusText(int(code))
}
