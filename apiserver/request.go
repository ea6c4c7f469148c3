package apiserver

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// requestTarget is what a resource URL names.
type requestTarget struct {
	res         *registry.Resource
	namespace   string
	name        string
	subresource string
}

// resolveTarget finds the served resource a resource request's path
// names; ok is false when no route serves it. Because "namespaces" is
// both a resource and the scope prefix, /api/v1/namespaces/x/status is
// the status of namespace x, while /api/v1/namespaces/x/pods lists pods
// in x (parsePath decides which, for authorization as well).
func (s *Server) resolveTarget(p requestPath) (requestTarget, bool) {
	if !p.resourceRequest || p.watchPrefix {
		return requestTarget{}, false
	}
	res, ok := s.resources.lookup(schema.GroupVersionResource{Group: p.group, Version: p.version, Resource: p.resource})
	if !ok || (p.subresource != "" && !res.HasSubresource(p.subresource)) {
		return requestTarget{}, false
	}
	t := requestTarget{res: res, name: p.name, subresource: p.subresource}
	switch {
	case res.Namespaced && !p.scoped && p.name != "":
		// Only list and watch across namespaces are served here.
		return requestTarget{}, false
	case res.Namespaced:
		t.namespace = p.namespace
	case p.scoped:
		// A cluster-scoped resource under a namespace. (A namespace's own
		// path names it as both its namespace and its name, unscoped.)
		return requestTarget{}, false
	}
	return t, true
}

// serveResourceRequest returns the handler for /api/{version}/... (group ""
// when groupParam is empty) and /apis/{group}/{version}/...; it serves
// what withCanonicalPath parsed, which is what was authorized.
func (s *Server) serveResourceRequest(groupParam string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gv := schema.GroupVersion{Version: chi.URLParam(r, "version")}
		if groupParam != "" {
			gv.Group = chi.URLParam(r, "group")
		}
		if !s.resources.servesGroupVersion(gv) {
			s.writeError(w, r, errNotFoundPath(r))
			return
		}
		p, ok := pathFrom(r.Context())
		if !ok {
			s.writeError(w, r, errNotFoundPath(r))
			return
		}
		if !p.resourceRequest {
			if r.Method != http.MethodGet {
				s.writeError(w, r, errMethodNotSupported(r))
				return
			}
			s.serveResourceList(w, r, gv)
			return
		}
		target, ok := s.resolveTarget(p)
		if !ok {
			s.writeError(w, r, errNotFoundPath(r))
			return
		}
		if s.routed != nil {
			s.routed(r, target)
		}
		s.dispatch(w, r, target)
	}
}

// dispatch picks the verb handler for a resolved target.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, t requestTarget) {
	warnIfDeprecated(w, t.res)
	r = r.WithContext(withWarningSink(r.Context(), w))
	var err error
	switch {
	case t.res.CreateOnly != nil && (r.Method != http.MethodPost || t.name != "" || t.subresource != ""):
		err = errMethodNotSupported(r)
	case t.subresource != "":
		err = s.serveSubresource(w, r, t)
	case t.name == "":
		switch r.Method {
		case http.MethodGet:
			if isWatch(r) {
				err = s.serveWatch(w, r, t)
			} else {
				err = s.serveList(w, r, t)
			}
		case http.MethodPost:
			err = s.serveCreate(w, r, t)
		case http.MethodDelete:
			if !slices.Contains(t.res.Verbs(), "deletecollection") {
				err = errMethodNotSupported(r)
				break
			}
			err = s.serveDeleteCollection(w, r, t)
		default:
			err = errMethodNotSupported(r)
		}
	default:
		switch r.Method {
		case http.MethodGet:
			err = s.serveGet(w, r, t)
		case http.MethodPut:
			err = s.serveUpdate(w, r, t)
		case http.MethodPatch:
			err = s.servePatch(w, r, t)
		case http.MethodDelete:
			err = s.serveDelete(w, r, t)
		default:
			err = errMethodNotSupported(r)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

func isWatch(r *http.Request) bool {
	v := r.URL.Query().Get("watch")
	return v == "true" || v == "1"
}
