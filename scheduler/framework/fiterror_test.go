package framework

import (
	"testing"
)

func TestFitErrorMessage(t *testing.T) {
	taint := "node(s) had untolerated taint(s)"
	cases := []struct {
		name string
		err  FitError
		want string
	}{
		{
			name: "histogram sorted as strings, then preemption",
			err: FitError{NumAllNodes: 3, Diagnosis: Diagnosis{
				NodeToStatus: map[string]*Status{
					"a": NewStatus(Unschedulable, "Insufficient cpu"),
					"b": NewStatus(UnschedulableAndUnresolvable, taint),
					"c": NewStatus(UnschedulableAndUnresolvable, taint),
				},
				PostFilterMsg: "no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
			}},
			want: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint(s). no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
		},
		{
			name: "every reason of a node counts",
			err: FitError{NumAllNodes: 2, Diagnosis: Diagnosis{NodeToStatus: map[string]*Status{
				"a": NewStatus(Unschedulable, "Insufficient cpu", "Insufficient memory"),
				"b": NewStatus(Unschedulable, "Insufficient memory"),
			}}},
			want: "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.",
		},
		{
			name: "absent nodes get the absent status",
			err: FitError{NumAllNodes: 4, Diagnosis: Diagnosis{
				NodeToStatus: map[string]*Status{"a": NewStatus(UnschedulableAndUnresolvable, "No preemption victims found for incoming pod")},
				AbsentStatus: NewStatus(UnschedulableAndUnresolvable, "Preemption is not helpful for scheduling"),
			}},
			want: "0/4 nodes are available: 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling.",
		},
		{
			name: "prefilter message replaces the histogram",
			err: FitError{NumAllNodes: 2, Diagnosis: Diagnosis{
				PreFilterMsg: "pod has unbound immediate PersistentVolumeClaims",
				NodeToStatus: map[string]*Status{"a": NewStatus(Unschedulable, "ignored")},
			}},
			want: "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	var nilStatus *Status
	if !nilStatus.IsSuccess() || nilStatus.Code() != Success || nilStatus.AsError() != nil {
		t.Fatal("a nil status is not Success")
	}
	s := NewStatus(Unschedulable, "a", "b").WithPlugin("P")
	if !s.IsRejected() || s.Message() != "a, b" || s.Plugin() != "P" || s.AsError() == nil {
		t.Fatalf("status = %v", s)
	}
	if NewStatus(Skip).AsError() != nil {
		t.Fatal("Skip is an error")
	}
}

func TestDefaultNormalizeScore(t *testing.T) {
	cases := []struct {
		name    string
		in      []int64
		reverse bool
		want    []int64
	}{
		{"scaled to the maximum", []int64{1, 2, 4}, false, []int64{25, 50, 100}},
		{"reversed", []int64{1, 2, 4}, true, []int64{75, 50, 0}},
		{"all zero stays zero", []int64{0, 0}, false, []int64{0, 0}},
		{"all zero reversed is all maximum", []int64{0, 0}, true, []int64{100, 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scores := make([]NodeScore, len(tc.in))
			for i, v := range tc.in {
				scores[i].Score = v
			}
			DefaultNormalizeScore(MaxNodeScore, tc.reverse, scores)
			for i := range scores {
				if scores[i].Score != tc.want[i] {
					t.Fatalf("got %v, want %v", scores, tc.want)
				}
			}
		})
	}
}
