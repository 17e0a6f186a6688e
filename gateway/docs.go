package gateway

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/microhost/micro/sdk/metadata"
)

// docsFS holds the docs page's assets: Swagger UI's bundle and stylesheet,
// fetched from npm by scripts/docs-assets at a pinned version, and init.js.
//
//go:embed docs/init.js docs/assets/swagger-ui-bundle.js docs/assets/swagger-ui.css
var docsFS embed.FS

// docsFiles maps the names served under /api/docs/ to the embedded files.
var docsFiles = map[string]struct{ path, contentType string }{
	"swagger-ui-bundle.js": {"docs/assets/swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
	"swagger-ui.css":       {"docs/assets/swagger-ui.css", "text/css; charset=utf-8"},
	"init.js":              {"docs/init.js", "text/javascript; charset=utf-8"},
}

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}}</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
`))

// serveDocsPage serves the human docs page, which renders openapi.json with
// Swagger UI from the gateway itself: no CDN.
func (st *state) serveDocsPage(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	_ = docsPage.Execute(&b, st.cfg.Docs.Title) // a string into a fixed template
	h := w.Header()
	h.Set(metadata.ContentType, "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(b.String()))
}

// serveDocsFile serves openapi.json, generated from the routes and the
// services' schemas as registered now, and the page's assets.
func (st *state) serveDocsFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "openapi.json" {
		body, err := json.MarshalIndent(st.openAPI(r.Context()), "", "  ")
		if err != nil {
			writeProblem(w, r, http.StatusInternalServerError, "gateway", "encoding the OpenAPI document: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	f, ok := docsFiles[name]
	if !ok {
		writeProblem(w, r, http.StatusNotFound, "gateway", "no docs file "+name)
		return
	}
	data, err := docsFS.ReadFile(f.path)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "gateway", err.Error())
		return
	}
	w.Header().Set(metadata.ContentType, f.contentType)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}
