package framework

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
)

// MaxNodeScore is the highest score a score plugin may give after
// normalization.
const MaxNodeScore int64 = 100

// Plugin is the base of every plugin.
type Plugin interface {
	// Name is the plugin's name as written in profiles and in statuses.
	Name() string
}

// PreFilterPlugin computes per-pod state once per cycle, before the
// filters run on each node.
type PreFilterPlugin interface {
	Plugin
	// PreFilter may write into state; a non-success status rejects the pod
	// on every node (Skip means the plugin's Filter is not needed).
	PreFilter(ctx context.Context, state *CycleState, pod *corev1.Pod) *Status
}

// FilterPlugin decides whether a pod may run on a node.
type FilterPlugin interface {
	Plugin
	// Filter must not change node and must be safe to call for many
	// nodes in a row; it returns nil when the pod fits, and
	// Unschedulable or UnschedulableAndUnresolvable with the user-facing
	// reasons otherwise.
	Filter(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status
}

// PreScorePlugin computes per-pod state once before scoring.
type PreScorePlugin interface {
	Plugin
	// PreScore sees the nodes that passed the filters. Skip means the
	// plugin's Score is not called this cycle.
	PreScore(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks feasible nodes.
type ScorePlugin interface {
	Plugin
	// Score returns a raw score for node; if the plugin also implements
	// ScoreNormalizer the raw scores are normalized to [0, MaxNodeScore],
	// otherwise they must already be in that range.
	Score(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) (int64, *Status)
}

// ScoreNormalizer rescales the raw scores of all feasible nodes in place.
type ScoreNormalizer interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *corev1.Pod, scores []NodeScore) *Status
}

// NodeScore is the score of one node.
type NodeScore struct {
	Name  string
	Score int64
}

// Handle is what plugins may use from the scheduler.
type Handle interface {
	// Informers is the scheduler's shared informer factory; plugins that
	// need listers (Services, ReplicaSets) take them from it before the
	// factory is started.
	Informers() informers.SharedInformerFactory
}

// Factory builds a plugin.
type Factory func(h Handle) (Plugin, error)

// Registry maps plugin names to factories. It is a value: build one with
// the plugins you want (plugins.NewRegistry gives the in-tree ones).
type Registry map[string]Factory

// CycleState carries data between the extension points of one scheduling
// cycle for one pod. It is used by one goroutine at a time.
type CycleState struct {
	data    map[StateKey]any
	podInfo *PodInfo
}

// PodInfo returns the derived info of pod, computed once per cycle. A nil
// state computes it afresh.
func (c *CycleState) PodInfo(pod *corev1.Pod) *PodInfo {
	if c == nil {
		return NewPodInfo(pod)
	}
	if c.podInfo == nil || c.podInfo.Pod != pod {
		c.podInfo = NewPodInfo(pod)
	}
	return c.podInfo
}

// StateKey names an entry in CycleState; plugins use their own name.
type StateKey string

// NewCycleState returns an empty state.
func NewCycleState() *CycleState { return &CycleState{data: map[StateKey]any{}} }

// Write stores v under k.
func (c *CycleState) Write(k StateKey, v any) { c.data[k] = v }

// Read returns the value under k, or nil.
func (c *CycleState) Read(k StateKey) any { return c.data[k] }

// DefaultNormalizeScore rescales scores so the highest is maxPriority;
// with reverse, the highest raw score gets 0 and the lowest maxPriority.
// When all raw scores are 0, reverse gives everyone maxPriority.
func DefaultNormalizeScore(maxPriority int64, reverse bool, scores []NodeScore) {
	var maxCount int64
	for _, s := range scores {
		if s.Score > maxCount {
			maxCount = s.Score
		}
	}
	if maxCount == 0 {
		if reverse {
			for i := range scores {
				scores[i].Score = maxPriority
			}
		}
		return
	}
	for i := range scores {
		s := maxPriority * scores[i].Score / maxCount
		if reverse {
			s = maxPriority - s
		}
		scores[i].Score = s
	}
}
