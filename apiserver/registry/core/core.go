package core

import (
	"context"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
)

var coreV1 = schema.GroupVersion{Version: "v1"}

// Group serves the legacy group, core/v1. What needs storage is the
// server's, given here; pod admission is the admission chain's.
type Group struct {
	// Bind answers a create of the legacy bindings resource: it binds
	// the pod the Binding names.
	Bind registry.CreateOnlyFunc
	// AllocateService claims a Service's ClusterIPs and node ports
	// (its Admit hook); ReleaseService frees them once it is deleted.
	AllocateService registry.AdmitFunc
	ReleaseService  func(ctx context.Context, obj runtime.Object)
	// EventWritten is told of every write of an event (its Admit hook),
	// so the server can expire old ones.
	EventWritten registry.AdmitFunc
}

// Resources are core/v1's resources.
func (g Group) Resources(cfg registry.Config) []*registry.Resource {
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	all := []string{"all"}
	validateEndpoints := func(obj, old runtime.Object) field.ErrorList {
		return ValidateEndpoints(obj, old, ExemptAddress(cfg, obj))
	}
	return []*registry.Resource{
		{GVR: coreV1.WithResource("bindings"), Kind: "Binding", Singular: "binding", Namespaced: true,
			NameValidation: subdomain, CreateOnly: g.Bind},
		{GVR: coreV1.WithResource("configmaps"), Kind: "ConfigMap", Singular: "configmap", Namespaced: true,
			ShortNames: []string{"cm"}, NameValidation: subdomain, Validate: validateConfigMap, Table: configMapTable()},
		{GVR: coreV1.WithResource("endpoints"), Kind: "Endpoints", Singular: "endpoints", Namespaced: true,
			ShortNames: []string{"ep"}, NameValidation: subdomain, AllowCreateOnUpdate: true, Validate: validateEndpoints, Warnings: endpointsWarnings,
			PrepareForCreate: defaultEndpoints, PrepareForUpdate: func(obj, _ runtime.Object) { defaultEndpoints(obj) },
			Table: endpointsTable()},
		{GVR: coreV1.WithResource("events"), Kind: "Event", Singular: "event", Namespaced: true,
			ShortNames: []string{"ev"}, NameValidation: coreEventNameValidation, KeepStatusOnCreate: true, AllowCreateOnUpdate: true,
			SelectableFields: coreEventFields, Validate: validateCoreEvent, Admit: g.EventWritten, Table: coreEventTable()},
		{GVR: coreV1.WithResource("namespaces"), Kind: "Namespace", Singular: "namespace",
			ShortNames: []string{"ns"}, Subresources: []string{"status", "finalize"},
			NameValidation: apimachineryvalidation.ValidateNamespaceName, ReturnDeletedObject: true, NoDeleteCollection: true,
			SelectableFields: namespaceFields, PrepareForCreate: prepareNamespace, PrepareForUpdate: prepareNamespaceUpdate,
			Table: namespaceTable()},
		{GVR: coreV1.WithResource("nodes"), Kind: "Node", Singular: "node",
			ShortNames: []string{"no"}, Subresources: []string{"status"}, NameValidation: subdomain,
			KeepStatusOnCreate: true, SelectableFields: nodeFields, Table: nodeTable()},
		{GVR: coreV1.WithResource("pods"), Kind: "Pod", Singular: "pod", Namespaced: true,
			ShortNames: []string{"po"}, Categories: all,
			Subresources:   []string{"status", "binding", "eviction", "log", "exec", "attach", "portforward"},
			NameValidation: subdomain, Generation: true, ReturnDeletedObject: true,
			SelectableFields: podFields, PrepareForCreate: preparePod, PrepareForUpdate: preparePodUpdate,
			Validate: validatePod, Table: podTable()},
		{GVR: coreV1.WithResource("secrets"), Kind: "Secret", Singular: "secret", Namespaced: true,
			NameValidation: subdomain, SelectableFields: secretFields, PrepareForCreate: prepareSecret, Validate: validateSecret,
			PrepareForUpdate: func(obj, _ runtime.Object) { prepareSecret(obj) }, Table: secretTable()},
		{GVR: coreV1.WithResource("serviceaccounts"), Kind: "ServiceAccount", Singular: "serviceaccount", Namespaced: true,
			ShortNames: []string{"sa"}, Subresources: []string{"token"}, NameValidation: subdomain, Table: serviceAccountTable()},
		{GVR: coreV1.WithResource("services"), Kind: "Service", Singular: "service", Namespaced: true,
			ShortNames: []string{"svc"}, Categories: all, Subresources: []string{"status"},
			NameValidation: apimachineryvalidation.NameIsDNS1035Label, ReturnDeletedObject: true, SelectableFields: serviceFields,
			PrepareForCreate: prepareService, PrepareForUpdate: prepareServiceUpdate, Validate: validateService,
			Admit: g.AllocateService, Released: g.ReleaseService, Table: serviceTable()},
	}
}
