package plugin

import (
	stderrors "errors"
	"io"

	"github.com/microhost/micro/sdk/errors"
)

// A contract's sentinel errors (registry.ErrNotFound, broker.ErrInvalidTopic, ...)
// cannot cross the boundary as Go values, so each kind maps them to an envelope
// code on the plugin side and back to the sentinel on the host side.

// envelopeFor returns err as the envelope the plugin sends: an envelope already in
// err's chain as is, a sentinel that code recognises as an envelope with that code
// (id naming the implementation), anything else as errors.FromError does.
func envelopeFor(id string, err error, code func(error) int32) *errors.Error {
	if err == nil {
		return nil
	}
	var env *errors.Error
	if stderrors.As(err, &env) {
		return env
	}
	if c := code(err); c != 0 {
		return errors.New(id, c, "%s", err.Error())
	}
	return errors.FromError(err)
}

// sentinelError is an envelope that also matches a contract sentinel, so that on
// the host both errors.Is(err, registry.ErrNotFound) and errors.As(err, &env) hold.
type sentinelError struct {
	env      *errors.Error
	sentinel error
}

// Error is the envelope's text, which already says what went wrong.
func (e *sentinelError) Error() string { return e.env.Error() }

// Unwrap exposes both the envelope and the sentinel to errors.Is and errors.As.
func (e *sentinelError) Unwrap() []error { return []error{e.env, e.sentinel} }

// hostError is what a host adapter returns for err from a gRPC call: the envelope
// FromStatus finds (err itself when it already is one) with the sentinel that
// sentinel names for its code.
func hostError(plugin string, err error, sentinel func(code int32) error) error {
	var env *errors.Error
	if !stderrors.As(err, &env) {
		err = FromStatus(plugin, err)
	}
	return withSentinel(err, sentinel)
}

// withSentinel wraps the envelope in err (as FromStatus returned it) with the
// sentinel that sentinel names for its code; other errors pass unchanged.
func withSentinel(err error, sentinel func(code int32) error) error {
	var env *errors.Error
	if err == nil || !stderrors.As(err, &env) {
		return err
	}
	if s := sentinel(env.Code); s != nil && !stderrors.Is(err, s) {
		return &sentinelError{env: env, sentinel: s}
	}
	return err
}

// pluginStreamBroken describes a stream the host did not cancel that ended anyway
// (err from Recv): the plugin crashed, restarted or was stopped, or its
// connection was closed under it. A status that is not an envelope, including
// the Canceled of a connection closed by the supervisor, becomes a 503 naming the
// plugin, so callers see "unavailable" rather than a cancellation they did not ask
// for.
func pluginStreamBroken(plugin, stream string, err error) error {
	if err == io.EOF {
		return errors.Unavailable(plugin, "plugin %s ended the %s stream", plugin, stream)
	}
	var env *errors.Error
	if stderrors.As(FromStatus(plugin, err), &env) && env.Code != errors.StatusClientClosed {
		return err // the plugin's own envelope, or FromStatus's mapping of the status
	}
	return errors.Unavailable(plugin, "plugin %s: the %s stream broke: %v", plugin, stream, err)
}
