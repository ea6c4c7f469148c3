package plugins

import (
	"maps"
	"testing"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestNodeAffinityFilter(t *testing.T) {
	ssd := nodeWith(st.MakeNode().Name("n1").Label("disk", "ssd").Label("zone", "a").Obj())
	const reason = "node(s) didn't match Pod's node affinity/selector"
	runFilterCases(t, NodeAffinity{}, []filterCase{
		{name: "no selector passes", pod: st.MakePod().Name("p").Obj(), node: ssd, code: framework.Success},
		{name: "matching nodeSelector passes", pod: st.MakePod().Name("p").NodeSelector(map[string]string{"disk": "ssd"}).Obj(), node: ssd, code: framework.Success},
		{name: "nodeSelector with another value rejects", pod: st.MakePod().Name("p").NodeSelector(map[string]string{"disk": "hdd"}).Obj(), node: ssd,
			code: framework.UnschedulableAndUnresolvable, reasons: []string{reason}},
		{name: "nodeSelector on a missing label rejects", pod: st.MakePod().Name("p").NodeSelector(map[string]string{"gpu": "yes"}).Obj(), node: ssd,
			code: framework.UnschedulableAndUnresolvable, reasons: []string{reason}},
		{name: "required affinity In matches", pod: st.MakePod().Name("p").RequiredNodeAffinityIn("zone", "a", "b").Obj(), node: ssd, code: framework.Success},
		{name: "required affinity In without a match rejects", pod: st.MakePod().Name("p").RequiredNodeAffinityIn("zone", "c").Obj(), node: ssd,
			code: framework.UnschedulableAndUnresolvable, reasons: []string{reason}},
		{name: "nodeSelector and affinity must both match", pod: st.MakePod().Name("p").NodeSelector(map[string]string{"disk": "hdd"}).RequiredNodeAffinityIn("zone", "a").Obj(), node: ssd,
			code: framework.UnschedulableAndUnresolvable, reasons: []string{reason}},
	})
}

func TestNodeAffinityScoreFollowsPreferredWeights(t *testing.T) {
	a := nodeWith(st.MakeNode().Name("a").Label("zone", "a").Label("disk", "ssd").Obj())
	b := nodeWith(st.MakeNode().Name("b").Label("zone", "b").Label("disk", "ssd").Obj())
	c := nodeWith(st.MakeNode().Name("c").Label("zone", "c").Obj())
	pod := st.MakePod().Name("p").PreferredNodeAffinityIn(80, "zone", "a").PreferredNodeAffinityIn(20, "disk", "ssd").Obj()
	want := map[string]int64{"a": 100, "b": 20, "c": 0}
	if got := scoreNodes(t, NodeAffinity{}, pod, a, b, c); !maps.Equal(got, want) {
		t.Fatalf("scores = %v, want %v", got, want)
	}
	if got := scoreNodes(t, NodeAffinity{}, st.MakePod().Name("q").Obj(), a, b, c); got != nil {
		t.Fatalf("a pod without preferences was scored: %v", got)
	}
}
