package plugins

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// ErrReasonTooManyPods is the reason for a node at its pods allocatable.
const ErrReasonTooManyPods = "Too many pods"

// InsufficientReason is upstream's reason for a resource that does not fit.
func InsufficientReason(name corev1.ResourceName) string {
	return fmt.Sprintf("Insufficient %v", name)
}

// NodeResourcesFit rejects nodes whose allocatable minus the requests of
// the pods on them cannot hold the pod's requests (cpu, memory,
// ephemeral-storage, extended resources, and the pods count), and scores
// nodes by the fraction of cpu and memory left free (least allocated).
type NodeResourcesFit struct{}

var (
	_ framework.FilterPlugin = NodeResourcesFit{}
	_ framework.ScorePlugin  = NodeResourcesFit{}
)

// Name implements framework.Plugin.
func (NodeResourcesFit) Name() string { return NodeResourcesFitName }

// Filter implements framework.FilterPlugin. All insufficient resources are
// reported, pods count first; when the request exceeds the node's whole
// allocatable the status is UnschedulableAndUnresolvable, since evicting
// pods could not help.
func (NodeResourcesFit) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) *framework.Status {
	req := state.PodInfo(pod).Requests
	var reasons []string
	unresolvable := false
	if int64(len(n.Pods))+1 > n.Allocatable.Pods {
		reasons = append(reasons, ErrReasonTooManyPods)
	}
	check := func(name corev1.ResourceName, want, alloc, used int64) {
		if want > 0 && want > alloc-used {
			reasons = append(reasons, InsufficientReason(name))
			if want > alloc {
				unresolvable = true
			}
		}
	}
	check(corev1.ResourceCPU, req.MilliCPU, n.Allocatable.MilliCPU, n.Requested.MilliCPU)
	check(corev1.ResourceMemory, req.Memory, n.Allocatable.Memory, n.Requested.Memory)
	check(corev1.ResourceEphemeralStorage, req.EphemeralStorage, n.Allocatable.EphemeralStorage, n.Requested.EphemeralStorage)
	if len(req.Scalar) > 0 {
		names := make([]string, 0, len(req.Scalar))
		for name := range req.Scalar {
			names = append(names, string(name))
		}
		sort.Strings(names)
		for _, name := range names {
			rn := corev1.ResourceName(name)
			check(rn, req.Scalar[rn], n.Allocatable.Scalar[rn], n.Requested.Scalar[rn])
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	if unresolvable {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reasons...)
	}
	return framework.NewStatus(framework.Unschedulable, reasons...)
}

// Score implements framework.ScorePlugin: the mean over cpu and memory of
// (allocatable - requested) * 100 / allocatable, counting the pod itself
// and default requests for containers that request nothing.
func (NodeResourcesFit) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	pi := state.PodInfo(pod)
	cpu := leastAllocated(n.NonZeroRequested.MilliCPU+pi.NonZeroMilliCPU, n.Allocatable.MilliCPU)
	mem := leastAllocated(n.NonZeroRequested.Memory+pi.NonZeroMemory, n.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}
