package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	st "github.com/tinykube/tinykube/scheduler/testing"
)

func TestSpreadsReplicaSetPodsOverNodes(t *testing.T) {
	c := startCluster(t)
	for _, n := range st.Names("node", 3) {
		c.createNode(st.MakeNode().Name(n).Obj())
	}
	names := st.Names("web", 6)
	for _, n := range names {
		c.createPod(st.MakePod().Name(n).Label("app", "web").Owner("ReplicaSet", "web-5d4f", "rs-uid-1").Req("cpu", "100m", "memory", "128Mi").Obj())
	}
	perNode := map[string]int{}
	for _, n := range names {
		perNode[c.waitBound("default", n)]++
	}
	for _, n := range st.Names("node", 3) {
		if perNode[n] != 2 {
			t.Fatalf("pods per node = %v, want 2 on each of 3 nodes", perNode)
		}
	}
	c.waitEvent("default", "web-0", "Scheduled", "Successfully assigned default/web-0 to "+c.waitBound("default", "web-0"))
}

func TestResourceExhaustionMessageIsUpstreams(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("small").Capacity("cpu", "1").Obj())
	c.createNode(st.MakeNode().Name("tainted-a").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	c.createNode(st.MakeNode().Name("tainted-b").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	c.createPod(st.MakePod().Name("big").Req("cpu", "2").Obj())
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}. " +
		"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "big"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
	c.waitEvent("default", "big", "FailedScheduling", want)
}
