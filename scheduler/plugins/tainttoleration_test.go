package plugins

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestTaintTolerationFilter(t *testing.T) {
	gpu := st.MakeNode().Name("n1").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj()
	runFilterCases(t, TaintToleration{}, []filterCase{
		{name: "untainted node passes", pod: st.MakePod().Name("p").Obj(), node: nodeWith(st.MakeNode().Name("n1").Obj()), code: framework.Success},
		{name: "NoSchedule taint rejects with key and value", pod: st.MakePod().Name("p").Obj(), node: nodeWith(gpu),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "NoExecute taint rejects",
			pod:  st.MakePod().Name("p").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Taint("evict", "", corev1.TaintEffectNoExecute).Obj()),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "PreferNoSchedule taint does not reject",
			pod:  st.MakePod().Name("p").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Taint("soft", "x", corev1.TaintEffectPreferNoSchedule).Obj()), code: framework.Success},
		{name: "matching Equal toleration passes", pod: st.MakePod().Name("p").Toleration("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
			node: nodeWith(gpu), code: framework.Success},
		{name: "Exists toleration passes", pod: st.MakePod().Name("p").Toleration("dedicated", "", "").Obj(),
			node: nodeWith(gpu), code: framework.Success},
		{name: "toleration with another value rejects", pod: st.MakePod().Name("p").Toleration("dedicated", "cpu", corev1.TaintEffectNoSchedule).Obj(),
			node: nodeWith(gpu), code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "toleration of NoExecute does not tolerate NoSchedule", pod: st.MakePod().Name("p").Toleration("dedicated", "gpu", corev1.TaintEffectNoExecute).Obj(),
			node: nodeWith(gpu), code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
	})
}

func TestTaintTolerationScorePrefersFewerIntolerableSoftTaints(t *testing.T) {
	clean := nodeWith(st.MakeNode().Name("clean").Obj())
	one := nodeWith(st.MakeNode().Name("one").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj())
	two := nodeWith(st.MakeNode().Name("two").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("b", "1", corev1.TaintEffectPreferNoSchedule).Obj())
	cases := []struct {
		name string
		pod  *corev1.Pod
		want map[string]int64
	}{
		{"no tolerations: fewer taints score higher", st.MakePod().Name("p").Obj(), map[string]int64{"clean": 100, "one": 50, "two": 0}},
		{"tolerated taints do not count", st.MakePod().Name("p").Toleration("a", "", corev1.TaintEffectPreferNoSchedule).Obj(), map[string]int64{"clean": 100, "one": 100, "two": 0}},
		{"all tolerated: all equal", st.MakePod().Name("p").Toleration("a", "", "").Toleration("b", "", "").Obj(), map[string]int64{"clean": 100, "one": 100, "two": 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := scoreNodes(t, TaintToleration{}, tc.pod, clean, one, two); !maps.Equal(got, tc.want) {
				t.Fatalf("scores = %v, want %v", got, tc.want)
			}
		})
	}
}
