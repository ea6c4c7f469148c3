package scheduler

import (
	"testing"

	"github.com/tinykube/tinykube/scheduler/framework"
)

func TestNumFeasibleNodesToFind(t *testing.T) {
	cases := []struct {
		name       string
		percentage int32
		nodes      int
		want       int
	}{
		{"small clusters are searched fully", 0, 99, 99},
		{"at least 100 nodes", 0, 150, 100},
		{"adaptive: 1000 nodes -> 42%", 0, 1000, 420},
		{"adaptive: 5000 nodes -> 10%", 0, 5000, 500},
		{"adaptive floor of 5%", 0, 10000, 500},
		{"explicit percentage", 20, 1000, 200},
		{"100% searches everything", 100, 1000, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := numFeasibleNodesToFind(tc.percentage, tc.nodes); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSelectHostPicksTheBestAndSpreadsTies(t *testing.T) {
	if got := selectHost([]framework.NodeScore{{Name: "a", Score: 10}, {Name: "b", Score: 30}, {Name: "c", Score: 20}}); got != "b" {
		t.Fatalf("picked %q, want b", got)
	}
	seen := map[string]bool{}
	for range 200 {
		seen[selectHost([]framework.NodeScore{{Name: "a", Score: 5}, {Name: "b", Score: 5}, {Name: "c", Score: 1}})] = true
	}
	if !seen["a"] || !seen["b"] || seen["c"] {
		t.Fatalf("tie-breaking picked %v, want a and b only", seen)
	}
}
