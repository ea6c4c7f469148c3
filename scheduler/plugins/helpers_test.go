package plugins

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
)

// nodeWith returns the NodeInfo of node with pods placed on it.
func nodeWith(node *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo(node)
	for _, p := range pods {
		n.AddPod(framework.NewPodInfo(p))
	}
	return n
}

// filterCase is one row of a filter plugin's table.
type filterCase struct {
	name string
	pod  *corev1.Pod
	node *framework.NodeInfo
	code framework.Code
	// reasons are compared when code is not Success.
	reasons []string
}

func runFilterCases(t *testing.T, p framework.FilterPlugin, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := framework.NewCycleState()
			if pf, ok := p.(framework.PreFilterPlugin); ok {
				if s := pf.PreFilter(context.Background(), state, tc.pod); !s.IsSuccess() {
					t.Fatalf("PreFilter: %v", s)
				}
			}
			got := p.Filter(context.Background(), state, tc.pod, tc.node)
			if got.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", got.Code(), got, tc.code)
			}
			if tc.code != framework.Success && !slices.Equal(got.Reasons(), tc.reasons) {
				t.Fatalf("reasons = %q, want %q", got.Reasons(), tc.reasons)
			}
		})
	}
}

// scoreNodes runs PreScore, Score and NormalizeScore like the framework and
// returns the final score per node name; nil when the plugin skipped.
func scoreNodes(t *testing.T, p framework.ScorePlugin, pod *corev1.Pod, nodes ...*framework.NodeInfo) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if ps, ok := p.(framework.PreScorePlugin); ok {
		s := ps.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			return nil
		}
		if !s.IsSuccess() {
			t.Fatalf("PreScore: %v", s)
		}
	}
	scores := make([]framework.NodeScore, len(nodes))
	for i, n := range nodes {
		v, s := p.Score(ctx, state, pod, n)
		if !s.IsSuccess() {
			t.Fatalf("Score: %v", s)
		}
		scores[i] = framework.NodeScore{Name: n.Name(), Score: v}
	}
	if norm, ok := p.(framework.ScoreNormalizer); ok {
		if s := norm.NormalizeScore(ctx, state, pod, scores); !s.IsSuccess() {
			t.Fatalf("NormalizeScore: %v", s)
		}
	}
	out := map[string]int64{}
	for _, s := range scores {
		out[s.Name] = s.Score
	}
	return out
}
