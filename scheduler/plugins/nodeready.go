package plugins

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// NodeReady rejects nodes whose Ready condition is not True. Upstream does
// this through the node.kubernetes.io/not-ready and
// node.kubernetes.io/unreachable NoSchedule taints that the node lifecycle
// controller adds; this plugin treats a not-ready node as carrying that
// taint even before any controller has added it, so the reason users see and
// the tolerations that bypass it are the same as upstream's.
type NodeReady struct{}

var _ framework.FilterPlugin = NodeReady{}

// Name implements framework.Plugin.
func (NodeReady) Name() string { return NodeReadyName }

// ImpliedTaint returns the taint the node lifecycle controller would put on
// node for its Ready condition: not-ready for False, unreachable for
// Unknown or missing; ok is false for a Ready node.
func ImpliedTaint(node *corev1.Node) (taint corev1.Taint, ok bool) {
	status := corev1.ConditionUnknown
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			status = c.Status
		}
	}
	switch status {
	case corev1.ConditionTrue:
		return corev1.Taint{}, false
	case corev1.ConditionFalse:
		return corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}, true
	default:
		return corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}, true
	}
}

// Filter implements framework.FilterPlugin.
func (NodeReady) Filter(ctx context.Context, _ *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) *framework.Status {
	taint, ok := ImpliedTaint(n.Node)
	if !ok || tolerates(pod.Spec.Tolerations, &taint) {
		return nil
	}
	return untolerated(ctx, pod, n, taint)
}
