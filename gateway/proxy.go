package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// routeHandler proxies a Route.
type routeHandler struct {
	st        *state
	route     *Route
	pat       *pattern
	timeout   time.Duration
	transform *transformer
	access    *access // nil: anyone may call
	// bodyParams are the wildcards that go into the request object: those the
	// service and endpoint templates do not use.
	bodyParams []string
	// dynamic says the endpoint name comes from the request path.
	dynamic bool
}

func newRouteHandler(st *state, r *Route, acc *access) *routeHandler {
	pat, _ := parsePattern(r.Pattern) // validated
	h := &routeHandler{st: st, route: r, pat: pat, timeout: r.Timeout, transform: newTransformer(r.Transform), access: acc}
	if h.timeout <= 0 {
		h.timeout = st.cfg.Timeout
	}
	h.bodyParams = bodyParams(pat, r.Service, r.Endpoint)
	h.dynamic = isTemplate(r.Endpoint)
	return h
}

// isTemplate reports whether a service or endpoint name takes path parameters.
func isTemplate(name string) bool { return strings.IndexByte(name, '{') >= 0 }

// bodyParams are pat's wildcards not used by the given templates.
func bodyParams(pat *pattern, templates ...string) []string {
	used := map[string]bool{}
	for _, t := range templates {
		refs, _ := templateParams(t)
		for _, ref := range refs {
			used[ref] = true
		}
	}
	var out []string
	for _, p := range pat.params {
		if !used[p] {
			out = append(out, p)
		}
	}
	return out
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := h.st
	caller, ok := h.access.check(w, r)
	if !ok {
		return
	}
	service, endpoint := expand(h.route.Service, r), expand(h.route.Endpoint, r)
	if e := st.check(service, endpoint); e != nil {
		writeError(w, r, e)
		return
	}
	body, ct, e := st.requestBody(r, service, endpoint, h.bodyParams)
	if e != nil {
		writeError(w, r, e)
		return
	}
	header := st.outHeader(r, w.Header().Get(metadata.RequestID), service, endpoint, ct)
	if e := h.access.forward(header, caller, service); e != nil {
		writeError(w, r, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	res := st.call(ctx, &backendCall{
		service:    service,
		endpoint:   endpoint,
		header:     header,
		body:       body,
		retry:      retryOf(h.route.Retry),
		idempotent: idempotentMethod(r.Method),
		dynamic:    h.dynamic,
	})
	st.writeResult(w, r, res, h.transform)
}

// writeResult answers with a call's result: the backend's body and codec, or
// its error as a problem document (with the Retry-After of an open breaker or
// of the backend).
func (st *state) writeResult(w http.ResponseWriter, r *http.Request, res callResult, t *transformer) {
	if res.err != nil {
		if res.retryAfter != "" {
			w.Header().Set(metadata.RetryAfter, res.retryAfter)
		}
		writeError(w, r, res.err)
		return
	}
	ct := res.msg.Header[metadata.ContentType]
	body := res.msg.Body
	if t != nil {
		var e *errors.Error
		if body, e = st.transformBody(t, ct, body); e != nil {
			writeError(w, r, e)
			return
		}
	}
	h := w.Header()
	if ct != "" {
		h.Set(metadata.ContentType, ct)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func retryOf(r *Retry) Retry {
	if r == nil {
		return Retry{}
	}
	return *r
}

// idempotentMethod reports whether HTTP says repeating a request with this
// method has the effect of making it once.
func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}
