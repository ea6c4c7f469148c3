package apiserver

import (
	"fmt"
	"net"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

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

var (
	endpointPortProtocols = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}
	sliceAddressTypes     = []string{string(discoveryv1.AddressTypeFQDN), string(discoveryv1.AddressTypeIPv4), string(discoveryv1.AddressTypeIPv6)}
)

// ownAddress is the address the `kubernetes` Service's Endpoints and
// EndpointSlice in default may carry although it is loopback: a
// single-host cluster (and every test) advertises 127.0.0.1, which
// upstream's kube-apiserver refuses to write. Other objects get
// upstream's rules.
func (s *Server) ownAddress(obj runtime.Object) string {
	m := accessor(obj)
	if !s.cfg.AdvertiseAddress.IsValid() || m.GetNamespace() != metav1.NamespaceDefault || m.GetName() != "kubernetes" {
		return ""
	}
	return s.cfg.AdvertiseAddress.String()
}

func (s *Server) validateEndpoints(obj, old runtime.Object) field.ErrorList {
	return validateEndpoints(obj, old, s.ownAddress(obj))
}

func (s *Server) validateEndpointSlice(obj, old runtime.Object) field.ErrorList {
	return validateEndpointSlice(obj, old, s.ownAddress(obj))
}

// validateEndpoints is upstream's ValidateEndpointsCreate/Update for
// core/v1 Endpoints. IPs the old object already had are not re-checked
// against the stricter IP rules, as upstream ratchets them. exempt ("" for
// none) passes the endpoint IP checks.
func validateEndpoints(obj, old runtime.Object, exempt string) field.ErrorList {
	ep := obj.(*corev1.Endpoints)
	var oldIPs []string
	if old != nil {
		for _, ss := range old.(*corev1.Endpoints).Subsets {
			for _, a := range slices.Concat(ss.Addresses, ss.NotReadyAddresses) {
				oldIPs = append(oldIPs, a.IP)
			}
		}
	}
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		idxPath := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(idxPath, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], idxPath.Child("addresses").Index(j), oldIPs, exempt)...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], idxPath.Child("notReadyAddresses").Index(j), oldIPs, exempt)...)
		}
		for j := range ss.Ports {
			errs = append(errs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, idxPath.Child("ports").Index(j))...)
		}
	}
	return errs
}

func validateEndpointAddress(address *corev1.EndpointAddress, path *field.Path, oldIPs []string, exempt string) field.ErrorList {
	ipPath := path.Child("ip")
	errs := validation.IsValidIPForLegacyField(ipPath, address.IP, true, oldIPs)
	if address.Hostname != "" {
		errs = append(errs, fieldvalidation.DNS1123Label(address.Hostname, path.Child("hostname"))...)
	}
	if address.NodeName != nil {
		errs = append(errs, fieldvalidation.NodeName(*address.NodeName, path.Child("nodeName"))...)
	}
	if len(errs) > 0 || address.IP == exempt {
		return errs
	}
	return validateEndpointIP(address.IP, ipPath)
}

func validateEndpointPort(port *corev1.EndpointPort, requireName bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && port.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else if port.Name != "" {
		errs = append(errs, fieldvalidation.DNS1123Label(port.Name, path.Child("name"))...)
	}
	for _, msg := range validation.IsValidPortNum(int(port.Port)) {
		errs = append(errs, field.Invalid(path.Child("port"), port.Port, msg))
	}
	errs = append(errs, validateEndpointProtocol(string(port.Protocol), path.Child("protocol"))...)
	if port.AppProtocol != nil {
		errs = append(errs, fieldvalidation.QualifiedName(*port.AppProtocol, path.Child("appProtocol"))...)
	}
	return errs
}

func validateEndpointProtocol(protocol string, path *field.Path) field.ErrorList {
	switch {
	case protocol == "":
		return field.ErrorList{field.Required(path, "")}
	case !slices.Contains(endpointPortProtocols, protocol):
		return field.ErrorList{field.NotSupported(path, protocol, endpointPortProtocols)}
	}
	return nil
}

// validateEndpointIP is upstream's ValidateEndpointIP: endpoints may not
// be unspecified, loopback or link-local addresses, which are nonsensical
// as endpoints or used for node-centric purposes (metadata services).
func validateEndpointIP(address string, path *field.Path) field.ErrorList {
	ip := netutils.ParseIPSloppy(address)
	if ip == nil {
		return field.ErrorList{field.Invalid(path, address, "must be a valid IP address")}
	}
	var errs field.ErrorList
	if ip.IsUnspecified() {
		errs = append(errs, field.Invalid(path, address, fmt.Sprintf("may not be unspecified (%v)", address)))
	}
	if ip.IsLoopback() {
		errs = append(errs, field.Invalid(path, address, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(path, address, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(path, address, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
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
		return append(errs, validateEndpointIP(address, path)...)
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
		} else if !slices.Contains(endpointPortProtocols, string(*port.Protocol)) {
			errs = append(errs, field.NotSupported(idxPath.Child("protocol"), *port.Protocol, endpointPortProtocols))
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

// endpointsWarnings is upstream's endpointsWarnings: IPs that are valid
// but not in canonical form.
func endpointsWarnings(obj, _ runtime.Object) []string {
	var warnings []string
	for i, ss := range obj.(*corev1.Endpoints).Subsets {
		path := field.NewPath("subsets").Index(i)
		for j, a := range ss.Addresses {
			warnings = append(warnings, validation.GetWarningsForIP(path.Child("addresses").Index(j).Child("ip"), a.IP)...)
		}
		for j, a := range ss.NotReadyAddresses {
			warnings = append(warnings, validation.GetWarningsForIP(path.Child("notReadyAddresses").Index(j).Child("ip"), a.IP)...)
		}
	}
	return warnings
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
