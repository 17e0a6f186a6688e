package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	stderrors "errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/schema"
	"github.com/microhost/micro/sdk/transport"
)

// requestBody reads r's body within the size limit and returns the request
// object for the backend and its content type: the body as sent when there are
// no query or path parameters to add (the fast path), otherwise the body
// decoded, completed with the query parameters it lacks and the path
// parameters (which win), and encoded again in the same codec.
func (st *state) requestBody(r *http.Request, service, endpoint string, params []string) ([]byte, string, *errors.Error) {
	body, e := st.readBody(r)
	if e != nil {
		return nil, "", e
	}
	return st.requestObject(r, body, service, endpoint, params)
}

// requestObject builds the backend's request from a body already read; it
// only reads r, so parts of an aggregate may call it concurrently.
func (st *state) requestObject(r *http.Request, body []byte, service, endpoint string, params []string) ([]byte, string, *errors.Error) {
	c := st.codecs.Default()
	if len(body) > 0 {
		var err error
		if c, err = st.codecs.ForContentType(r.Header.Get(metadata.ContentType), body); err != nil {
			return nil, "", unsupported(err)
		}
	}
	query := r.URL.RawQuery != ""
	if len(params) == 0 && !query {
		return body, c.ContentType(), nil
	}
	obj := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		err := decodeObject(c, body, &obj)
		switch {
		case stderrors.Is(err, errNull):
			return nil, "", errors.BadRequest("gateway", "expected a %s object, got %s", codecLabel(c), nullName(c))
		case err != nil:
			return nil, "", errors.BadRequest("gateway", "malformed %s body: %v; expected an object such as {\"name\":\"Alice\"}", c.Name(), err)
		}
	}
	types := st.paramTypes(r.Context(), service, endpoint)
	if query {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "", errors.BadRequest("gateway", "malformed query string: %v", err)
		}
		for k, vs := range q {
			if _, ok := obj[k]; !ok {
				obj[k] = types.convert(k, vs)
			}
		}
	}
	for _, p := range params {
		obj[p] = types.convert(p, []string{r.PathValue(p)})
	}
	out, err := encodeObject(c, obj)
	if err != nil {
		return nil, "", errors.BadRequest("gateway", "encoding the request for %s: %v", endpoint, err)
	}
	return out, c.ContentType(), nil
}

// readBody reads the whole body, refusing more than Config.MaxBody bytes.
func (st *state) readBody(r *http.Request) ([]byte, *errors.Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := st.cfg.MaxBody
	body, err := transport.ReadBody(r.Body, r.ContentLength, limit)
	switch {
	case stderrors.Is(err, transport.ErrBodyTooLarge) && r.ContentLength > limit:
		return nil, tooLarge(r.ContentLength, limit)
	case stderrors.Is(err, transport.ErrBodyTooLarge):
		return nil, tooLarge(-1, limit)
	case err != nil:
		return nil, errors.BadRequest("gateway", "reading the request body: %v", err)
	}
	return body, nil
}

func tooLarge(n, limit int64) *errors.Error {
	if n >= 0 {
		return errors.PayloadTooLarge("gateway", "the request body of %d bytes is over the gateway's %d byte limit", n, limit)
	}
	return errors.PayloadTooLarge("gateway", "the request body is over the gateway's %d byte limit", limit)
}

// unsupported maps a codec negotiation failure to 415 with the accepted types.
func unsupported(err error) *errors.Error {
	var e *errors.Error
	if stderrors.As(err, &e) {
		e = &errors.Error{ID: "gateway", Code: e.Code, Status: e.Status, Detail: e.Detail}
		return e
	}
	return errors.UnsupportedMediaType("gateway", "%v", err)
}

// errNull is decodeObject's error for a body that is JSON null or msgpack nil,
// which decodes without complaint into no object at all.
var errNull = stderrors.New("the body is null, not an object")

