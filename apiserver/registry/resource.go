package registry

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"time"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Group is one API group's package: the resources it serves.
//
// Resources is called once, when the server is built; it returns the
// group's resources in discovery order, each of them complete (the server
// does not fill in hooks afterwards). It must not start goroutines or touch
// storage: a group that needs the server's state (bindings, allocations,
// the authorizer) gets it as fields of its Group value, set in the
// server's list of groups.
type Group interface {
	Resources(cfg Config) []*Resource
}

// Config is what the generic server gives every group.
type Config struct {
	// Now is the server's clock.
	Now func() time.Time
	// AdvertiseAddress is the address of the `kubernetes` Service's
	// endpoints; it may be loopback (invalid when unknown).
	AdvertiseAddress netip.Addr
}

// AdmitFunc is a resource's own step after validation and the admission
// chain, for what must happen with the write (allocations in storage);
// old is nil on create. It must not persist anything when dryRun is set.
type AdmitFunc func(ctx context.Context, obj, old runtime.Object, dryRun bool) error

// CreateOnlyFunc answers a create-only request (nothing is stored): it gets
// the request, the namespace of its path and the decoded body.
type CreateOnlyFunc func(r *http.Request, namespace string, obj runtime.Object) (runtime.Object, error)

// Resource is one served resource: everything the generic REST code needs
// to know about it.
type Resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Singular   string
	Namespaced bool
	ShortNames []string
	Categories []string
	// Subresources served beside the main resource, e.g. "status", "scale".
	Subresources []string

	// Generation: metadata.generation starts at 1 and is bumped whenever
	// spec changes, as upstream does for workloads and pods.
	Generation bool
	// KeepStatusOnCreate: status given on create is stored (nodes, events);
	// otherwise it is reset like upstream's PrepareForCreate.
	KeepStatusOnCreate bool
	// AllowCreateOnUpdate: PUT of a missing object creates it.
	AllowCreateOnUpdate bool
	// ReturnDeletedObject: an immediate DELETE answers with the object
	// instead of a Status.
	ReturnDeletedObject bool
	// NoDeleteCollection: the collection cannot be deleted in bulk
	// (namespaces, as upstream).
	NoDeleteCollection bool

	NameValidation apimachineryvalidation.ValidateNameFunc
	// SelectableFields adds resource specific field selector fields to
	// metadata.name and metadata.namespace.
	SelectableFields func(obj runtime.Object) fields.Set
	// PrepareForCreate fills defaults and server-set fields before
	// validation (may be nil).
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate fills defaults on an update before validation; old is
	// the stored object (may be nil).
	PrepareForUpdate func(obj, old runtime.Object)
	// Validate returns field errors; old is nil on create.
	Validate func(obj, old runtime.Object) field.ErrorList
	// Warnings returns warnings for a valid write, sent as Warning
	// headers; old is nil on create (may be nil).
	Warnings func(obj, old runtime.Object) []string
	// Admit is the resource's own step after validation and the
	// admission chain, for what must happen with the write (allocations
	// in storage, recording the requestor); admission plugins belong in
	// package admission.
	Admit AdmitFunc
	// Released is told that obj has been deleted from storage.
	Released func(ctx context.Context, obj runtime.Object)
	// Table prints rows for as=Table; nil prints NAME and CREATED AT.
	Table *Table
	// CreateOnly, when set, makes the resource a create-only request that
	// is answered, not stored (bindings, reviews).
	CreateOnly CreateOnlyFunc
	// UpdateThrough, when set, runs on every update before Validate: it
	// keeps what a write through subresource ("" for the main resource)
	// may not change and returns what is wrong with the rest, for
	// resources whose subresources own different parts of the object
	// (certificatesigningrequests: status, approval).
	UpdateThrough func(subresource string, obj, old runtime.Object) field.ErrorList
	// StoredAs, when set, stores this resource as another one's objects
	// (events.k8s.io/v1 Events are core/v1 Events in storage).
	StoredAs *StorageConversion
	// OrphanByDefault: a delete that names no propagation policy orphans
	// the dependents, as upstream's batch/v1 Jobs (their
	// DefaultGarbageCollectionPolicy), and gets OrphanWarning.
	OrphanByDefault bool
	OrphanWarning   string
}

// StorageConversion stores a resource in another resource's keys and
// form, converting on every read and write.
type StorageConversion struct {
	Group, Resource string // storage key segments
	NewStorage      func() runtime.Object
	ToStorage       func(runtime.Object) runtime.Object
	FromStorage     func(runtime.Object) runtime.Object
}

// GVK is the resource's group, version and kind.
func (r *Resource) GVK() schema.GroupVersionKind {
	return r.GVR.GroupVersion().WithKind(r.Kind)
}

// GroupResource is the resource's group and resource name.
func (r *Resource) GroupResource() schema.GroupResource { return r.GVR.GroupResource() }

// HasSubresource reports whether name is served beside the resource.
func (r *Resource) HasSubresource(name string) bool { return slices.Contains(r.Subresources, name) }

// StorageGroup is the group segment of storage keys: "core" for the
// legacy group.
func (r *Resource) StorageGroup() string {
	if r.GVR.Group == "" {
		return "core"
	}
	return r.GVR.Group
}

// Verbs lists the verbs served on the main resource.
func (r *Resource) Verbs() metav1.Verbs {
	if r.CreateOnly != nil {
		return metav1.Verbs{"create"}
	}
	if r.NoDeleteCollection {
		return metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
	}
	return metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}
