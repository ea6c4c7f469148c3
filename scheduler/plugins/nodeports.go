package plugins

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// ErrReasonNodePorts is the reason for a host port conflict.
const ErrReasonNodePorts = "node(s) didn't have free ports for the requested pod ports"

// NodePorts rejects nodes where a host port the pod asks for is taken.
type NodePorts struct{}

var _ framework.FilterPlugin = NodePorts{}

// Name implements framework.Plugin.
func (NodePorts) Name() string { return NodePortsName }

// Filter implements framework.FilterPlugin.
func (NodePorts) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) *framework.Status {
	for _, hp := range state.PodInfo(pod).HostPorts {
		if n.PortInUse(hp) {
			return framework.NewStatus(framework.Unschedulable, ErrReasonNodePorts)
		}
	}
	return nil
}
