package apiserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// serveCreate answers POST on a collection.
func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	if t.res.CreateOnly != nil {
		obj, err := s.readObject(w, r, t.res.GVK())
		if err != nil {
			return err
		}
		answer, err := t.res.CreateOnly(r, t.namespace, obj)
		if err != nil {
			return err
		}
		s.encode(w, http.StatusCreated, mediaJSON, answer)
		return nil
	}
	var opts metav1.CreateOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_CreateOptions(&q, &opts, nil); err != nil {
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
	if accessor(obj).GetResourceVersion() != "" {
		// Upstream's storage refuses this with a plain error, hence 500.
		return apierrors.NewInternalError(errors.New("resourceVersion should not be set on objects to be created"))
	}
	if obj, err = s.trackUpdate(t.res, "", nil, obj, managerName(r, opts.FieldManager)); err != nil {
		return err
	}
	created, err := s.createObject(r.Context(), t.res, t.namespace, obj, dryRun)
	if err != nil {
		return err
	}
	return s.respond(w, r, t.res, http.StatusCreated, created)
}

// parseDryRun accepts the only value upstream knows, "All".
func parseDryRun(values []string) (bool, error) {
	for _, v := range values {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q: supported values are %q", v, metav1.DryRunAll))
		}
	}
	return len(values) > 0, nil
}

// createObject runs the create pipeline: namespace check, server-set
// metadata, defaulting, validation, admission, then storage. With dryRun it
// stops before anything is persisted.
func (s *Server) createObject(ctx context.Context, res *registry.Resource, namespace string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	m := accessor(obj)
	if res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(namespace)
		}
		if m.GetNamespace() != namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		// The name is not generated yet: upstream's admission names the
		// object by its generateName then.
		if err := s.checkNamespaceAcceptsCreate(ctx, res, namespace, cmp.Or(m.GetName(), m.GetGenerateName())); err != nil {
			return nil, err
		}
	} else {
		m.SetNamespace("")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if generated {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}
	s.prepareForCreate(res, obj)
	if errs := s.validateCreate(res, obj); len(errs) > 0 {
		return nil, apierrors.NewInvalid(res.GVK().GroupKind(), m.GetName(), errs)
	}
	if res.Warnings != nil {
		warn(ctx, res.Warnings(obj, nil))
	}
	if err := s.admit(ctx, res, "", obj, nil, dryRun); err != nil {
		return nil, err
	}
	if dryRun {
		return obj, nil
	}
	value, err := s.toStored(res, obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	for attempt := 0; ; attempt++ {
		kv, err := s.store.Create(ctx, storageKey(res, m.GetNamespace(), m.GetName()), value)
		if errors.Is(err, storage.ErrAlreadyExists) && generated && attempt < 5 {
			m.SetName(m.GetGenerateName() + rand.String(5))
			if value, err = s.toStored(res, obj); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			continue
		}
		if err != nil {
			if res.Released != nil {
				res.Released(ctx, obj)
			}
			return nil, fromStorage(err, res, m.GetName())
		}
		setResourceVersion(obj, kv.ModRevision)
		return obj, nil
	}
}

// prepareForCreate sets the fields the server owns on a new object.
func (s *Server) prepareForCreate(res *registry.Resource, obj runtime.Object) {
	m := accessor(obj)
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.NewTime(s.now()))
	m.SetResourceVersion("")
	m.SetSelfLink("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	if res.Generation {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if res.HasSubresource("status") && !res.KeepStatusOnCreate {
		resetField(obj, "Status")
	}
	if res.PrepareForCreate != nil {
		res.PrepareForCreate(obj)
	}
}

func (s *Server) validateCreate(res *registry.Resource, obj runtime.Object) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(accessor(obj), res.Namespaced, res.NameValidation, field.NewPath("metadata"))
	if res.Validate != nil {
		errs = append(errs, res.Validate(obj, nil)...)
	}
	return errs
}

// checkNamespaceAcceptsCreate refuses creates in a namespace that does not
// exist or is being deleted, with upstream's messages.
func (s *Server) checkNamespaceAcceptsCreate(ctx context.Context, res *registry.Resource, namespace, name string) error {
	nsRes, _ := s.resources.lookup(coreV1.WithResource("namespaces"))
	kv, err := s.store.Get(ctx, storageKey(nsRes, "", namespace), 0)
	if err != nil {
		return fromStorage(err, nsRes, namespace)
	}
	ns, err := s.fromKV(nsRes, kv)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if accessor(ns).GetDeletionTimestamp() != nil {
		return errNamespaceTerminating(res.GroupResource(), name, namespace)
	}
	return nil
}
