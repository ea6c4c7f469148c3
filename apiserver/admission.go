package apiserver

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/admission"
	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/apiserver/registry"
)

// admissionPlugins are the admission plugins in the order they run (the
// chain runs every mutating one before every validating one): the one
// place that sets the order, as upstream's: ServiceAccount,
// NodeRestriction, DefaultTolerationSeconds, then RBAC escalation
// prevention (upstream's RBAC storage does that).
func (s *Server) admissionPlugins() []admission.Plugin {
	var plugins []admission.Plugin
	if s.cfg.ServiceAccountAdmission {
		plugins = append(plugins, admission.ServiceAccount{Objects: storedObjects{s}})
	}
	return append(plugins,
		admission.NodeRestriction{Objects: storedObjects{s}},
		admission.DefaultTolerationSeconds{NotReady: s.cfg.DefaultNotReadyTolerationSeconds, Unreachable: s.cfg.DefaultUnreachableTolerationSeconds},
		rbacEscalation{s},
	)
}

// admit runs the admission chain on a create (old is nil) or update of
// obj, before the resource's own Admit step.
func (s *Server) admit(ctx context.Context, res *registry.Resource, subresource string, obj, old runtime.Object, dryRun bool) error {
	a := &admission.Attributes{Operation: admission.Create, Resource: res.GVR, Subresource: subresource,
		Object: obj, OldObject: old, DryRun: dryRun}
	if old != nil {
		a.Operation = admission.Update
	}
	m := accessor(obj)
	a.Namespace, a.Name = m.GetNamespace(), m.GetName()
	if err := s.admission.Admit(ctx, a); err != nil {
		return err
	}
	if res.Admit != nil {
		return res.Admit(ctx, obj, old, dryRun)
	}
	return nil
}

// admitRequest runs the validating plugins on a delete or an eviction
// before it is served, against the stored object.
func (s *Server) admitRequest(ctx context.Context, a authz.Attributes) error {
	if !a.ResourceRequest {
		return nil
	}
	attrs := &admission.Attributes{
		Resource:    schema.GroupVersionResource{Group: a.APIGroup, Version: a.APIVersion, Resource: a.Resource},
		Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name,
	}
	switch {
	case a.Verb == "delete":
		attrs.Operation = admission.Delete
	case a.Verb == "create" && a.Subresource == "eviction":
		attrs.Operation = admission.Create
	default:
		return nil
	}
	return s.admission.Validate(ctx, attrs)
}

// storedObjects reads objects for admission plugins.
type storedObjects struct{ s *Server }

func (o storedObjects) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error) {
	res, ok := o.s.resources.lookup(gvr)
	if !ok {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return o.s.getStored(ctx, res, namespace, name)
}

// rbacEscalation refuses writes of roles and bindings that would grant
// more than the writer holds (preventEscalation).
type rbacEscalation struct{ s *Server }

var _ admission.Validator = rbacEscalation{}

func (rbacEscalation) Name() string { return "RBACEscalation" }

func (e rbacEscalation) Validate(ctx context.Context, a *admission.Attributes) error {
	if a.Object == nil || a.Resource.Group != rbacv1.GroupName {
		return nil
	}
	res, ok := e.s.resources.lookup(a.Resource)
	if !ok {
		return nil
	}
	return e.s.preventEscalation(ctx, res, a.Object, a.OldObject)
}
