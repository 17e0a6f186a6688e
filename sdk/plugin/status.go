package plugin

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/microhost/micro/sdk/errors"
)

// ToStatus turns err into a gRPC status carrying the JSON error envelope as its
// message and the code matching the envelope's HTTP status. Plugin-side adapters
// return every error through it.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isEnvelope(err) {
		return err
	}
	e := errors.FromError(err)
	b, _ := json.Marshal(e)
	return status.Error(grpcCode(e.Code), string(b))
}

// FromStatus turns an error returned by a gRPC call into the error envelope the
// plugin sent, or, for failures of the connection itself, an Unavailable
// envelope naming plugin. io.EOF and context errors pass through unchanged.
func FromStatus(plugin string, err error) error {
	if err == nil || err == io.EOF || stderrors.Is(err, context.Canceled) || stderrors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return errors.Unavailable(plugin, "plugin %s: %v", plugin, err)
	}
	var e errors.Error
	if json.Unmarshal([]byte(st.Message()), &e) == nil && e.Code != 0 {
		return &e
	}
	switch st.Code() {
	case codes.Canceled:
		if strings.Contains(st.Message(), "connection is closing") {
			// The host closed the connection under the call: the plugin died or
			// is being restarted, not the caller's context.
			return errors.Unavailable(plugin, "plugin %s went away during the call; try again shortly", plugin)
		}
		return context.Canceled
	case codes.DeadlineExceeded:
		return errors.Timeout(plugin, "plugin %s: %s", plugin, st.Message())
	case codes.Unavailable:
		return errors.Unavailable(plugin, "plugin %s is unavailable: %s", plugin, st.Message())
	case codes.Unimplemented:
		return errors.New(plugin, http.StatusNotImplemented, "plugin %s does not implement this: %s", plugin, st.Message())
	}
	return errors.New(plugin, httpCode(st.Code()), "plugin %s: %s", plugin, st.Message())
}

func isEnvelope(err error) bool {
	var e *errors.Error
	return stderrors.As(err, &e)
}

func grpcCode(httpStatus int32) codes.Code {
	switch httpStatus {
	case 400, 413, 415, 422:
		return codes.InvalidArgument
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.NotFound
	case 409:
		return codes.AlreadyExists
	case 429:
		return codes.ResourceExhausted
	case 499:
		return codes.Canceled
	case 501:
		return codes.Unimplemented
	case 503:
		return codes.Unavailable
	case 504:
		return codes.DeadlineExceeded
	}
	return codes.Unknown
}

func httpCode(c codes.Code) int32 {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return 400
	case codes.Unauthenticated:
		return 401
	case codes.PermissionDenied:
		return 403
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.ResourceExhausted:
		return 429
	case codes.Unavailable:
		return 503
	case codes.DeadlineExceeded:
		return 504
	}
	return 500
}
