package plugins

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// SelectorSpread spreads the pods of one controller (ReplicaSet,
// StatefulSet, ...) and of one Service over nodes: a node scores higher the
// fewer such pods it already has (bound or assumed), as upstream's
// default spreading does per hostname.
type SelectorSpread struct {
	services corelisters.ServiceLister
}

var (
	_ framework.PreScorePlugin  = (*SelectorSpread)(nil)
	_ framework.ScorePlugin     = (*SelectorSpread)(nil)
	_ framework.ScoreNormalizer = (*SelectorSpread)(nil)
)

// NewSelectorSpread is the plugin's factory; it takes the Service lister
// from the handle's informers when there are any.
func NewSelectorSpread(h framework.Handle) (framework.Plugin, error) {
	p := &SelectorSpread{}
	if h != nil && h.Informers() != nil {
		p.services = h.Informers().Core().V1().Services().Lister()
	}
	return p, nil
}

// Name implements framework.Plugin.
func (*SelectorSpread) Name() string { return SelectorSpreadName }

const selectorSpreadKey framework.StateKey = SelectorSpreadName

type spreadState struct {
	owner     types.UID
	selectors []labels.Selector
}

// PreScore finds the pod's controller and the Services selecting it; pods
// with neither are skipped.
func (p *SelectorSpread) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	s := &spreadState{owner: state.PodInfo(pod).Owner}
	if p.services != nil && len(pod.Labels) > 0 {
		svcs, err := p.services.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return framework.AsStatus(err)
		}
		for _, svc := range svcs {
			if len(svc.Spec.Selector) == 0 {
				continue
			}
			sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
			if sel.Matches(labels.Set(pod.Labels)) {
				s.selectors = append(s.selectors, sel)
			}
		}
	}
	if s.owner == "" && len(s.selectors) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(selectorSpreadKey, s)
	return nil
}

// Score counts the node's pods that share the pod's controller or match one
// of its Services.
func (p *SelectorSpread) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(selectorSpreadKey).(*spreadState)
	if s == nil {
		return 0, nil
	}
	if len(s.selectors) == 0 {
		return int64(n.OwnerCounts[s.owner]), nil
	}
	var count int64
	for _, pi := range n.Pods {
		other := pi.Pod
		if other.Namespace != pod.Namespace || other.DeletionTimestamp != nil {
			continue
		}
		if s.owner != "" && pi.Owner == s.owner {
			count++
			continue
		}
		for _, sel := range s.selectors {
			if sel.Matches(labels.Set(other.Labels)) {
				count++
				break
			}
		}
	}
	return count, nil
}

// NormalizeScore implements framework.ScoreNormalizer: fewer matching pods
// score higher.
func (p *SelectorSpread) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	framework.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
	return nil
}
