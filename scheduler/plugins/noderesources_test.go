package plugins

import (
	"maps"
	"testing"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestNodeResourcesFitFilter(t *testing.T) {
	// 4 cpu, 8Gi memory, 100Gi ephemeral-storage, 110 pods.
	node := st.MakeNode().Name("n1").Obj()
	half := st.MakePod().Name("half").Node("n1").Req("cpu", "2", "memory", "4Gi").Obj()
	runFilterCases(t, NodeResourcesFit{}, []filterCase{
		{name: "fits an empty node", pod: st.MakePod().Name("p").Req("cpu", "4", "memory", "8Gi").Obj(), node: nodeWith(node), code: framework.Success},
		{name: "fits exactly what is left", pod: st.MakePod().Name("p").Req("cpu", "2").Obj(), node: nodeWith(node, half), code: framework.Success},
		{name: "cpu over what is left", pod: st.MakePod().Name("p").Req("cpu", "2100m").Obj(), node: nodeWith(node, half),
			code: framework.Unschedulable, reasons: []string{"Insufficient cpu"}},
		{name: "cpu and memory both reported", pod: st.MakePod().Name("p").Req("cpu", "3", "memory", "5Gi").Obj(), node: nodeWith(node, half),
			code: framework.Unschedulable, reasons: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "ephemeral-storage", pod: st.MakePod().Name("p").Req("ephemeral-storage", "101Gi").Obj(), node: nodeWith(node),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"Insufficient ephemeral-storage"}},
		{name: "request above the whole allocatable is unresolvable", pod: st.MakePod().Name("p").Req("cpu", "5").Obj(), node: nodeWith(node),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"Insufficient cpu"}},
		{name: "pods count", pod: st.MakePod().Name("p").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Capacity("pods", "1").Obj(), st.MakePod().Name("x").Node("n1").Obj()),
			code: framework.Unschedulable, reasons: []string{"Too many pods"}},
		{name: "pods count reported before resources", pod: st.MakePod().Name("p").Req("cpu", "3").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Capacity("pods", "1").Obj(), half),
			code: framework.Unschedulable, reasons: []string{"Too many pods", "Insufficient cpu"}},
		{name: "extended resource missing on the node", pod: st.MakePod().Name("p").Req("example.com/gpu", "1").Obj(), node: nodeWith(node),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"Insufficient example.com/gpu"}},
		{name: "extended resource present", pod: st.MakePod().Name("p").Req("example.com/gpu", "1").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Capacity("example.com/gpu", "2").Obj()), code: framework.Success},
		{name: "pod without requests fits a full node", pod: st.MakePod().Name("p").Obj(),
			node: nodeWith(node, st.MakePod().Name("full").Node("n1").Req("cpu", "4", "memory", "8Gi").Obj()), code: framework.Success},
	})
}

func TestLeastAllocatedScorePrefersEmptierNodes(t *testing.T) {
	empty := nodeWith(st.MakeNode().Name("empty").Obj())
	half := nodeWith(st.MakeNode().Name("half").Obj(), st.MakePod().Name("x").Node("half").Req("cpu", "2", "memory", "4Gi").Obj())
	pod := st.MakePod().Name("p").Req("cpu", "1", "memory", "2Gi").Obj()
	// empty: cpu (4-1)/4=75, mem (8-2)/8=75 -> 75; half: cpu (4-3)/4=25, mem 25 -> 25.
	want := map[string]int64{"empty": 75, "half": 25}
	if got := scoreNodes(t, NodeResourcesFit{}, pod, empty, half); !maps.Equal(got, want) {
		t.Fatalf("scores = %v, want %v", got, want)
	}
	// A pod without requests counts as 100m cpu and 200Mi memory.
	got := scoreNodes(t, NodeResourcesFit{}, st.MakePod().Name("q").Obj(), empty)
	if got["empty"] != (97+97)/2 {
		t.Fatalf("best-effort pod score = %v, want 97", got)
	}
}

func TestBalancedAllocationScore(t *testing.T) {
	cpuHeavy := nodeWith(st.MakeNode().Name("cpu-heavy").Obj(), st.MakePod().Name("x").Node("cpu-heavy").Req("cpu", "3").Obj())
	balanced := nodeWith(st.MakeNode().Name("balanced").Obj(), st.MakePod().Name("y").Node("balanced").Req("cpu", "1", "memory", "2Gi").Obj())
	pod := st.MakePod().Name("p").Req("cpu", "1", "memory", "2Gi").Obj()
	// cpu-heavy: fractions 4/4=1 and 2/8=0.25 -> std 0.375 -> 62;
	// balanced: 2/4 and 4/8 -> std 0 -> 100.
	want := map[string]int64{"cpu-heavy": 62, "balanced": 100}
	if got := scoreNodes(t, BalancedAllocation{}, pod, cpuHeavy, balanced); !maps.Equal(got, want) {
		t.Fatalf("scores = %v, want %v", got, want)
	}
	if got := scoreNodes(t, BalancedAllocation{}, st.MakePod().Name("be").Obj(), cpuHeavy, balanced); got != nil {
		t.Fatalf("a pod without requests was scored: %v", got)
	}
}
