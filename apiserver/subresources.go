package apiserver

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

// serveSubresource dispatches requests on <object>/<subresource>.
func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	if t.name == "" {
		return errNotFoundPath(r)
	}
	switch t.subresource {
	case "status", "approval":
		switch r.Method {
		case http.MethodGet:
			return s.serveGet(w, r, t)
		case http.MethodPut:
			return s.serveReplace(w, r, t, t.subresource)
		case http.MethodPatch:
			return s.servePatchOn(w, r, t, t.subresource)
		}
	case "scale":
		switch r.Method {
		case http.MethodGet, http.MethodPut, http.MethodPatch:
			return s.serveScale(w, r, t)
		}
	case "binding":
		if r.Method == http.MethodPost {
			return s.serveBinding(w, r, t)
		}
	case "eviction":
		if r.Method == http.MethodPost {
			return s.serveEviction(w, r, t)
		}
	case "token":
		if r.Method == http.MethodPost {
			return s.serveTokenRequest(w, r, t)
		}
	case "finalize":
		if r.Method == http.MethodPut {
			return s.serveFinalize(w, r, t)
		}
	case "log", "exec", "attach", "portforward":
		return s.servePodStream(w, r, t)
	default:
		return apierrors.NewServiceUnavailable(fmt.Sprintf("%s/%s is not served yet", t.res.GVR.Resource, t.subresource))
	}
	return errMethodNotSupported(r)
}

// serveFinalize replaces a namespace's spec.finalizers (PUT
// namespaces/<name>/finalize), which the namespace controller calls once
// the namespace is empty.
func (s *Server) serveFinalize(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	obj, err := s.readObject(w, r, t.res.GVK())
	if err != nil {
		return err
	}
	wanted := obj.(*corev1.Namespace)
	out, _, err := s.updateObject(r.Context(), updateRequest{
		res: t.res, name: t.name, subresource: "finalize",
		mutate: func(current runtime.Object) (runtime.Object, error) {
			ns := current.(*corev1.Namespace)
			ns.Spec.Finalizers = wanted.Spec.Finalizers
			ns.ResourceVersion = wanted.ResourceVersion
			return ns, nil
		},
	})
	if err != nil {
		return err
	}
	return s.respond(w, r, t.res, http.StatusOK, out)
}
