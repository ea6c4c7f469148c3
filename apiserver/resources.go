package apiserver

import (
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/coordination"
	"github.com/tinykube/tinykube/apiserver/registry/rbac"
)

// resourceTable holds every served resource, in discovery order.
type resourceTable struct {
	// groups in the order /apis lists them; "" first.
	groups []schema.GroupVersion
	byGV   map[schema.GroupVersion][]*registry.Resource
	byGVR  map[schema.GroupVersionResource]*registry.Resource
}

func (t *resourceTable) add(r *registry.Resource) {
	gv := r.GVR.GroupVersion()
	if _, ok := t.byGV[gv]; !ok {
		t.groups = append(t.groups, gv)
	}
	t.byGV[gv] = append(t.byGV[gv], r)
	t.byGVR[r.GVR] = r
}

func (t *resourceTable) lookup(gvr schema.GroupVersionResource) (*registry.Resource, bool) {
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
	rbacV1         = schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
)

// groups are the API groups the server serves, in discovery order:
// adding a group is adding its package and one line here.
func (s *Server) groups() []registry.Group {
	return []registry.Group{
		groupFunc(s.coreResources),
		groupFunc(appsResources),
		groupFunc(batchResources),
		rbac.Group{},
		groupFunc(authenticationResources),
		groupFunc(authorizationResources),
		coordination.Group{},
		groupFunc(s.discoveryResources),
		groupFunc(s.eventsResources),
		groupFunc(s.certificatesResources),
		groupFunc(policyResources),
	}
}

// groupFunc serves a group that has no package of its own yet.
type groupFunc func(registry.Config) []*registry.Resource

func (f groupFunc) Resources(cfg registry.Config) []*registry.Resource { return f(cfg) }

// registryConfig is what the server gives every group.
func (s *Server) registryConfig() registry.Config {
	return registry.Config{
		Now:                                 s.now,
		AdvertiseAddress:                    s.cfg.AdvertiseAddress,
		DefaultNotReadyTolerationSeconds:    s.cfg.DefaultNotReadyTolerationSeconds,
		DefaultUnreachableTolerationSeconds: s.cfg.DefaultUnreachableTolerationSeconds,
		Bind:                                s.createLegacyBinding,
		AllocateService:                     s.admitService,
		ReleaseService:                      s.releaseService,
		EventWritten:                        s.admitEvent,
		AdmitPod:                            s.admitPod,
	}
}

// newResourceTable builds the table of every resource s serves.
func newResourceTable(s *Server) *resourceTable {
	t := &resourceTable{byGV: map[schema.GroupVersion][]*registry.Resource{}, byGVR: map[schema.GroupVersionResource]*registry.Resource{}}
	cfg := s.registryConfig()
	for _, g := range s.groups() {
		for _, r := range g.Resources(cfg) {
			t.add(r)
		}
	}
	return t
}

func (s *Server) coreResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	all := []string{"all"}

	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("bindings"), Kind: "Binding", Singular: "binding", Namespaced: true,
		NameValidation: subdomain, CreateOnly: s.createLegacyBinding})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("configmaps"), Kind: "ConfigMap", Singular: "configmap", Namespaced: true,
		ShortNames: []string{"cm"}, NameValidation: subdomain, Validate: validateConfigMap, Table: configMapTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("endpoints"), Kind: "Endpoints", Singular: "endpoints", Namespaced: true,
		ShortNames: []string{"ep"}, NameValidation: subdomain, AllowCreateOnUpdate: true, Validate: s.validateEndpoints, Warnings: endpointsWarnings,
		PrepareForCreate: defaultEndpoints, PrepareForUpdate: func(obj, _ runtime.Object) { defaultEndpoints(obj) },
		Table: endpointsTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("events"), Kind: "Event", Singular: "event", Namespaced: true,
		ShortNames: []string{"ev"}, NameValidation: coreEventNameValidation, KeepStatusOnCreate: true, AllowCreateOnUpdate: true,
		SelectableFields: coreEventFields, Validate: validateCoreEvent, Admit: s.admitEvent, Table: coreEventTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("namespaces"), Kind: "Namespace", Singular: "namespace",
		ShortNames: []string{"ns"}, Subresources: []string{"status", "finalize"},
		NameValidation: apimachineryvalidation.ValidateNamespaceName, ReturnDeletedObject: true,
		SelectableFields: namespaceFields, PrepareForCreate: prepareNamespace, PrepareForUpdate: prepareNamespaceUpdate,
		Table: namespaceTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("nodes"), Kind: "Node", Singular: "node",
		ShortNames: []string{"no"}, Subresources: []string{"status"}, NameValidation: subdomain,
		KeepStatusOnCreate: true, SelectableFields: nodeFields, Table: nodeTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("pods"), Kind: "Pod", Singular: "pod", Namespaced: true,
		ShortNames: []string{"po"}, Categories: all,
		Subresources:   []string{"status", "binding", "eviction", "log", "exec", "attach", "portforward"},
		NameValidation: subdomain, Generation: true, ReturnDeletedObject: true,
		SelectableFields: podFields, PrepareForCreate: s.preparePod, PrepareForUpdate: preparePodUpdate,
		Validate: validatePod, Admit: s.admitPod, Table: podTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("secrets"), Kind: "Secret", Singular: "secret", Namespaced: true,
		NameValidation: subdomain, SelectableFields: secretFields, PrepareForCreate: prepareSecret, Validate: validateSecret,
		PrepareForUpdate: func(obj, _ runtime.Object) { prepareSecret(obj) }, Table: secretTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("serviceaccounts"), Kind: "ServiceAccount", Singular: "serviceaccount", Namespaced: true,
		ShortNames: []string{"sa"}, Subresources: []string{"token"}, NameValidation: subdomain, Table: serviceAccountTable()})
	rs = append(rs, &registry.Resource{GVR: coreV1.WithResource("services"), Kind: "Service", Singular: "service", Namespaced: true,
		ShortNames: []string{"svc"}, Categories: all, Subresources: []string{"status"},
		NameValidation: apimachineryvalidation.NameIsDNS1035Label, ReturnDeletedObject: true, SelectableFields: serviceFields,
		PrepareForCreate: prepareService, PrepareForUpdate: prepareServiceUpdate, Validate: validateService,
		Admit: s.admitService, Released: s.releaseService, Table: serviceTable()})

	return rs
}

func appsResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	all := []string{"all"}
	workload := func(resourceName, kind, singular string, short string, subresources ...string) *registry.Resource {
		return &registry.Resource{GVR: appsV1.WithResource(resourceName), Kind: kind, Singular: singular, Namespaced: true,
			ShortNames: []string{short}, Categories: all, Subresources: subresources,
			NameValidation: subdomain, Generation: true,
			PrepareForCreate: prepareWorkload, PrepareForUpdate: func(obj, _ runtime.Object) { prepareWorkload(obj) },
			Validate: validateWorkload}
	}
	ds := workload("daemonsets", "DaemonSet", "daemonset", "ds", "status")
	ds.Table = daemonSetTable()
	rs = append(rs, ds)
	deploy := workload("deployments", "Deployment", "deployment", "deploy", "status", "scale")
	deploy.Table = deploymentTable()
	rs = append(rs, deploy)
	replicaSets := workload("replicasets", "ReplicaSet", "replicaset", "rs", "status", "scale")
	replicaSets.Table = replicaSetTable()
	replicaSets.SelectableFields = replicaSetFields
	rs = append(rs, replicaSets)
	sts := workload("statefulsets", "StatefulSet", "statefulset", "sts", "status", "scale")
	sts.Table = statefulSetTable()
	rs = append(rs, sts)

	rs = append(rs, &registry.Resource{GVR: appsV1.WithResource("controllerrevisions"), Kind: "ControllerRevision", Singular: "controllerrevision", Namespaced: true,
		NameValidation: subdomain, Table: controllerRevisionTable()})
	return rs
}

func authenticationResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	rs = append(rs, &registry.Resource{GVR: authenticationV1.WithResource("selfsubjectreviews"), Kind: "SelfSubjectReview", Singular: "selfsubjectreview",
		CreateOnly: selfSubjectReview})
	return rs
}

func authorizationResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	rs = append(rs, &registry.Resource{GVR: authorizationV1.WithResource("selfsubjectaccessreviews"), Kind: "SelfSubjectAccessReview", Singular: "selfsubjectaccessreview",
		CreateOnly: selfSubjectAccessReview})
	return rs
}

func (s *Server) discoveryResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	rs = append(rs, &registry.Resource{GVR: discoveryV1.WithResource("endpointslices"), Kind: "EndpointSlice", Singular: "endpointslice", Namespaced: true,
		NameValidation: subdomain, PrepareForCreate: prepareEndpointSlice, PrepareForUpdate: prepareEndpointSliceUpdate,
		Validate: s.validateEndpointSlice, Warnings: endpointSliceWarnings, Table: endpointSliceTable()})
	return rs
}

func (s *Server) eventsResources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	rs = append(rs, &registry.Resource{GVR: eventsV1.WithResource("events"), Kind: "Event", Singular: "event", Namespaced: true,
		ShortNames: []string{"ev"}, NameValidation: subdomain, KeepStatusOnCreate: true, AllowCreateOnUpdate: true,
		Validate: validateEventsV1Event, Admit: s.admitEvent, Table: eventsV1Table(), StoredAs: eventsAsCoreEvents()})
	return rs
}

func (s *Server) certificatesResources(registry.Config) []*registry.Resource {
	return []*registry.Resource{s.certificateSigningRequests()}
}

func policyResources(registry.Config) []*registry.Resource {
	return []*registry.Resource{podDisruptionBudgets()}
}
