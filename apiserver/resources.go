package apiserver

import (
	"context"
	"net/http"
	"slices"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// resource is one entry of the resource table: everything the generic REST
// code needs to know about one served resource.
type resource struct {
	gvr        schema.GroupVersionResource
	kind       string
	singular   string
	namespaced bool
	shortNames []string
	categories []string
	// subresources served beside the main resource, e.g. "status", "scale".
	subresources []string

	// generation: metadata.generation starts at 1 and is bumped whenever
	// spec changes, as upstream does for workloads and pods.
	generation bool
	// keepStatusOnCreate: status given on create is stored (nodes, events);
	// otherwise it is reset like upstream's PrepareForCreate.
	keepStatusOnCreate bool
	// allowCreateOnUpdate: PUT of a missing object creates it.
	allowCreateOnUpdate bool
	// returnDeletedObject: an immediate DELETE answers with the object
	// instead of a Status.
	returnDeletedObject bool

	nameValidation apimachineryvalidation.ValidateNameFunc
	// selectableFields adds resource specific field selector fields to
	// metadata.name and metadata.namespace.
	selectableFields func(obj runtime.Object) fields.Set
	// prepareForCreate fills defaults and server-set fields before
	// validation (may be nil).
	prepareForCreate func(obj runtime.Object)
	// prepareForUpdate fills defaults on an update before validation; old is
	// the stored object (may be nil).
	prepareForUpdate func(obj, old runtime.Object)
	// validate returns field errors; old is nil on create.
	validate func(obj, old runtime.Object) field.ErrorList
	// warnings returns warnings for a valid write, sent as Warning
	// headers; old is nil on create (may be nil).
	warnings func(obj, old runtime.Object) []string
	// admit performs stateful admission (allocations) after validation; old
	// is nil on create. It must not persist anything when dryRun is set.
	admit func(ctx context.Context, obj, old runtime.Object, dryRun bool) error
	// released is told that obj has been deleted from storage.
	released func(ctx context.Context, obj runtime.Object)
	// table prints rows for as=Table; nil prints NAME and AGE.
	table *tableConvertor
	// createOnly, when set, makes the resource a create-only request that
	// is answered, not stored (bindings, reviews). It gets the decoded
	// body and returns the answer.
	createOnly func(r *http.Request, t requestTarget, obj runtime.Object) (runtime.Object, error)
	// updateThrough, when set, runs on every update before validate: it
	// keeps what a write through subresource ("" for the main resource)
	// may not change and returns what is wrong with the rest, for
	// resources whose subresources own different parts of the object
	// (certificatesigningrequests: status, approval).
	updateThrough func(subresource string, obj, old runtime.Object) field.ErrorList
	// storedAs, when set, stores this resource as another one's objects
	// (events.k8s.io/v1 Events are core/v1 Events in storage).
	storedAs *storageConversion
	// orphanByDefault: a delete that names no propagation policy orphans
	// the dependents, as upstream's batch/v1 Jobs (their
	// DefaultGarbageCollectionPolicy), and gets orphanWarning.
	orphanByDefault bool
	orphanWarning   string
}

// storageConversion stores a resource in another resource's keys and
// form, converting on every read and write.
type storageConversion struct {
	group, resource string // storage key segments
	newStorage      func() runtime.Object
	toStorage       func(runtime.Object) runtime.Object
	fromStorage     func(runtime.Object) runtime.Object
}

func (r *resource) gvk() schema.GroupVersionKind {
	return r.gvr.GroupVersion().WithKind(r.kind)
}

func (r *resource) groupResource() schema.GroupResource { return r.gvr.GroupResource() }

func (r *resource) hasSubresource(name string) bool { return slices.Contains(r.subresources, name) }

// storageGroup is the group segment of storage keys.
func (r *resource) storageGroup() string {
	if r.gvr.Group == "" {
		return "core"
	}
	return r.gvr.Group
}

// resourceTable holds every served resource, in discovery order.
type resourceTable struct {
	// groups in the order /apis lists them; "" first.
	groups []schema.GroupVersion
	byGV   map[schema.GroupVersion][]*resource
	byGVR  map[schema.GroupVersionResource]*resource
}

func (t *resourceTable) add(r *resource) {
	gv := r.gvr.GroupVersion()
	if _, ok := t.byGV[gv]; !ok {
		t.groups = append(t.groups, gv)
	}
	t.byGV[gv] = append(t.byGV[gv], r)
	t.byGVR[r.gvr] = r
}

func (t *resourceTable) lookup(gvr schema.GroupVersionResource) (*resource, bool) {
	r, ok := t.byGVR[gvr]
	return r, ok
}

func (t *resourceTable) servesGroupVersion(gv schema.GroupVersion) bool {
	_, ok := t.byGV[gv]
	return ok
}

var (
	coreV1         = schema.GroupVersion{Version: "v1"}
	appsV1         = schema.GroupVersion{Group: "apps", Version: "v1"}
	discoveryV1    = schema.GroupVersion{Group: "discovery.k8s.io", Version: "v1"}
	coordinationV1 = schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}
	eventsV1       = schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}
)

