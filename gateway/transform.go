package gateway

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/microhost/micro/sdk/errors"
)

// transformer applies a Transform to a decoded response object.
type transformer struct {
	remove [][]string
	rename [][2][]string // from, to
	add    []addField
}

type addField struct {
	path  []string
	value any
}

// newTransformer compiles t (validated); nil gives nil.
func newTransformer(t *Transform) *transformer {
	if t == nil {
		return nil
	}
	tr := &transformer{}
	for _, k := range t.Remove {
		tr.remove = append(tr.remove, strings.Split(k, "."))
	}
	for _, from := range slices.Sorted(maps.Keys(t.Rename)) {
		tr.rename = append(tr.rename, [2][]string{strings.Split(from, "."), strings.Split(t.Rename[from], ".")})
	}
	for _, k := range slices.Sorted(maps.Keys(t.Add)) {
		var v any
		_ = json.Unmarshal(t.Add[k], &v) // validated JSON
		tr.add = append(tr.add, addField{strings.Split(k, "."), v})
	}
	return tr
}

// apply rewrites obj in place: remove, then rename, then add.
func (t *transformer) apply(obj map[string]any) {
	for _, p := range t.remove {
		take(obj, p)
	}
	for _, rn := range t.rename {
		if v, ok := take(obj, rn[0]); ok {
			put(obj, rn[1], v)
		}
	}
	for _, a := range t.add {
		// The compiled value is shared by every request; obj owns a copy, so
		// a later add into the same object writes into that copy only.
		put(obj, a.path, deepCopy(a.value))
	}
}

// deepCopy copies the objects and arrays of a value decoded from JSON.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// take removes and returns the value at path.
func take(obj map[string]any, path []string) (any, bool) {
	for _, k := range path[:len(path)-1] {
		next, ok := obj[k].(map[string]any)
		if !ok {
			return nil, false
		}
		obj = next
	}
	last := path[len(path)-1]
	v, ok := obj[last]
	delete(obj, last)
	return v, ok
}

// put sets the value at path, creating objects on the way.
func put(obj map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := obj[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[k] = next
		}
		obj = next
	}
	obj[path[len(path)-1]] = v
}

// transformBody decodes a response in its codec, transforms it and encodes it
// again in the same codec.
func (st *state) transformBody(t *transformer, contentType string, body []byte) ([]byte, *errors.Error) {
	c, err := st.codecs.ForContentType(contentType, body)
	if err != nil {
		return nil, errors.BadGateway("gateway", "cannot transform a %q response: %v", contentType, err)
	}
	obj := map[string]any{}
	if err := decodeObject(c, body, &obj); err != nil {
		return nil, errors.BadGateway("gateway", "cannot transform the response: it is not a %s object: %v", c.Name(), err)
	}
	t.apply(obj)
	out, err := encodeObject(c, obj)
	if err != nil {
		return nil, errors.BadGateway("gateway", "encoding the transformed response: %v", err)
	}
	return out, nil
}
