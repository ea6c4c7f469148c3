package discovery

import (
	"net"
	"reflect"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry/core"
	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

// Upstream's limits for EndpointSlices (pkg/apis/discovery/validation).
const (
	maxSliceEndpoints     = 1000
	maxEndpointAddresses  = 100
	maxSlicePorts         = 20000
	maxDeprecatedTopology = 16
	maxEndpointZoneHints  = 8
	maxEndpointNodeHints  = 8
)

var sliceAddressTypes = []string{string(discoveryv1.AddressTypeFQDN), string(discoveryv1.AddressTypeIPv4), string(discoveryv1.AddressTypeIPv6)}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addressType discoveryv1.AddressType, path *field.Path, exempt string) field.ErrorList {
	if len(endpoints) > maxSliceEndpoints {
		return field.ErrorList{field.TooMany(path, len(endpoints), maxSliceEndpoints)}
	}
	var errs field.ErrorList
	for i, endpoint := range endpoints {
		idxPath := path.Index(i)
		addressPath := idxPath.Child("addresses")
		if len(endpoint.Addresses) == 0 {
			errs = append(errs, field.Required(addressPath, "must contain at least 1 address"))
		} else if len(endpoint.Addresses) > maxEndpointAddresses {
			errs = append(errs, field.TooMany(addressPath, len(endpoint.Addresses), maxEndpointAddresses))
		}
		for j, address := range endpoint.Addresses {
			if address != exempt {
				errs = append(errs, validateSliceAddress(address, addressType, addressPath.Index(j))...)
			}
		}
		if endpoint.NodeName != nil {
			errs = append(errs, fieldvalidation.NodeName(*endpoint.NodeName, idxPath.Child("nodeName"))...)
		}
		topologyPath := idxPath.Child("deprecatedTopology")
		if len(endpoint.DeprecatedTopology) > maxDeprecatedTopology {
			errs = append(errs, field.TooMany(topologyPath, len(endpoint.DeprecatedTopology), maxDeprecatedTopology))
		}
		errs = append(errs, metavalidation.ValidateLabels(endpoint.DeprecatedTopology, topologyPath)...)
		if endpoint.Hostname != nil {
			errs = append(errs, fieldvalidation.DNS1123Label(*endpoint.Hostname, idxPath.Child("hostname"))...)
		}
		if endpoint.Hints != nil {
			errs = append(errs, validateEndpointHints(endpoint.Hints, idxPath.Child("hints"))...)
		}
	}
	return errs
}

// validateSliceAddress checks one address by the slice's addressType;
// unknown types were refused already and are not checked further.
func validateSliceAddress(address string, addressType discoveryv1.AddressType, path *field.Path) field.ErrorList {
	switch addressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validation.IsValidIPForLegacyField(path, address, true, nil); len(errs) > 0 {
			return errs
		}
		var errs field.ErrorList
		isIPv4 := net.ParseIP(address).To4() != nil
		if addressType == discoveryv1.AddressTypeIPv4 && !isIPv4 {
			errs = append(errs, field.Invalid(path, address, "must be an IPv4 address"))
		}
		if addressType == discoveryv1.AddressTypeIPv6 && isIPv4 {
			errs = append(errs, field.Invalid(path, address, "must be an IPv6 address"))
		}
		return append(errs, core.ValidateEndpointIP(address, path)...)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(path, address)
	}
	return nil
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, path *field.Path) field.ErrorList {
	if len(ports) > maxSlicePorts {
		return field.ErrorList{field.TooMany(path, len(ports), maxSlicePorts)}
	}
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range ports {
		idxPath := path.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			errs = append(errs, fieldvalidation.DNS1123Label(name, idxPath.Child("name"))...)
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(idxPath.Child("name"), name))
		}
		names.Insert(name)
		if port.Protocol == nil {
			errs = append(errs, field.Required(idxPath.Child("protocol"), ""))
		} else if !slices.Contains(core.EndpointPortProtocols, string(*port.Protocol)) {
			errs = append(errs, field.NotSupported(idxPath.Child("protocol"), *port.Protocol, core.EndpointPortProtocols))
		}
		if port.AppProtocol != nil {
			errs = append(errs, fieldvalidation.QualifiedName(*port.AppProtocol, idxPath.Child("appProtocol"))...)
		}
	}
	return errs
}

