package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// updateRequest is one read-modify-write of an object, shared by PUT,
// PATCH and the status, scale and binding subresources.
type updateRequest struct {
	res       *registry.Resource
	namespace string
	name      string
	// subresource is "" for the main resource, "status", or "binding" /
	// "finalize" for writes the server computes from the current object; it
	// decides which half of the object the write may change.
	subresource string
	dryRun      bool
	// allowCreate lets a missing object be created (apply always, PUT when
	// the resource allows it).
	allowCreate bool
	// mutate returns the desired object from a copy of the current one; it
	// gets nil when the object does not exist and allowCreate holds. It may
	// be called again after a conflict.
	mutate func(current runtime.Object) (runtime.Object, error)
}

// updateObject runs the update pipeline with optimistic concurrency: a
// resourceVersion in the desired object is a precondition (409 when stale);
// without one the write is retried on conflict against the fresh state.
// It returns the stored object and whether it was created.
func (s *Server) updateObject(ctx context.Context, u updateRequest) (runtime.Object, bool, error) {
	key := storageKey(u.res, u.namespace, u.name)
	for {
		kv, err := s.store.Get(ctx, key, 0)
		if errors.Is(err, storage.ErrNotFound) && u.allowCreate && u.subresource == "" {
			desired, err := u.mutate(nil)
			if err != nil {
				return nil, false, err
			}
			accessor(desired).SetResourceVersion("")
			created, err := s.createObject(ctx, u.res, u.namespace, desired, u.dryRun)
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: update it instead
			}
			return created, err == nil, err
		}
		if err != nil {
			return nil, false, fromStorage(err, u.res, u.name)
		}
		current, err := s.fromKV(u.res, kv)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		desired, err := u.mutate(current.DeepCopyObject())
		if err != nil {
			return nil, false, err
		}
		dm := accessor(desired)
		precondition := dm.GetResourceVersion()
		if precondition != "" && precondition != accessor(current).GetResourceVersion() {
			return nil, false, fromStorage(storage.ErrConflict, u.res, u.name)
		}
		dm.SetResourceVersion(accessor(current).GetResourceVersion())
		if err := s.prepareForUpdate(u.res, u.subresource, desired, current); err != nil {
			return nil, false, err
		}
		var errs field.ErrorList
		if u.res.UpdateThrough != nil {
			errs = u.res.UpdateThrough(u.subresource, desired, current)
		}
		if errs = append(errs, s.validateUpdate(u.res, desired, current)...); len(errs) > 0 {
			return nil, false, apierrors.NewInvalid(u.res.GVK().GroupKind(), u.name, errs)
		}
		if u.res.Warnings != nil {
			warn(ctx, u.res.Warnings(desired, current))
		}
		if err := s.admit(ctx, u.res, u.subresource, desired, current, u.dryRun); err != nil {
			return nil, false, err
		}
		if u.dryRun {
			return desired, false, nil
		}
		value, err := s.toStored(u.res, desired)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		if bytes.Equal(value, kv.Value) {
			// Nothing changed: upstream does not write, and the
			// resourceVersion stays, so watchers see no event.
			return current, false, nil
		}
		if shouldDeleteDuringUpdate(u.res, desired) {
			deleted, err := s.store.Delete(ctx, key, kv.ModRevision)
			if errors.Is(err, storage.ErrConflict) && precondition == "" {
				continue
			}
			if err != nil {
				return nil, false, fromStorage(err, u.res, u.name)
			}
			setResourceVersion(desired, deleted.ModRevision)
			if u.res.Released != nil {
				u.res.Released(ctx, desired)
			}
			return desired, false, nil
		}
		stored, err := s.store.Update(ctx, key, value, kv.ModRevision)
		if errors.Is(err, storage.ErrConflict) && precondition == "" {
			continue
		}
		if err != nil {
			return nil, false, fromStorage(err, u.res, u.name)
		}
		setResourceVersion(desired, stored.ModRevision)
		return desired, false, nil
	}
}

// prepareForUpdate carries over what a client may not change through this
// endpoint: server-owned metadata always, status through the main resource
// and spec (and a few resources' metadata) through /status.
func (s *Server) prepareForUpdate(res *registry.Resource, subresource string, obj, old runtime.Object) error {
	m, om := accessor(obj), accessor(old)
	if m.GetName() != om.GetName() {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), om.GetName()))
	}
	if uid := m.GetUID(); uid != "" && uid != om.GetUID() {
		return apierrors.NewConflict(res.GroupResource(), om.GetName(),
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, om.GetUID()))
	}
	m.SetNamespace(om.GetNamespace())
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetSelfLink("")
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetGenerateName(om.GetGenerateName())
	switch subresource {
	case "binding", "finalize":
		// Built by the server from the current object: nothing to carry.
		m.SetGeneration(om.GetGeneration())
	case "status", "approval":
		// Upstream's status strategies reset spec and keep the client's
		// metadata changes, except what statusResetMetadata names.
		copyField(obj, old, "Spec")
		m.SetGeneration(om.GetGeneration())
		resetStatusMetadata(res, m, om)
	default:
		if res.HasSubresource("status") {
			copyField(obj, old, "Status")
		}
		m.SetGeneration(om.GetGeneration())
		if res.Generation && fieldChanged(obj, old, "Spec") {
			m.SetGeneration(om.GetGeneration() + 1)
		}
	}
	if res.PrepareForUpdate != nil && subresource != "finalize" {
		res.PrepareForUpdate(obj, old)
	}
	return nil
}

// statusResetMetadata lists the metadata a write through /status may not
// change, per resource, as upstream's status strategies (PrepareForUpdate
// and GetResetFields): a Deployment's labels, and a pod's ownerReferences
// (old kubelets corrupted them in a way that broke garbage collection).
var statusResetMetadata = map[schema.GroupResource][]string{
	{Group: "apps", Resource: "deployments"}: {"labels"},
	{Resource: "pods"}:                       {"ownerReferences"},
}

// resetStatusMetadata carries over from stored what statusResetMetadata
// names for res.
func resetStatusMetadata(res *registry.Resource, m, stored metav1.Object) {
	for _, name := range statusResetMetadata[res.GroupResource()] {
		switch name {
		case "labels":
			m.SetLabels(stored.GetLabels())
		case "ownerReferences":
			m.SetOwnerReferences(stored.GetOwnerReferences())
		}
	}
}

func (s *Server) validateUpdate(res *registry.Resource, obj, old runtime.Object) field.ErrorList {
	path := field.NewPath("metadata")
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(accessor(obj), res.Namespaced, res.NameValidation, path)
	errs = append(errs, apimachineryvalidation.ValidateObjectMetaAccessorUpdate(accessor(obj), accessor(old), path)...)
	if res.Validate != nil {
		errs = append(errs, res.Validate(obj, old)...)
	}
	return errs
}

// shouldDeleteDuringUpdate: an object being deleted goes away once its last
// finalizer is removed (for namespaces also spec.finalizers).
func shouldDeleteDuringUpdate(res *registry.Resource, obj runtime.Object) bool {
	m := accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	return !hasNamespaceFinalizers(obj)
}
