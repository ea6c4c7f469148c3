package discovery

import (
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/core"
)

var discoveryV1 = schema.GroupVersion{Group: "discovery.k8s.io", Version: "v1"}

// Group serves discovery.k8s.io/v1.
type Group struct{}

// Resources are the EndpointSlices.
func (Group) Resources(cfg registry.Config) []*registry.Resource {
	validate := func(obj, old runtime.Object) field.ErrorList {
		return validateEndpointSlice(obj, old, core.ExemptAddress(cfg, obj))
	}
	return []*registry.Resource{{GVR: discoveryV1.WithResource("endpointslices"), Kind: "EndpointSlice", Singular: "endpointslice", Namespaced: true,
		NameValidation: apimachineryvalidation.NameIsDNSSubdomain, PrepareForCreate: prepareEndpointSlice, PrepareForUpdate: prepareEndpointSliceUpdate,
		Validate: validate, Warnings: endpointSliceWarnings, Table: endpointSliceTable()}}
}
