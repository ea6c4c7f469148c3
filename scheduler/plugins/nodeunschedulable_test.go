package plugins

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestNodeUnschedulableFilter(t *testing.T) {
	cordoned := st.MakeNode().Name("n1").Unschedulable().Obj()
	runFilterCases(t, NodeUnschedulable{}, []filterCase{
		{name: "schedulable node passes", pod: st.MakePod().Name("p").Obj(), node: nodeWith(st.MakeNode().Name("n1").Obj()), code: framework.Success},
		{name: "cordoned node rejects", pod: st.MakePod().Name("p").Obj(), node: nodeWith(cordoned),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) were unschedulable"}},
		{name: "pod tolerating the unschedulable taint passes a cordoned node",
			pod:  st.MakePod().Name("p").Toleration(corev1.TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule).Obj(),
			node: nodeWith(cordoned), code: framework.Success},
		{name: "toleration of another key does not help",
			pod:  st.MakePod().Name("p").Toleration("other", "", corev1.TaintEffectNoSchedule).Obj(),
			node: nodeWith(cordoned), code: framework.UnschedulableAndUnresolvable, reasons: []string{"node(s) were unschedulable"}},
	})
}
