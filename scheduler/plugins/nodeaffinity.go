package plugins

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// ErrReasonNodeAffinity is the reason for a node that fails the pod's
// nodeSelector or required node affinity.
const ErrReasonNodeAffinity = "node(s) didn't match Pod's node affinity/selector"

// NodeAffinity filters on spec.nodeSelector and required node affinity, and
// scores the sum of the weights of the preferred terms a node matches.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin = NodeAffinity{}
	_ framework.FilterPlugin    = NodeAffinity{}
	_ framework.PreScorePlugin  = NodeAffinity{}
	_ framework.ScorePlugin     = NodeAffinity{}
	_ framework.ScoreNormalizer = NodeAffinity{}
)

const (
	nodeAffinityFilterKey framework.StateKey = NodeAffinityName + "/filter"
	nodeAffinityScoreKey  framework.StateKey = NodeAffinityName + "/score"
)

// Name implements framework.Plugin.
func (NodeAffinity) Name() string { return NodeAffinityName }

// PreFilter parses the pod's selector once.
func (NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	state.Write(nodeAffinityFilterKey, &required)
	return nil
}

// Filter implements framework.FilterPlugin.
func (NodeAffinity) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) *framework.Status {
	required, _ := state.Read(nodeAffinityFilterKey).(*nodeaffinity.RequiredNodeAffinity)
	if required == nil {
		r := nodeaffinity.GetRequiredNodeAffinity(pod)
		required = &r
	}
	// A parse error counts as no match, as upstream does.
	if ok, _ := required.Match(n.Node); !ok {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeAffinity)
	}
	return nil
}

// PreScore parses the preferred terms, or skips pods without any.
func (NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return framework.AsStatus(err)
	}
	state.Write(nodeAffinityScoreKey, terms)
	return nil
}

// Score implements framework.ScorePlugin.
func (NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *corev1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	terms, _ := state.Read(nodeAffinityScoreKey).(*nodeaffinity.PreferredSchedulingTerms)
	if terms == nil {
		return 0, nil
	}
	return terms.Score(n.Node), nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	framework.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
	return nil
}