// decodeObject decodes a body that must be an object; JSON numbers keep their
// exact text. A null body is errNull: *obj is never left nil.
func decodeObject(c codec.Codec, body []byte, obj *map[string]any) error {
	if c.Name() != "json" {
		if err := c.Unmarshal(body, obj); err != nil {
			return err
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(obj); err != nil {
			return err
		}
		if dec.More() {
			return stderrors.New("more than one JSON value")
		}
	}
	if *obj == nil {
		*obj = map[string]any{}
		return errNull
	}
	return nil
}

// codecLabel is how an error message names c's format ("JSON", "msgpack").
func codecLabel(c codec.Codec) string {
	if c.Name() == "json" {
		return "JSON"
	}
	return c.Name()
}

// nullName is how c's format spells the null value.
func nullName(c codec.Codec) string {
	if c.Name() == "json" {
		return "null"
	}
	return "nil"
}

func encodeObject(c codec.Codec, obj map[string]any) ([]byte, error) {
	if c.Name() == "json" {
		return json.Marshal(obj)
	}
	return c.Marshal(obj)
}

// paramTypes are the JSON types of a request's top-level fields, from the
// endpoint's schema, for converting query and path strings.
type paramTypes struct {
	fields map[string]fieldType
}

type fieldType struct {
	typ   string // "integer", "number", "boolean", "string", "array", ""
	items string // the items' type, for arrays
}

// convert turns the strings of field k into the value its type wants; values
// that do not parse stay strings, for the backend to reject with its message.
func (p *paramTypes) convert(k string, vs []string) any {
	ft := p.field(k)
	if ft.typ == "array" {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = scalar(ft.items, v)
		}
		return out
	}
	if len(vs) > 1 {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = v
		}
		return out
	}
	return scalar(ft.typ, vs[0])
}

func (p *paramTypes) field(k string) fieldType {
	if p == nil {
		return fieldType{}
	}
	return p.fields[k]
}

func scalar(typ, v string) any {
	switch typ {
	case "integer":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	case "number":
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	case "boolean":
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}

// paramTypes returns the field types of the endpoint's request, from the Go
// types given with the Types option or the schema the service published;
// nil when neither is known.
func (st *state) paramTypes(ctx context.Context, service, endpoint string) *paramTypes {
	text := ""
	if t, ok := st.types[service+" "+endpoint]; ok && t.request != nil {
		text = schema.JSON(t.request)
	} else if ep := st.endpoint(ctx, service, endpoint); ep != nil {
		text = ep.Metadata[schema.RequestKey]
	}
	if text == "" {
		return nil
	}
	if v, ok := st.schemas.Load(text); ok {
		return v.(*paramTypes)
	}
	p := parseParamTypes(text)
	st.schemas.Store(text, p)
	return p
}

// endpoint returns the registered description of service's endpoint, or nil.
func (st *state) endpoint(ctx context.Context, service, endpoint string) *registry.Endpoint {
	svcs, err := st.cache.Lookup(ctx, service)
	if err != nil {
		return nil
	}
	return findEndpoint(svcs, endpoint)
}

// parseParamTypes reads the top-level property types of a request schema.
func parseParamTypes(text string) *paramTypes {
	var root struct {
		Ref        string                     `json:"$ref"`
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	p := &paramTypes{fields: map[string]fieldType{}}
	if json.Unmarshal([]byte(text), &root) != nil {
		return p
	}
	props := root.Properties
	if name, ok := strings.CutPrefix(root.Ref, schema.RefPrefix); ok {
		props = root.Defs[name].Properties
	}
	for k, raw := range props {
		var s struct {
			Type  string `json:"type"`
			Items struct {
				Type string `json:"type"`
			} `json:"items"`
		}
		if json.Unmarshal(raw, &s) == nil {
			p.fields[k] = fieldType{typ: s.Type, items: s.Items.Type}
		}
	}
	return p
}
