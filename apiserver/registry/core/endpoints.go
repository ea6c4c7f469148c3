package core

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

// EndpointPortProtocols are the protocols an endpoint port may name.
var EndpointPortProtocols = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}

// ExemptAddress is the address the `kubernetes` Service's Endpoints and
// EndpointSlice in default may carry although it is loopback: a
// single-host cluster (and every test) advertises 127.0.0.1, which
// upstream's kube-apiserver refuses to write. Other objects get
// upstream's rules.
func ExemptAddress(cfg registry.Config, obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil || !cfg.AdvertiseAddress.IsValid() || m.GetNamespace() != metav1.NamespaceDefault || m.GetName() != "kubernetes" {
		return ""
	}
	return cfg.AdvertiseAddress.String()
}

// ValidateEndpoints is upstream's ValidateEndpointsCreate/Update for
// core/v1 Endpoints. IPs the old object already had are not re-checked
// against the stricter IP rules, as upstream ratchets them. exempt ("" for
// none) passes the endpoint IP checks.
func ValidateEndpoints(obj, old runtime.Object, exempt string) field.ErrorList {
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
	return ValidateEndpointIP(address.IP, ipPath)
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
	case !slices.Contains(EndpointPortProtocols, protocol):
		return field.ErrorList{field.NotSupported(path, protocol, EndpointPortProtocols)}
	}
	return nil
}

// ValidateEndpointIP is upstream's ValidateEndpointIP: endpoints may not
// be unspecified, loopback or link-local addresses, which are nonsensical
// as endpoints or used for node-centric purposes (metadata services).
func ValidateEndpointIP(address string, path *field.Path) field.ErrorList {
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
