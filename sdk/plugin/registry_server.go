package plugin

import (
	"context"
	stderrors "errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/metadata"

	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/registry"
)

// registryServer serves a registry.Registry over protocol v1: the plugin side of
// the registry kind.
type registryServer struct {
	pluginv1.UnimplementedRegistryServer
	r registry.Registry
}

// NewRegistryServer returns the gRPC service that exposes r to the host. Every
// error leaves through ToStatus; the registry's sentinels become envelopes with a
// fixed code (ErrNotFound 404, ErrInvalidService 400, ErrWatcherOverflow 429,
// ErrClosed 503) so the host adapter can turn them back into the sentinels.
func NewRegistryServer(r registry.Registry) pluginv1.RegistryServer {
	return &registryServer{r: r}
}

// Register registers the service for ttl_ms milliseconds (0: no expiry).
func (s *registryServer) Register(ctx context.Context, req *pluginv1.RegisterRequest) (*pluginv1.Empty, error) {
	svc := serviceFromProto(req.GetService())
	if svc == nil {
		return nil, s.status(fmt.Errorf("%w: the register request carries no service", registry.ErrInvalidService))
	}
	if err := s.r.Register(ctx, svc, ttlFromMillis(req.GetTtlMs())); err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.Empty{}, nil
}

// Deregister removes the nodes listed in the request's service.
func (s *registryServer) Deregister(ctx context.Context, req *pluginv1.DeregisterRequest) (*pluginv1.Empty, error) {
	svc := serviceFromProto(req.GetService())
	if svc == nil {
		return nil, s.status(fmt.Errorf("%w: the deregister request carries no service", registry.ErrInvalidService))
	}
	if err := s.r.Deregister(ctx, svc); err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.Empty{}, nil
}

// GetService returns every version of the named service.
func (s *registryServer) GetService(ctx context.Context, req *pluginv1.GetServiceRequest) (*pluginv1.GetServiceResponse, error) {
	svcs, err := s.r.GetService(ctx, req.GetName())
	if err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.GetServiceResponse{Services: servicesToProto(svcs)}, nil
}

// ListServices returns every registered service.
func (s *registryServer) ListServices(ctx context.Context, _ *pluginv1.ListServicesRequest) (*pluginv1.ListServicesResponse, error) {
	svcs, err := s.r.ListServices(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.ListServicesResponse{Services: servicesToProto(svcs)}, nil
}

// Watch streams the registry's events, in order, until the host cancels. It
// sends the response headers as soon as the watcher is open, so the host's Watch
// returns only once every later change is sure to be streamed.
func (s *registryServer) Watch(_ *pluginv1.WatchRequest, stream pluginv1.Registry_WatchServer) error {
	ctx := stream.Context()
	w, err := s.r.Watch(ctx)
	if err != nil {
		return s.status(err)
	}
	stop := context.AfterFunc(ctx, w.Stop) // unblocks Next even if w ignores ctx
	defer func() {
		stop()
		w.Stop()
	}()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return s.status(context.Cause(ctx))
			}
			return s.status(err)
		}
		if p := eventToProto(ev); p != nil {
			if err := stream.Send(p); err != nil {
				return err
			}
		}
	}
}

// status turns a registry error into the gRPC status the host receives.
func (s *registryServer) status(err error) error {
	return ToStatus(envelopeFor(s.r.Name(), err, registryErrorCode))
}

// registryErrorCode is the envelope code a registry sentinel crosses as (0: none).
func registryErrorCode(err error) int32 {
	switch {
	case stderrors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound
	case stderrors.Is(err, registry.ErrInvalidService):
		return http.StatusBadRequest
	case stderrors.Is(err, registry.ErrWatcherOverflow):
		return http.StatusTooManyRequests
	case stderrors.Is(err, registry.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return 0
}