// newResourceTable builds the table of every resource s serves.
func newResourceTable(s *Server) *resourceTable {
	t := &resourceTable{byGV: map[schema.GroupVersion][]*resource{}, byGVR: map[schema.GroupVersionResource]*resource{}}
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	all := []string{"all"}

	t.add(&resource{gvr: coreV1.WithResource("bindings"), kind: "Binding", singular: "binding", namespaced: true,
		nameValidation: subdomain, createOnly: s.createLegacyBinding})
	t.add(&resource{gvr: coreV1.WithResource("configmaps"), kind: "ConfigMap", singular: "configmap", namespaced: true,
		shortNames: []string{"cm"}, nameValidation: subdomain, validate: validateConfigMap, table: configMapTable()})
	t.add(&resource{gvr: coreV1.WithResource("endpoints"), kind: "Endpoints", singular: "endpoints", namespaced: true,
		shortNames: []string{"ep"}, nameValidation: subdomain, allowCreateOnUpdate: true, validate: s.validateEndpoints, warnings: endpointsWarnings,
		prepareForCreate: defaultEndpoints, prepareForUpdate: func(obj, _ runtime.Object) { defaultEndpoints(obj) },
		table: endpointsTable()})
	t.add(&resource{gvr: coreV1.WithResource("events"), kind: "Event", singular: "event", namespaced: true,
		shortNames: []string{"ev"}, nameValidation: coreEventNameValidation, keepStatusOnCreate: true, allowCreateOnUpdate: true,
		selectableFields: coreEventFields, validate: validateCoreEvent, admit: s.admitEvent, table: coreEventTable()})
	t.add(&resource{gvr: coreV1.WithResource("namespaces"), kind: "Namespace", singular: "namespace",
		shortNames: []string{"ns"}, subresources: []string{"status", "finalize"},
		nameValidation: apimachineryvalidation.ValidateNamespaceName, returnDeletedObject: true,
		selectableFields: namespaceFields, prepareForCreate: prepareNamespace, prepareForUpdate: prepareNamespaceUpdate,
		table: namespaceTable()})
	t.add(&resource{gvr: coreV1.WithResource("nodes"), kind: "Node", singular: "node",
		shortNames: []string{"no"}, subresources: []string{"status"}, nameValidation: subdomain,
		keepStatusOnCreate: true, selectableFields: nodeFields, table: nodeTable()})
	t.add(&resource{gvr: coreV1.WithResource("pods"), kind: "Pod", singular: "pod", namespaced: true,
		shortNames: []string{"po"}, categories: all,
		subresources:   []string{"status", "binding", "eviction", "log", "exec", "attach", "portforward"},
		nameValidation: subdomain, generation: true, returnDeletedObject: true,
		selectableFields: podFields, prepareForCreate: s.preparePod, prepareForUpdate: preparePodUpdate,
		validate: validatePod, admit: s.admitPod, table: podTable()})
	t.add(&resource{gvr: coreV1.WithResource("secrets"), kind: "Secret", singular: "secret", namespaced: true,
		nameValidation: subdomain, selectableFields: secretFields, prepareForCreate: prepareSecret, validate: validateSecret,
		prepareForUpdate: func(obj, _ runtime.Object) { prepareSecret(obj) }, table: secretTable()})
	t.add(&resource{gvr: coreV1.WithResource("serviceaccounts"), kind: "ServiceAccount", singular: "serviceaccount", namespaced: true,
		shortNames: []string{"sa"}, subresources: []string{"token"}, nameValidation: subdomain, table: serviceAccountTable()})
	t.add(&resource{gvr: coreV1.WithResource("services"), kind: "Service", singular: "service", namespaced: true,
		shortNames: []string{"svc"}, categories: all, subresources: []string{"status"},
		nameValidation: apimachineryvalidation.NameIsDNS1035Label, returnDeletedObject: true, selectableFields: serviceFields,
		prepareForCreate: prepareService, prepareForUpdate: prepareServiceUpdate, validate: validateService,
		admit: s.admitService, released: s.releaseService, table: serviceTable()})

	workload := func(resourceName, kind, singular string, short string, subresources ...string) *resource {
		return &resource{gvr: appsV1.WithResource(resourceName), kind: kind, singular: singular, namespaced: true,
			shortNames: []string{short}, categories: all, subresources: subresources,
			nameValidation: subdomain, generation: true,
			prepareForCreate: prepareWorkload, prepareForUpdate: func(obj, _ runtime.Object) { prepareWorkload(obj) },
			validate: validateWorkload}
	}
	ds := workload("daemonsets", "DaemonSet", "daemonset", "ds", "status")
	ds.table = daemonSetTable()
	t.add(ds)
	deploy := workload("deployments", "Deployment", "deployment", "deploy", "status", "scale")
	deploy.table = deploymentTable()
	t.add(deploy)
	rs := workload("replicasets", "ReplicaSet", "replicaset", "rs", "status", "scale")
	rs.table = replicaSetTable()
	rs.selectableFields = replicaSetFields
	t.add(rs)
	sts := workload("statefulsets", "StatefulSet", "statefulset", "sts", "status", "scale")
	sts.table = statefulSetTable()
	t.add(sts)

	t.add(&resource{gvr: appsV1.WithResource("controllerrevisions"), kind: "ControllerRevision", singular: "controllerrevision", namespaced: true,
		nameValidation: subdomain, table: controllerRevisionTable()})
	for _, r := range batchResources() {
		t.add(r)
	}
	for _, r := range rbacResources() {
		t.add(r)
	}
	t.add(&resource{gvr: authenticationV1.WithResource("selfsubjectreviews"), kind: "SelfSubjectReview", singular: "selfsubjectreview",
		createOnly: selfSubjectReview})
	t.add(&resource{gvr: authorizationV1.WithResource("selfsubjectaccessreviews"), kind: "SelfSubjectAccessReview", singular: "selfsubjectaccessreview",
		createOnly: selfSubjectAccessReview})
	t.add(&resource{gvr: coordinationV1.WithResource("leases"), kind: "Lease", singular: "lease", namespaced: true,
		nameValidation: subdomain, allowCreateOnUpdate: true, validate: validateLease, table: leaseTable()})
	t.add(&resource{gvr: discoveryV1.WithResource("endpointslices"), kind: "EndpointSlice", singular: "endpointslice", namespaced: true,
		nameValidation: subdomain, prepareForCreate: prepareEndpointSlice, prepareForUpdate: prepareEndpointSliceUpdate,
		validate: s.validateEndpointSlice, warnings: endpointSliceWarnings, table: endpointSliceTable()})
	t.add(&resource{gvr: eventsV1.WithResource("events"), kind: "Event", singular: "event", namespaced: true,
		shortNames: []string{"ev"}, nameValidation: subdomain, keepStatusOnCreate: true, allowCreateOnUpdate: true,
		validate: validateEventsV1Event, admit: s.admitEvent, table: eventsV1Table(), storedAs: eventsAsCoreEvents()})
	t.add(s.certificateSigningRequests())
	t.add(podDisruptionBudgets())
	return t
}

// verbs lists the verbs served on the main resource.
func (r *resource) verbs() metav1.Verbs {
	if r.createOnly != nil {
		return metav1.Verbs{"create"}
	}
	if r.gvr == coreV1.WithResource("namespaces") {
		// Namespaces cannot be deleted in bulk, as upstream.
		return metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
	}
	return metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}
