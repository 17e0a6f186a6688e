package client

import (
	"context"
	stderrors "errors"
	"net/http"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/telemetry"
)

// initTelemetry registers the request histograms when metrics are on.
func (c *Client) initTelemetry() {
	if c.opts.tel == nil {
		return
	}
	if m, err := c.opts.tel.NewRPCMetrics(); err == nil {
		c.metrics = m
	} else {
		c.opts.tel.Logger().Warn("client metrics are off", "error", err.Error())
	}
}

// try makes one attempt at addr inside its CLIENT span, whose trace context the
// callee receives, and records its duration.
func (c *Client) try(ctx context.Context, req *Request, attempt int, addr string, header map[string]string, body []byte, rsp any, co *callOptions) error {
	tel := c.opts.tel
	if tel == nil {
		return c.callNode(ctx, addr, header, body, rsp, co)
	}
	start := time.Now()
	ctx, span := tel.StartClient(ctx, header, http.MethodPost, req.Endpoint, addr, attempt, req.Service)
	err := c.callNode(ctx, addr, header, body, rsp, co)
	status := tryStatus(ctx, err)
	span.End(status, err)
	if c.metrics != nil {
		c.metrics.Client.WithLabelValues(req.Service, req.Endpoint, telemetry.StatusText(status)).Observe(time.Since(start).Seconds())
	}
	return err
}

// tryStatus is the HTTP status a try ended with: the envelope's code, 504 for
// a deadline, 503 for a failure to reach the node.
func tryStatus(ctx context.Context, err error) int {
	if err == nil {
		return http.StatusOK
	}
	var e *errors.Error
	if stderrors.As(err, &e) && e.Code != 0 {
		return int(e.Code)
	}
	if stderrors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return http.StatusGatewayTimeout
	}
	return http.StatusServiceUnavailable
}
