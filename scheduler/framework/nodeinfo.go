package framework

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Requests a pod without cpu or memory requests counts as for scoring, so
// that many such pods do not all pile up on one node (upstream's values).
const (
	DefaultMilliCPURequest int64 = 100
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// Resource is an amount of each schedulable resource.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// Pods is the number of pods (allocatable: how many may run).
	Pods int64
	// Scalar holds extended resources (example.com/gpu, hugepages-2Mi).
	Scalar map[corev1.ResourceName]int64
}

// NewResource sums a resource list.
func NewResource(rl corev1.ResourceList) Resource {
	var r Resource
	r.AddList(rl)
	return r
}

// AddList adds a resource list.
func (r *Resource) AddList(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case corev1.ResourcePods:
			r.Pods += q.Value()
		default:
			if IsScalarResourceName(name) {
				if r.Scalar == nil {
					r.Scalar = map[corev1.ResourceName]int64{}
				}
				r.Scalar[name] += q.Value()
			}
		}
	}
}

// Add adds o to r, scaled by sign (+1 or -1).
func (r *Resource) Add(o Resource, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.EphemeralStorage += sign * o.EphemeralStorage
	r.Pods += sign * o.Pods
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[corev1.ResourceName]int64{}
		}
		r.Scalar[name] += sign * v
	}
}

// IsScalarResourceName reports whether name is an extended resource
// (domain-qualified outside kubernetes.io), a hugepages size, or an
// attachable-volumes count: the resources upstream fits by plain counting.
func IsScalarResourceName(name corev1.ResourceName) bool {
	s := string(name)
	if strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) || strings.HasPrefix(s, "attachable-volumes-") {
		return true
	}
	if !strings.Contains(s, "/") {
		return false
	}
	return !strings.Contains(s, "kubernetes.io/") || strings.HasPrefix(s, "requests.")
}

// HostPort is one host port a pod asks for.
type HostPort struct {
	IP       string // "0.0.0.0" when unset
	Protocol corev1.Protocol
	Port     int32
}

// DefaultBindAllHostIP is the host IP that conflicts with every other IP.
const DefaultBindAllHostIP = "0.0.0.0"

// PodInfo is a pod with what the scheduler derives from it once: its
// requests, its host ports and its controller.
type PodInfo struct {
	Pod *corev1.Pod
	// Requests are the pod's effective requests (init containers,
	// sidecars and overhead included), with Pods = 1.
	Requests Resource
	// NonZeroMilliCPU and NonZeroMemory are the requests used for
	// scoring, with defaults for containers that request nothing.
	NonZeroMilliCPU int64
	NonZeroMemory   int64
	HostPorts       []HostPort
	// Owner is the UID of the pod's controller (ReplicaSet, StatefulSet,
	// ...), empty when it has none.
	Owner types.UID
}

// NewPodInfo computes the derived fields of pod.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	pi.Requests = NewResource(reqs)
	pi.Requests.Pods = 1
	nonZero := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: corev1.ResourceList{
			corev1.ResourceCPU:    *resourceMilli(DefaultMilliCPURequest),
			corev1.ResourceMemory: *resourceBytes(DefaultMemoryRequest),
		},
	})
	pi.NonZeroMilliCPU = nonZero.Cpu().MilliValue()
	pi.NonZeroMemory = nonZero.Memory().Value()
	pi.HostPorts = podHostPorts(pod)
	if ref := metav1.GetControllerOf(pod); ref != nil {
		pi.Owner = ref.UID
	}
	return pi
}

func podHostPorts(pod *corev1.Pod) []HostPort {
	var ports []HostPort
	add := func(cs []corev1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
				if hp.IP == "" {
					hp.IP = DefaultBindAllHostIP
				}
				if hp.Protocol == "" {
					hp.Protocol = corev1.ProtocolTCP
				}
				ports = append(ports, hp)
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return ports
}

type protoPort struct {
	Protocol corev1.Protocol
	Port     int32
}

// NodeInfo is a node and the pods the scheduler counts on it (bound and
// assumed). Plugins read it; only the scheduler's cache writes it.
type NodeInfo struct {
	Node *corev1.Node
	// Pods are keyed by UID.
	Pods map[types.UID]*PodInfo
	// Allocatable is status.allocatable.
	Allocatable Resource
	// Requested is the sum of the pods' requests.
	Requested Resource
	// NonZeroRequested sums cpu and memory with scoring defaults.
	NonZeroRequested Resource
	// OwnerCounts counts pods per controller UID.
	OwnerCounts map[types.UID]int
	usedPorts   map[protoPort]map[string]int
}

// NewNodeInfo returns the NodeInfo of an empty node.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	n := &NodeInfo{Pods: map[types.UID]*PodInfo{}, OwnerCounts: map[types.UID]int{}, usedPorts: map[protoPort]map[string]int{}}
	n.SetNode(node)
	return n
}

// SetNode replaces the node object.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.Node = node
	if node != nil {
		n.Allocatable = NewResource(node.Status.Allocatable)
	} else {
		n.Allocatable = Resource{}
	}
}

// Name is the node's name.
func (n *NodeInfo) Name() string {
	if n.Node == nil {
		return ""
	}
	return n.Node.Name
}

// AddPod counts pi on the node.
func (n *NodeInfo) AddPod(pi *PodInfo) {
	if _, ok := n.Pods[pi.Pod.UID]; ok {
		n.RemovePod(pi.Pod.UID)
	}
	n.Pods[pi.Pod.UID] = pi
	n.update(pi, 1)
}

// RemovePod stops counting the pod with uid; it reports whether it was
// counted.
func (n *NodeInfo) RemovePod(uid types.UID) bool {
	pi, ok := n.Pods[uid]
	if !ok {
		return false
	}
	delete(n.Pods, uid)
	n.update(pi, -1)
	return true
}

func (n *NodeInfo) update(pi *PodInfo, sign int64) {
	n.Requested.Add(pi.Requests, sign)
	n.NonZeroRequested.MilliCPU += sign * pi.NonZeroMilliCPU
	n.NonZeroRequested.Memory += sign * pi.NonZeroMemory
	n.NonZeroRequested.Pods += sign
	if pi.Owner != "" {
		n.OwnerCounts[pi.Owner] += int(sign)
		if n.OwnerCounts[pi.Owner] <= 0 {
			delete(n.OwnerCounts, pi.Owner)
		}
	}
	for _, hp := range pi.HostPorts {
		k := protoPort{hp.Protocol, hp.Port}
		ips := n.usedPorts[k]
		if ips == nil {
			ips = map[string]int{}
			n.usedPorts[k] = ips
		}
		ips[hp.IP] += int(sign)
		if ips[hp.IP] <= 0 {
			delete(ips, hp.IP)
		}
		if len(ips) == 0 {
			delete(n.usedPorts, k)
		}
	}
}

// PortInUse reports whether hp conflicts with a host port already used on
// the node: same protocol and port, and the same IP or either side binding
// 0.0.0.0.
func (n *NodeInfo) PortInUse(hp HostPort) bool {
	ips := n.usedPorts[protoPort{hp.Protocol, hp.Port}]
	if len(ips) == 0 {
		return false
	}
	if hp.IP == DefaultBindAllHostIP {
		return true
	}
	return ips[hp.IP] > 0 || ips[DefaultBindAllHostIP] > 0
}

// Clone returns a copy that can be changed without touching n (the pods
// themselves are shared).
func (n *NodeInfo) Clone() *NodeInfo {
	c := NewNodeInfo(n.Node)
	for _, pi := range n.Pods {
		c.AddPod(pi)
	}
	return c
}