func validateEndpointHints(hints *discoveryv1.EndpointHints, path *field.Path) field.ErrorList {
	zones := make([]string, len(hints.ForZones))
	for i, z := range hints.ForZones {
		zones[i] = z.Name
	}
	nodes := make([]string, len(hints.ForNodes))
	for i, n := range hints.ForNodes {
		nodes[i] = n.Name
	}
	errs := validateHintNames(zones, maxEndpointZoneHints, path.Child("forZones"), func(name string, path *field.Path) field.ErrorList {
		var errs field.ErrorList
		for _, msg := range validation.IsValidLabelValue(name) {
			errs = append(errs, field.Invalid(path, name, msg))
		}
		return errs
	})
	return append(errs, validateHintNames(nodes, maxEndpointNodeHints, path.Child("forNodes"), fieldvalidation.NodeName)...)
}

// validateHintNames checks the names of zone or node hints: at most limit,
// no duplicates, each valid.
func validateHintNames(names []string, limit int, path *field.Path, validate func(string, *field.Path) field.ErrorList) field.ErrorList {
	if len(names) > limit {
		return field.ErrorList{field.TooMany(path, len(names), limit)}
	}
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, name := range names {
		namePath := path.Index(i).Child("name")
		if seen.Has(name) {
			errs = append(errs, field.Duplicate(namePath, name))
		}
		seen.Insert(name)
		errs = append(errs, validate(name, namePath)...)
	}
	return errs
}

// endpointSliceWarnings is upstream's warnOnBadIPs, which trusts its own
// EndpointSlice controller's slices.
func endpointSliceWarnings(obj, _ runtime.Object) []string {
	slice := obj.(*discoveryv1.EndpointSlice)
	if slice.Labels[discoveryv1.LabelManagedBy] == "endpointslice-controller.k8s.io" ||
		(slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6) {
		return nil
	}
	var warnings []string
	for i, endpoint := range slice.Endpoints {
		for j, address := range endpoint.Addresses {
			warnings = append(warnings, validation.GetWarningsForIP(field.NewPath("endpoints").Index(i).Child("addresses").Index(j), address)...)
		}
	}
	return warnings
}

// validateEndpointSlice is upstream's ValidateEndpointSliceCreate/Update.
// Unchanged endpoints are not re-validated on update, since they may hold
// IPs accepted under older, laxer rules.
func validateEndpointSlice(obj, old runtime.Object, exempt string) field.ErrorList {
	slice := obj.(*discoveryv1.EndpointSlice)
	var errs field.ErrorList
	addressType := string(slice.AddressType)
	switch {
	case addressType == "":
		errs = append(errs, field.Required(field.NewPath("addressType"), ""))
	case !slices.Contains(sliceAddressTypes, addressType):
		errs = append(errs, field.NotSupported(field.NewPath("addressType"), slice.AddressType, sliceAddressTypes))
	}
	errs = append(errs, validateSlicePorts(slice.Ports, field.NewPath("ports"))...)
	var oldSlice *discoveryv1.EndpointSlice
	if old != nil {
		oldSlice = old.(*discoveryv1.EndpointSlice)
	}
	if oldSlice == nil || !reflect.DeepEqual(oldSlice.Endpoints, slice.Endpoints) {
		errs = append(errs, validateSliceEndpoints(slice.Endpoints, slice.AddressType, field.NewPath("endpoints"), exempt)...)
	}
	if oldSlice != nil {
		errs = append(errs, apimachineryvalidation.ValidateImmutableField(slice.AddressType, oldSlice.AddressType, field.NewPath("addressType"))...)
	}
	return errs
}
