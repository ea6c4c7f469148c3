package apiserver

import (
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
)

// routeProfiling serves Go's profiles under /debug/pprof/, as upstream's
// --profiling (on by default): authorized like any non-resource URL, so
// cluster admins may read them (`kubectl get --raw
// /debug/pprof/goroutine?debug=1`) and nobody else.
func routeProfiling(r chi.Router) {
	r.Get("/debug/pprof/cmdline", pprof.Cmdline)
	r.Get("/debug/pprof/profile", pprof.Profile)
	r.Get("/debug/pprof/symbol", pprof.Symbol)
	r.Get("/debug/pprof/trace", pprof.Trace)
	r.Get("/debug/pprof/*", pprof.Index)
	r.Get("/debug/pprof", pprof.Index)
}
