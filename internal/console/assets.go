// assets.go serves the UI: index.html rendered with the CSRF token, and the embedded
// scripts, styles and the vendored chart library under /assets/. Nothing is fetched at
// build or run time; no Node.js is involved.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assetFS embed.FS

var indexTemplate = template.Must(template.ParseFS(assetFS, "assets/index.html"))

func assetHandler() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Files only: no directory listings, and the page's template is served at / alone.
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "/assets/index.html" {
			http.NotFound(w, r)
			return
		}
		// Embedded files carry no modification time, so revalidation cannot work; a new
		// binary must never be served an old script from the browser's cache.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, struct{ Token, Version string }{c.token, c.opts.Version}); err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, code: "INTERNAL", msg: err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // it holds the token
	_, _ = w.Write(b.Bytes())
}

// serveFavicon answers the browser's automatic /favicon.ico with the SVG icon, so no
// page load shows a failed request.
func serveFavicon(w http.ResponseWriter, r *http.Request) {
	b, err := assetFS.ReadFile("assets/favicon.svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write(b)
}
