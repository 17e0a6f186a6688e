package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
)

// ProblemContentType is the media type of every error the gateway answers
// (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document carrying the error envelope's
// fields: Title is the envelope's status text, Status its code, and ID, Code,
// Detail and Fields are the envelope's own. RequestID ties it to the logs.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Instance  string              `json:"instance,omitempty"`
	ID        string              `json:"id"`
	Code      int32               `json:"code"`
	Fields    []errors.FieldError `json:"fields,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

// writeProblem answers status with a problem document.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, id, detail string) {
	writeError(w, r, errors.New(id, int32(status), "%s", detail))
}

// writeError answers with e's status and e as a problem document.
func writeError(w http.ResponseWriter, r *http.Request, e *errors.Error) {
	status, code, title := int(e.Code), e.Code, e.Status
	if !isErrorStatus(code) {
		// Not an error status: a bug in the gateway, since backend answers
		// were mapped already. Answer 500, and say 500 in the body too.
		status, code, title = http.StatusInternalServerError, http.StatusInternalServerError, ""
	}
	p := Problem{
		Type:      "about:blank",
		Title:     title,
		Status:    status,
		Detail:    e.Detail,
		Instance:  r.URL.Path,
		ID:        e.ID,
		Code:      code,
		Fields:    e.Fields,
		RequestID: w.Header().Get(metadata.RequestID),
	}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	body, _ := json.Marshal(p) // plain strings and numbers: cannot fail
	h := w.Header()
	h.Set(metadata.ContentType, ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("X-Content-Type-Options")
	w.WriteHeader(status)
	w.Write(body)
}
