package kubelet

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// nodeHostsFile is the node's hosts file, the base of host-network pods'.
const nodeHostsFile = "/etc/hosts"

// podHostsFile is the pod's /etc/hosts as upstream's kubelet writes it:
// for a host-network pod the node's file, otherwise localhost entries and
// the pod's own name (its FQDN too when it has a subdomain); then the
// pod's hostAliases.
func podHostsFile(pod *corev1.Pod, podIPs []netip.Addr, clusterDomain, nodeHosts string) ([]byte, error) {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		data, err := os.ReadFile(nodeHosts)
		if err != nil {
			return nil, err
		}
		b.WriteString("# Kubernetes-managed hosts file (host network).\n")
		b.Write(data)
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n")
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::\tip6-localnet\n")
		b.WriteString("fe00::\tip6-mcastprefix\n")
		b.WriteString("fe00::1\tip6-allnodes\n")
		b.WriteString("fe00::2\tip6-allrouters\n")
		name, domain := podHostname(pod), podDomain(pod, clusterDomain)
		for _, ip := range podIPs {
			if domain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, name, domain, name)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, name)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, ha := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
		}
	}
	return b.Bytes(), nil
}

// podDomain is SUBDOMAIN.NAMESPACE.svc.CLUSTER_DOMAIN for a pod with a
// subdomain, else empty.
func podDomain(pod *corev1.Pod, clusterDomain string) string {
	if pod.Spec.Subdomain == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, clusterDomain)
}
