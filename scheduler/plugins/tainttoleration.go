package plugins

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// TaintToleration filters out nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate, and scores nodes lower the more PreferNoSchedule
// taints the pod does not tolerate.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin    = TaintToleration{}
	_ framework.ScorePlugin     = TaintToleration{}
	_ framework.ScoreNormalizer = TaintToleration{}
)

// Name implements framework.Plugin.
func (TaintToleration) Name() string { return TaintTolerationName }

func tolerates(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(klog.Background(), taint, false) {
			return true
		}
	}
	return false
}

// ErrReasonUntoleratedTaint is upstream's reason for a node with a taint the
// pod does not tolerate. Current upstream no longer names the taint in the
// message (older releases printed "{key: value}"), so taint values do not leak
// into pod status; the taint is logged at V(4).
const ErrReasonUntoleratedTaint = "node(s) had untolerated taint(s)"

func untolerated(ctx context.Context, pod *corev1.Pod, n *framework.NodeInfo, t corev1.Taint) *framework.Status {
	klog.FromContext(ctx).V(4).Info("node had untolerated taints", "node", klog.KObj(n.Node), "pod", klog.KObj(pod), "untoleratedTaint", t)
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonUntoleratedTaint)
}

// Filter implements framework.FilterPlugin.
func (TaintToleration) Filter(ctx context.Context, _ *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) *framework.Status {
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(pod.Spec.Tolerations, t) {
			return untolerated(ctx, pod, n, *t)
		}
	}
	return nil
}

// Score implements framework.ScorePlugin: the number of PreferNoSchedule
// taints not tolerated by the pod's PreferNoSchedule (or effect-less)
// tolerations.
func (TaintToleration) Score(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	var tols []corev1.Toleration
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	var count int64
	for i := range n.Node.Spec.Taints {
		t := &n.Node.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerates(tols, t) {
			count++
		}
	}
	return count, nil
}

// NormalizeScore implements framework.ScoreNormalizer: fewer intolerable
// taints score higher.
func (TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	framework.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
	return nil
}
