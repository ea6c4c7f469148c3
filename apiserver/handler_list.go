package apiserver

import (
	"context"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// errContinueExpired is upstream's message for a continue token whose
// snapshot has been compacted away.
const errContinueExpired = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."

// serveList answers GET on a collection.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	q, err := s.parseListQuery(r, t.res, false)
	if err != nil {
		return err
	}
	list, err := s.listObjects(r.Context(), t.res, t.namespace, q)
	if err != nil {
		return err
	}
	return s.respond(w, r, t.res, http.StatusOK, list)
}

// listRevision picks the revision a list reads at, following upstream's
// resourceVersion / resourceVersionMatch rules. 0 means the latest.
func (s *Server) listRevision(ctx context.Context, opts metav1.ListOptions) (int64, error) {
	n, err := parseResourceVersion(opts.ResourceVersion)
	if err != nil || n == 0 {
		return 0, err
	}
	exact := opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact ||
		(opts.ResourceVersionMatch == "" && opts.Limit > 0)
	if exact {
		return n, nil
	}
	current, err := s.store.Revision(ctx)
	if err != nil {
		return 0, apierrors.NewInternalError(err)
	}
	if n > current {
		return 0, errTooLargeResourceVersion(n, current)
	}
	return 0, nil
}

// listObjects reads one page (or everything) of a collection, filtered by
// the query's selectors. With a selector and a limit it reads on until the
// page is full, as upstream does, and hands out its own continue token.
func (s *Server) listObjects(ctx context.Context, res *registry.Resource, namespace string, q listQuery) (runtime.Object, error) {
	rev, err := s.listRevision(ctx, q.opts)
	if err != nil {
		return nil, err
	}
	prefix := storagePrefix(res, namespace)
	// A negative limit is no limit, as upstream's storage reads it (the
	// store refuses one).
	limit := max(q.opts.Limit, 0)
	var items []runtime.Object
	var listRev int64
	var cont string
	var remaining *int64
	storageOpts := storage.ListOptions{Revision: rev, Limit: limit, Continue: q.opts.Continue}
	for {
		page, err := s.store.List(ctx, prefix, storageOpts)
		if err != nil {
			switch {
			case errors.Is(err, storage.ErrCompacted) && q.opts.Continue != "":
				return nil, apierrors.NewResourceExpired(errContinueExpired)
			case errors.Is(err, storage.ErrCompacted):
				return nil, apierrors.NewResourceExpired("too old resource version: " + q.opts.ResourceVersion)
			case errors.Is(err, storage.ErrFutureRevision):
				current, _ := s.store.Revision(ctx)
				return nil, errTooLargeResourceVersion(rev, current)
			}
			return nil, fromStorage(err, res, "")
		}
		listRev = page.Revision
		full := false
		for i, kv := range page.KVs {
			obj, err := s.fromKV(res, kv)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			if !s.matches(q, res, obj) {
				continue
			}
			items = append(items, obj)
			if limit > 0 && int64(len(items)) == limit {
				if i < len(page.KVs)-1 || page.Continue != "" {
					if !q.filtering() && i == len(page.KVs)-1 {
						cont = page.Continue
						if page.RemainingItemCount > 0 {
							n := page.RemainingItemCount
							remaining = &n
						}
					} else {
						cont = storage.EncodeContinue(page.Revision, kv.Key+"\x00")
					}
				}
				full = true
				break
			}
		}
		if full || page.Continue == "" {
			break
		}
		storageOpts = storage.ListOptions{Limit: limit, Continue: page.Continue}
	}
	list, err := s.newList(res)
	if err != nil {
		return nil, err
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	lm, _ := meta.ListAccessor(list)
	setListMeta(lm, listRev, cont, remaining)
	return list, nil
}

func setListMeta(lm metav1.ListInterface, rev int64, cont string, remaining *int64) {
	lm.SetResourceVersion(formatRevision(rev))
	lm.SetContinue(cont)
	lm.SetRemainingItemCount(remaining)
}

// newList returns an empty list of the resource's kind with TypeMeta set.
func (s *Server) newList(res *registry.Resource) (runtime.Object, error) {
	gvk := res.GVR.GroupVersion().WithKind(res.Kind + "List")
	list, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	list.GetObjectKind().SetGroupVersionKind(gvk)
	return list, nil
}
