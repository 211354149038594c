// The embedded page and its headers.

package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/relayd/relayd/pkg/httpx"
)

// Prefix is where the dashboard is served on the admin port.
const Prefix = "/ui/"

//go:embed assets
var assetFS embed.FS

// assets is the page's files at their served names.
var assets = must(fs.Sub(assetFS, "assets"))

func must(f fs.FS, err error) fs.FS {
	if err != nil {
		panic(err)
	}
	return f
}

// csp allows the page its own script, style sheet and requests to the
// admin port, and nothing else: no inline script, no other origin, no
// framing, no form posts.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Assets serves the dashboard's files under Prefix ("/ui/" is the page).
// They hold no data and need no token: the page asks for it.
func Assets(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	if name != path.Clean(name) || strings.Contains(name, "/") {
		httpx.WriteError(w, r, errNoAsset)
		return
	}
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		httpx.WriteError(w, r, errNoAsset)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Small files that change with the binary: revalidated, never stale.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", contentType(name))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

var errNoAsset = &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such file of the dashboard"}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// SameOrigin refuses, with 403 cross_origin, the requests that change
// something (every method but GET, HEAD, OPTIONS) sent by a browser from
// another site: once an operator opens the dashboard, the admin port is
// one a browser talks to, and a page of any other site open in that
// browser could otherwise post to it (on loopback, without a token).
// Clients that are not browsers send neither Sec-Fetch-Site nor Origin
// and pass.
func SameOrigin(next http.Handler) http.Handler {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, errCrossOrigin)
	}))
	return c.Handler(next)
}

var errCrossOrigin = &httpx.Error{Status: http.StatusForbidden, Code: "cross_origin",
	Msg: "a browser request from another site may not change anything here"}
