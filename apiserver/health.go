package apiserver

import (
	"fmt"
	"net/http"
	"strings"
)

// healthCheck is one named check of /healthz, /livez and /readyz.
type healthCheck struct {
	name  string
	check func(r *http.Request) error
}

func (s *Server) healthChecks() []healthCheck {
	return []healthCheck{
		{name: "ping", check: func(*http.Request) error { return nil }},
		{name: "etcd", check: func(r *http.Request) error {
			_, err := s.store.Revision(r.Context())
			return err
		}},
	}
}

// serveHealth answers /healthz, /livez and /readyz (and /<path>/<check>)
// like upstream: "ok", or with ?verbose one line per check.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.URL.Path, "/")
	endpoint, only, _ := strings.Cut(path, "/")
	excluded := map[string]bool{}
	for _, e := range r.URL.Query()["exclude"] {
		excluded[e] = true
	}
	var lines []string
	failed := false
	found := false
	for _, c := range s.healthChecks() {
		if only != "" && c.name != only {
			continue
		}
		found = true
		if excluded[c.name] {
			lines = append(lines, fmt.Sprintf("[+]%s excluded: ok", c.name))
			continue
		}
		if err := c.check(r); err != nil {
			failed = true
			lines = append(lines, fmt.Sprintf("[-]%s failed: reason withheld", c.name))
		} else {
			lines = append(lines, fmt.Sprintf("[+]%s ok", c.name))
		}
	}
	if !found {
		s.writeError(w, r, errNotFoundPath(r))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "%s\n%s check failed\n", strings.Join(lines, "\n"), endpoint)
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "%s\n%s check passed\n", strings.Join(lines, "\n"), endpoint)
		return
	}
	fmt.Fprint(w, "ok")
}
