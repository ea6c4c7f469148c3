package plugins

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestNodeReadyFilter(t *testing.T) {
	notReady := st.MakeNode().Name("n1").Ready(corev1.ConditionFalse).Obj()
	runFilterCases(t, NodeReady{}, []filterCase{
		{name: "ready node passes", pod: st.MakePod().Name("p").Obj(), node: nodeWith(st.MakeNode().Name("n1").Obj()), code: framework.Success},
		{name: "not ready node rejects as the not-ready taint would", pod: st.MakePod().Name("p").Obj(), node: nodeWith(notReady),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "unknown readiness rejects as the unreachable taint would", pod: st.MakePod().Name("p").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").Ready(corev1.ConditionUnknown).Obj()),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "node without conditions counts as unreachable", pod: st.MakePod().Name("p").Obj(),
			node: nodeWith(st.MakeNode().Name("n1").NoConditions().Obj()),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) had untolerated taint(s)"}},
		{name: "pod tolerating not-ready passes (as DaemonSet pods do)",
			pod:  st.MakePod().Name("p").Toleration(corev1.TaintNodeNotReady, "", "").Obj(),
			node: nodeWith(notReady), code: framework.Success},
	})
}
