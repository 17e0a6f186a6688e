package errors_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"testing"

	"github.com/microhost/micro/sdk/errors"
)

func TestConstructorsAndMapping(t *testing.T) {
	cases := []struct {
		err    *errors.Error
		code   int32
		status string
	}{
		{errors.BadRequest("svc", "x"), 400, "Bad Request"},
		{errors.Unauthorized("svc", "x"), 401, "Unauthorized"},
		{errors.Forbidden("svc", "x"), 403, "Forbidden"},
		{errors.NotFound("svc", "x"), 404, "Not Found"},
		{errors.Conflict("svc", "x"), 409, "Conflict"},
		{errors.PayloadTooLarge("svc", "x"), 413, "Request Entity Too Large"},
		{errors.UnsupportedMediaType("svc", "x"), 415, "Unsupported Media Type"},
		{errors.Unprocessable("svc", []errors.FieldError{{Field: "f", Detail: "d"}}, "x"), 422, "Unprocessable Entity"},
		{errors.TooManyRequests("svc", "x"), 429, "Too Many Requests"},
		{errors.Internal("svc", "x"), 500, "Internal Server Error"},
		{errors.Unavailable("svc", "x"), 503, "Service Unavailable"},
		{errors.Timeout("svc", "x"), 504, "Gateway Timeout"},
	}
	for _, tc := range cases {
		if tc.err.Code != tc.code || tc.err.Status != tc.status || tc.err.ID != "svc" || tc.err.Detail != "x" {
			t.Errorf("%+v, want code %d status %q", tc.err, tc.code, tc.status)
		}
	}
}

func TestFromError(t *testing.T) {
	wrapped := fmt.Errorf("calling: %w", errors.NotFound("users", "no user %d", 7))
	cases := []struct {
		in   error
		code int32
	}{
		{nil, 0},
		{wrapped, 404},
		{context.DeadlineExceeded, 504},
		{fmt.Errorf("x: %w", context.Canceled), errors.StatusClientClosed},
		{stderrors.New("plain"), 500},
	}
	for _, tc := range cases {
		if got := errors.Code(tc.in); got != tc.code {
			t.Errorf("Code(%v) = %d, want %d", tc.in, got, tc.code)
		}
	}
	if e := errors.FromError(wrapped); e.Detail != "no user 7" || e.ID != "users" {
		t.Errorf("FromError kept %+v", e)
	}
	if !stderrors.Is(wrapped, errors.NotFound("", "")) || stderrors.Is(wrapped, errors.Conflict("", "")) {
		t.Error("errors.Is should match by code")
	}
	for code, want := range map[int32]bool{503: true, 504: true, 502: true, 429: true, 500: false, 400: false, 404: false} {
		if got := errors.Retryable(errors.New("", code, "x")); got != want {
			t.Errorf("Retryable(%d) = %v", code, got)
		}
	}
}
