package apiserver

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// serveUpdate answers PUT on one object.
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	return s.serveReplace(w, r, t, "")
}

// serveReplace is PUT on the object or on its status.
func (s *Server) serveReplace(w http.ResponseWriter, r *http.Request, t requestTarget, subresource string) error {
	var opts metav1.UpdateOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_UpdateOptions(&q, &opts, nil); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	dryRun, err := parseDryRun(opts.DryRun)
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r, t.res.GVK())
	if err != nil {
		return err
	}
	if err := checkBodyIdentity(t, obj); err != nil {
		return err
	}
	out, created, err := s.updateObject(r.Context(), updateRequest{
		res: t.res, namespace: t.namespace, name: t.name, subresource: subresource, dryRun: dryRun,
		allowCreate: subresource == "" && t.res.AllowCreateOnUpdate,
		mutate: func(current runtime.Object) (runtime.Object, error) {
			return s.trackUpdate(t.res, subresource, current, obj.DeepCopyObject(), managerName(r, opts.FieldManager))
		},
	})
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.respond(w, r, t.res, code, out)
}

// checkBodyIdentity makes sure a body names the object of the URL; an
// empty name or namespace is taken from the URL.
func checkBodyIdentity(t requestTarget, obj runtime.Object) error {
	m := accessor(obj)
	if m.GetName() == "" {
		m.SetName(t.name)
	}
	if m.GetName() != t.name {
		return apierrors.NewBadRequest("the name of the object (" + m.GetName() + ") does not match the name on the URL (" + t.name + ")")
	}
	if t.res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(t.namespace)
		}
		if m.GetNamespace() != t.namespace {
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	return nil
}
