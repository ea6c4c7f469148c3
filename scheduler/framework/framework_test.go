package framework

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

type fixedFilter struct {
	name string
	st   *Status
}

func (f fixedFilter) Name() string { return f.name }
func (f fixedFilter) Filter(context.Context, *CycleState, *corev1.Pod, *NodeInfo) *Status {
	return f.st
}

type fixedScore struct {
	name   string
	scores map[string]int64
}

func (f fixedScore) Name() string { return f.name }
func (f fixedScore) Score(_ context.Context, _ *CycleState, _ *corev1.Pod, n *NodeInfo) (int64, *Status) {
	return f.scores[n.Name()], nil
}

func registryOf(plugins ...Plugin) Registry {
	r := Registry{}
	for _, p := range plugins {
		r[p.Name()] = func(Handle) (Plugin, error) { return p, nil }
	}
	return r
}

func node(name string) *NodeInfo {
	return NewNodeInfo(&corev1.Node{ObjectMeta: metav1ObjectMeta(name)})
}

func TestNewRejectsBadProfiles(t *testing.T) {
	reg := registryOf(fixedFilter{name: "F"}, fixedScore{name: "S"})
	cases := []struct {
		name    string
		profile Profile
		want    string
	}{
		{"unknown plugin", Profile{Filters: []string{"Nope"}}, `plugin "Nope" is not in the registry`},
		{"score plugin as filter", Profile{Filters: []string{"S"}}, `plugin "S" is not a filter plugin`},
		{"filter plugin as score", Profile{Scores: []WeightedPlugin{{"F", 1}}}, `plugin "F" is not a score plugin`},
		{"zero weight", Profile{Scores: []WeightedPlugin{{"S", 0}}}, `weight 0`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(reg, tc.profile, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestRunFilterStopsAtTheFirstFailure(t *testing.T) {
	reg := registryOf(
		fixedFilter{name: "Pass"},
		fixedFilter{name: "Taint", st: NewStatus(UnschedulableAndUnresolvable, "tainted")},
		fixedFilter{name: "Fit", st: NewStatus(Unschedulable, "Insufficient cpu")},
	)
	fw, err := New(reg, Profile{Filters: []string{"Pass", "Taint", "Fit"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := fw.RunFilter(context.Background(), NewCycleState(), &corev1.Pod{}, node("n"))
	if st.Plugin() != "Taint" || st.Message() != "tainted" {
		t.Fatalf("status = %v from %q, want the Taint plugin's", st, st.Plugin())
	}
}

func TestRunScoreWeighsPlugins(t *testing.T) {
	reg := registryOf(
		fixedScore{name: "A", scores: map[string]int64{"n1": 100, "n2": 0}},
		fixedScore{name: "B", scores: map[string]int64{"n1": 0, "n2": 60}},
	)
	fw, err := New(reg, Profile{Scores: []WeightedPlugin{{"A", 1}, {"B", 2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, st := fw.RunScore(context.Background(), NewCycleState(), &corev1.Pod{}, []*NodeInfo{node("n1"), node("n2")})
	if !st.IsSuccess() {
		t.Fatal(st)
	}
	if got[0].Score != 100 || got[1].Score != 120 {
		t.Fatalf("scores = %v, want n1=100 n2=120", got)
	}
}
