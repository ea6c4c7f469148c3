package apiserver

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// serveGet answers GET on one object. Any resourceVersion is satisfied by
// the latest state (upstream's "not older than"), except that a version the
// store has not reached yet is refused.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	var opts metav1.GetOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_GetOptions(&q, &opts, nil); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if err := s.checkNotFutureRevision(r, opts.ResourceVersion); err != nil {
		return err
	}
	obj, err := s.getStored(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		return err
	}
	return s.respond(w, r, t.res, http.StatusOK, obj)
}

// checkNotFutureRevision refuses a resourceVersion newer than the store,
// with upstream's 504 "Too large resource version".
func (s *Server) checkNotFutureRevision(r *http.Request, rv string) error {
	n, err := parseResourceVersion(rv)
	if err != nil || n == 0 {
		return err
	}
	current, err := s.store.Revision(r.Context())
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if n > current {
		return errTooLargeResourceVersion(n, current)
	}
	return nil
}

// getStored reads the latest state of one object.
func (s *Server) getStored(ctx context.Context, res *registry.Resource, namespace, name string) (runtime.Object, error) {
	kv, err := s.store.Get(ctx, storageKey(res, namespace, name), 0)
	if err != nil {
		return nil, fromStorage(err, res, name)
	}
	obj, err := s.fromKV(res, kv)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return obj, nil
}
