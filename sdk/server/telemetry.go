package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// unknownRoute labels requests for endpoints the server does not have, so a
// caller cannot grow the metrics with made-up names.
const unknownRoute = "unknown"

// initTelemetry registers the request histograms when metrics are on.
func (s *Server) initTelemetry() {
	if s.tel == nil {
		return
	}
	m, err := s.tel.NewRPCMetrics()
	if err != nil {
		s.logf("server metrics are off", "service", s.name, "error", err.Error())
		return
	}
	s.metrics = m
}

// route is the endpoint label of a request: its endpoint when registered.
func (s *Server) route(endpoint string) string {
	s.mu.RLock()
	_, ok := s.methods[endpoint]
	s.mu.RUnlock()
	if !ok {
		return unknownRoute
	}
	return endpoint
}

// observeRequest serves a unary call inside its SERVER span and records its
// duration and a request log.
func (s *Server) observeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	start := time.Now()
	route := s.route(req.Header[metadata.Endpoint])
	ctx, span := s.tel.StartServer(ctx, req.Header, http.MethodPost, route, s.name)
	resp := s.serveRequest(ctx, req)
	status := http.StatusOK
	if v := resp.Header[metadata.Status]; v != "" {
		status, _ = strconv.Atoi(v)
	}
	span.End(status, nil)
	s.record(ctx, route, status, start)
	return resp
}

// observeStream serves a stream inside its SERVER span; its status is that of
// the error the handler returned.
func (s *Server) observeStream(ctx context.Context, header map[string]string, ts transport.Stream) error {
	start := time.Now()
	route := s.route(header[metadata.Endpoint])
	ctx, span := s.tel.StartServer(ctx, header, http.MethodPost, route, s.name)
	err := s.serveStream(ctx, header, ts)
	status := http.StatusOK
	if err != nil {
		status = int(errors.FromError(err).Code)
	}
	span.End(status, err)
	s.record(ctx, route, status, start)
	return err
}

// record observes the request duration and writes the debug request log, with
// the trace and span ids of the request.
func (s *Server) record(ctx context.Context, route string, status int, start time.Time) {
	d := time.Since(start)
	if s.metrics != nil {
		s.metrics.Server.WithLabelValues(http.MethodPost, route, telemetry.StatusText(status)).Observe(d.Seconds())
	}
	if l := s.tel.Logger(); l.IsDebug() {
		telemetry.LoggerFrom(ctx, l).Debug("request", "route", route, "status", status, "duration", d.String())
	}
}
