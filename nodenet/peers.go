package nodenet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// peer is another node as the routes see it.
type peer struct {
	name    string
	podCIDR netip.Prefix
	// ip is the node's InternalIP (host-gw's gateway) or its public-ip
	// annotation (vxlan's remote VTEP), whichever the backend needs.
	ip      netip.Addr
	vtepMAC net.HardwareAddr // vxlan only
}

// nodeView is what nodenet reads of a Node; a Node update that leaves it
// unchanged needs no sync.
type nodeView struct {
	podCIDR    netip.Prefix
	internalIP netip.Addr
	backend    string
	data       string
	publicIP   string
}

func viewOf(n *corev1.Node) nodeView {
	return nodeView{
		podCIDR:    podCIDR(n),
		internalIP: internalIP(n),
		backend:    n.Annotations[AnnotationBackendType],
		data:       n.Annotations[AnnotationBackendData],
		publicIP:   n.Annotations[AnnotationPublicIP],
	}
}

// podCIDR is the node's IPv4 pod range (spec.podCIDRs, else spec.podCIDR);
// invalid when it has none yet.
func podCIDR(n *corev1.Node) netip.Prefix {
	for _, s := range append(slices.Clone(n.Spec.PodCIDRs), n.Spec.PodCIDR) {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
			return p.Masked()
		}
	}
	return netip.Prefix{}
}

// internalIP is the node's first IPv4 InternalIP; invalid when none.
func internalIP(n *corev1.Node) netip.Addr {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip
		}
	}
	return netip.Addr{}
}

// peers returns the other nodes the backend can route to, sorted by name.
// Nodes it cannot route to yet (no podCIDR, no address, no VTEP) are left
// out, with one log line each time the reason changes.
func (n *NodeNet) peers(ctx context.Context, nodes []*corev1.Node, own netip.Prefix) []peer {
	logger := klog.FromContext(ctx).WithName("nodenet")
	var peers []peer
	for _, node := range nodes {
		if node.Name == n.cfg.NodeName {
			continue
		}
		p, reason := n.peerOf(node, own)
		if reason != "" {
			if n.warn(node.Name, reason) {
				logger.Info("Not routing to a node's pods", "node", node.Name, "reason", reason)
			}
			continue
		}
		peers = append(peers, p)
	}
	slices.SortFunc(peers, func(a, b peer) int { return strings.Compare(a.name, b.name) })
	return peers
}

// peerOf reads node as a peer, or says why it cannot be one.
func (n *NodeNet) peerOf(node *corev1.Node, own netip.Prefix) (peer, string) {
	p := peer{name: node.Name, podCIDR: podCIDR(node)}
	if !p.podCIDR.IsValid() {
		return p, "no podCIDR yet"
	}
	if own.IsValid() && p.podCIDR.Overlaps(own) {
		return p, fmt.Sprintf("its podCIDR %s overlaps this node's %s", p.podCIDR, own)
	}
	if n.cfg.Backend == HostGW {
		if p.ip = internalIP(node); !p.ip.IsValid() {
			return p, "no IPv4 InternalIP"
		}
		if p.ip == n.cfg.NodeIP {
			return p, fmt.Sprintf("its InternalIP %s is this node's", p.ip)
		}
		return p, ""
	}
	if t := node.Annotations[AnnotationBackendType]; t != string(VXLAN) {
		return p, fmt.Sprintf("its backend is %q, not %q (annotation %s)", t, VXLAN, AnnotationBackendType)
	}
	var data BackendData
	if err := json.Unmarshal([]byte(node.Annotations[AnnotationBackendData]), &data); err != nil {
		return p, fmt.Sprintf("annotation %s: %v", AnnotationBackendData, err)
	}
	if data.VNI != vxlanVNI {
		return p, fmt.Sprintf("its VNI is %d, not %d", data.VNI, vxlanVNI)
	}
	mac, err := net.ParseMAC(data.VtepMAC)
	if err != nil {
		return p, fmt.Sprintf("annotation %s: %v", AnnotationBackendData, err)
	}
	p.vtepMAC = mac
	ip, err := netip.ParseAddr(node.Annotations[AnnotationPublicIP])
	if err != nil || !ip.Is4() {
		return p, fmt.Sprintf("annotation %s: not an IPv4 address: %q", AnnotationPublicIP, node.Annotations[AnnotationPublicIP])
	}
	if ip == n.cfg.NodeIP {
		return p, fmt.Sprintf("its %s %s is this node's", AnnotationPublicIP, ip)
	}
	p.ip = ip
	return p, ""
}

// warn records that node has the problem reason in this sync, and reports
// whether it is new: each problem is logged once, not on every sync.
func (n *NodeNet) warn(node, reason string) bool {
	n.warnings[node] = reason
	return n.warned[node] != reason
}
