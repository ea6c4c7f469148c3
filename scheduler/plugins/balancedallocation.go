package plugins

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// BalancedAllocation favours nodes where, with the pod placed, the
// requested fractions of cpu and memory are close to each other. Pods that
// request neither are skipped, as upstream does.
type BalancedAllocation struct{}

var (
	_ framework.PreScorePlugin = BalancedAllocation{}
	_ framework.ScorePlugin    = BalancedAllocation{}
)

// Name implements framework.Plugin.
func (BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore implements framework.PreScorePlugin.
func (BalancedAllocation) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	r := state.PodInfo(pod).Requests
	if r.MilliCPU == 0 && r.Memory == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Score implements framework.ScorePlugin: (1 - standard deviation of the
// fractions) * 100.
func (BalancedAllocation) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, n *framework.NodeInfo) (int64, *framework.Status) {
	r := state.PodInfo(pod).Requests
	var fractions []float64
	add := func(requested, capacity int64) {
		if capacity <= 0 {
			return
		}
		f := float64(requested) / float64(capacity)
		if f > 1 {
			f = 1
		}
		fractions = append(fractions, f)
	}
	add(n.Requested.MilliCPU+r.MilliCPU, n.Allocatable.MilliCPU)
	add(n.Requested.Memory+r.Memory, n.Allocatable.Memory)
	var std float64
	switch len(fractions) {
	case 2:
		std = math.Abs(fractions[0]-fractions[1]) / 2
	case 0, 1:
		std = 0
	}
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}
