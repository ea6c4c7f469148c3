package apiserver

import (
	"bytes"
	"net/http"
	"slices"
	"time"
)

// CACertsPath serves the cluster CA bundle to anyone, as k3s's /cacerts: a
// host that joins does not trust the CA yet, so it fetches it here without
// verifying the connection and checks its SHA-256 against the hash its join
// token carries before it sends the token or anything else.
const CACertsPath = "/cacerts"

// WithCACerts returns next with GET and HEAD CACertsPath answered with
// caPEM, in front of authentication: the CA certificate is public.
func WithCACerts(caPEM []byte, next http.Handler) http.Handler {
	ca := slices.Clone(caPEM)
	modified := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != CACertsPath || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", modified, bytes.NewReader(ca))
	})
}
