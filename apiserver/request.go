package apiserver

import (
	"net/http"
	"slices"
	"strings"

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

// parseResourcePath resolves the path segments after /api/v1 or
// /apis/<group>/<version>. Because "namespaces" is both a resource and the
// scope prefix, /api/v1/namespaces/x/status is the status of namespace x,
// while /api/v1/namespaces/x/pods lists pods in x.
func (s *Server) parseResourcePath(gv schema.GroupVersion, rest string) (requestTarget, bool) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return requestTarget{}, false
	}
	segs := strings.Split(rest, "/")
	lookup := func(name string) (*registry.Resource, bool) {
		return s.resources.lookup(gv.WithResource(name))
	}
	if segs[0] == "namespaces" && len(segs) >= 3 {
		if nsRes, ok := lookup("namespaces"); ok && len(segs) == 3 && nsRes.HasSubresource(segs[2]) {
			return requestTarget{res: nsRes, name: segs[1], subresource: segs[2]}, true
		}
		res, ok := lookup(segs[2])
		if !ok || !res.Namespaced || len(segs) > 5 {
			return requestTarget{}, false
		}
		t := requestTarget{res: res, namespace: segs[1]}
		if len(segs) >= 4 {
			t.name = segs[3]
		}
		if len(segs) == 5 {
			t.subresource = segs[4]
			if !res.HasSubresource(t.subresource) {
				return requestTarget{}, false
			}
		}
		return t, true
	}
	res, ok := lookup(segs[0])
	if !ok || len(segs) > 3 {
		return requestTarget{}, false
	}
	t := requestTarget{res: res}
	if len(segs) >= 2 {
		if res.Namespaced {
			// Only list and watch across namespaces are served here.
			return requestTarget{}, false
		}
		t.name = segs[1]
	}
	if len(segs) == 3 {
		t.subresource = segs[2]
		if !res.HasSubresource(t.subresource) {
			return requestTarget{}, false
		}
	}
	return t, true
}

// serveResourceRequest returns the handler for /api/{version}/... (group ""
// when groupParam is empty) and /apis/{group}/{version}/...
func (s *Server) serveResourceRequest(groupParam string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gv := schema.GroupVersion{Version: chi.URLParam(r, "version")}
		if groupParam != "" {
			gv.Group = chi.URLParam(r, "group")
		}
		rest := chi.URLParam(r, "*")
		if !s.resources.servesGroupVersion(gv) {
			s.writeError(w, r, errNotFoundPath(r))
			return
		}
		if strings.Trim(rest, "/") == "" {
			if r.Method != http.MethodGet {
				s.writeError(w, r, errMethodNotSupported(r))
				return
			}
			s.serveResourceList(w, r, gv)
			return
		}
		target, ok := s.parseResourcePath(gv, rest)
		if !ok {
			s.writeError(w, r, errNotFoundPath(r))
			return
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
