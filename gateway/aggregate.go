package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// aggregateHandler serves an Aggregate: every part is called in parallel
// under the aggregate's deadline, and the JSON answers are merged under the
// parts' names in the order the parts are declared.
type aggregateHandler struct {
	st      *state
	agg     *Aggregate
	pat     *pattern
	timeout time.Duration
	params  [][]string // per part: the wildcards that go into its request object
	access  *access    // nil: anyone may call
}

func newAggregateHandler(st *state, a *Aggregate, acc *access) *aggregateHandler {
	pat, _ := parsePattern(a.Pattern) // validated
	h := &aggregateHandler{st: st, agg: a, pat: pat, timeout: a.Timeout, access: acc}
	if h.timeout <= 0 {
		h.timeout = st.cfg.Timeout
	}
	for _, p := range a.Parts {
		h.params = append(h.params, bodyParams(pat, p.Service, p.Endpoint))
	}
	return h
}

// partResult is one part's outcome: its JSON answer or its error, with the
// Retry-After to answer that error with.
type partResult struct {
	body       []byte
	err        *errors.Error
	retryAfter string
}

func (h *aggregateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := h.st
	caller, ok := h.access.check(w, r)
	if !ok {
		return
	}
	body, e := st.readBody(r)
	if e != nil {
		writeError(w, r, e)
		return
	}
	// Each part gets the body with its own parameters merged in.
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	id := w.Header().Get(metadata.RequestID)
	results := make([]partResult, len(h.agg.Parts))
	var wg sync.WaitGroup
	for i, part := range h.agg.Parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.callPart(ctx, r, id, caller, body, i, part)
		}()
	}
	wg.Wait()

	var failed []string
	var first partResult // the first failed part's
	var out bytes.Buffer
	out.WriteByte('{')
	for i, part := range h.agg.Parts {
		res := results[i]
		if res.err != nil {
			st.metrics.partFails.WithLabelValues(h.pat.label(), part.Name).Inc()
			failed = append(failed, part.Name)
			if first.err == nil {
				first = res
			}
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		name, _ := json.Marshal(part.Name)
		out.Write(name)
		out.WriteByte(':')
		out.Write(bytes.TrimSpace(res.body))
	}
	out.WriteByte('}')
	if len(failed) > 0 {
		w.Header().Set(metadata.FailedParts, strings.Join(failed, ","))
		if h.agg.Partial != PartialAllow || len(failed) == len(h.agg.Parts) {
			e := *first.err
			e.Detail = "aggregate part " + failed[0] + " failed: " + e.Detail
			if first.retryAfter != "" {
				w.Header().Set(metadata.RetryAfter, first.retryAfter)
			}
			writeError(w, r, &e)
			return
		}
	}
	w.Header().Set(metadata.ContentType, "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(out.Bytes())
}

// callPart makes one part's call and checks its answer is JSON.
func (h *aggregateHandler) callPart(ctx context.Context, r *http.Request, requestID string, caller *auth.Principal, body []byte, i int, part *Part) partResult {
	st := h.st
	service, endpoint := expand(part.Service, r), expand(part.Endpoint, r)
	if e := st.check(service, endpoint); e != nil {
		return partResult{err: e}
	}
	reqBody, ct, e := st.requestObject(r, body, service, endpoint, h.params[i])
	if e != nil {
		return partResult{err: e}
	}
	if part.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, part.Timeout)
		defer cancel()
	}
	header := st.outHeader(r, requestID, service, endpoint, ct)
	header[metadata.Accept] = "application/json" // the merge is JSON
	if e := h.access.forward(header, caller, service); e != nil {
		return partResult{err: e}
	}
	res := st.call(ctx, &backendCall{
		service: service, endpoint: endpoint, header: header, body: reqBody,
		retry:      retryOf(part.Retry),
		idempotent: idempotentMethod(r.Method),
		dynamic:    isTemplate(part.Endpoint),
	})
	if res.err != nil {
		return partResult{err: res.err, retryAfter: res.retryAfter}
	}
	if !json.Valid(res.msg.Body) {
		return partResult{err: errors.BadGateway("gateway", "%s %s answered with a body that is not JSON", service, endpoint)}
	}
	return partResult{body: res.msg.Body}
}
