package framework

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Profile says which plugins run, in which order, and how scores are
// weighted.
type Profile struct {
	// Filters run in this order; a node is rejected by the first one that
	// fails, as upstream does, so the order decides the reason users see.
	Filters []string
	// Scores maps score plugin names to weights.
	Scores []WeightedPlugin
}

// WeightedPlugin is a score plugin and its weight.
type WeightedPlugin struct {
	Name   string
	Weight int64
}

type weightedScorer struct {
	ScorePlugin
	weight int64
}

// Framework runs one profile's plugins for a pod.
type Framework struct {
	preFilters []PreFilterPlugin
	filters    []FilterPlugin
	preScores  []PreScorePlugin
	scorers    []weightedScorer
}

// New builds the plugins of profile from registry. Each plugin is built
// once even when it serves several extension points.
func New(registry Registry, profile Profile, h Handle) (*Framework, error) {
	built := map[string]Plugin{}
	get := func(name string) (Plugin, error) {
		if p, ok := built[name]; ok {
			return p, nil
		}
		f, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("scheduler: plugin %q is not in the registry", name)
		}
		p, err := f(h)
		if err != nil {
			return nil, fmt.Errorf("scheduler: building plugin %q: %w", name, err)
		}
		built[name] = p
		return p, nil
	}
	fw := &Framework{}
	seenPre := map[string]bool{}
	for _, name := range profile.Filters {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		fp, ok := p.(FilterPlugin)
		if !ok {
			return nil, fmt.Errorf("scheduler: plugin %q is not a filter plugin", name)
		}
		fw.filters = append(fw.filters, fp)
		if pf, ok := p.(PreFilterPlugin); ok && !seenPre[name] {
			seenPre[name] = true
			fw.preFilters = append(fw.preFilters, pf)
		}
	}
	for _, wp := range profile.Scores {
		p, err := get(wp.Name)
		if err != nil {
			return nil, err
		}
		sp, ok := p.(ScorePlugin)
		if !ok {
			return nil, fmt.Errorf("scheduler: plugin %q is not a score plugin", wp.Name)
		}
		if wp.Weight <= 0 {
			return nil, fmt.Errorf("scheduler: score plugin %q has weight %d, want > 0", wp.Name, wp.Weight)
		}
		fw.scorers = append(fw.scorers, weightedScorer{sp, wp.Weight})
		if ps, ok := p.(PreScorePlugin); ok {
			fw.preScores = append(fw.preScores, ps)
		}
	}
	return fw, nil
}

// HasScorers reports whether any score plugin is configured.
func (f *Framework) HasScorers() bool { return len(f.scorers) > 0 }

// RunPreFilter runs the PreFilter plugins; the first failure is returned
// with the plugin name recorded.
func (f *Framework) RunPreFilter(ctx context.Context, state *CycleState, pod *corev1.Pod) *Status {
	for _, p := range f.preFilters {
		if s := p.PreFilter(ctx, state, pod); !s.IsSuccess() && !s.IsSkip() {
			return s.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunFilter runs the filters on one node and returns the first failure.
func (f *Framework) RunFilter(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status {
	for _, p := range f.filters {
		if s := p.Filter(ctx, state, pod, node); !s.IsSuccess() {
			return s.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunScore scores the feasible nodes and returns the weighted sum per node,
// in the order of nodes.
func (f *Framework) RunScore(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) ([]NodeScore, *Status) {
	skip := map[string]bool{}
	for _, p := range f.preScores {
		s := p.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			skip[p.Name()] = true
			continue
		}
		if !s.IsSuccess() {
			return nil, s.WithPlugin(p.Name())
		}
	}
	total := make([]NodeScore, len(nodes))
	for i, n := range nodes {
		total[i].Name = n.Name()
	}
	scores := make([]NodeScore, len(nodes))
	for _, p := range f.scorers {
		if skip[p.Name()] {
			continue
		}
		for i, n := range nodes {
			v, s := p.Score(ctx, state, pod, n)
			if !s.IsSuccess() {
				return nil, s.WithPlugin(p.Name())
			}
			scores[i] = NodeScore{Name: n.Name(), Score: v}
		}
		if norm, ok := p.ScorePlugin.(ScoreNormalizer); ok {
			if s := norm.NormalizeScore(ctx, state, pod, scores); !s.IsSuccess() {
				return nil, s.WithPlugin(p.Name())
			}
		}
		for i := range scores {
			if scores[i].Score < 0 || scores[i].Score > MaxNodeScore {
				return nil, NewStatus(Error, fmt.Sprintf("plugin %q scored node %q %d, outside [0, %d]", p.Name(), scores[i].Name, scores[i].Score, MaxNodeScore)).WithPlugin(p.Name())
			}
			total[i].Score += scores[i].Score * p.weight
		}
	}
	return total, nil
}
