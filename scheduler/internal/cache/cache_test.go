package cache

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/scheduler/framework"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

func requestedCPU(t *testing.T, c *Cache, node string) int64 {
	t.Helper()
	var got int64 = -1
	c.View(func(nodes []*framework.NodeInfo) {
		for _, n := range nodes {
			if n.Name() == node {
				got = n.Requested.MilliCPU
			}
		}
	})
	return got
}

func TestAssumedPodsCountUntilForgotten(t *testing.T) {
	c := New()
	c.AddNode(st.MakeNode().Name("n1").Obj())
	p := st.MakePod().Name("p").Node("n1").Req("cpu", "1").Obj()
	c.AssumePod(framework.NewPodInfo(p))
	if got := requestedCPU(t, c, "n1"); got != 1000 {
		t.Fatalf("requested after assume = %dm, want 1000m", got)
	}
	c.ForgetPod(p.UID)
	if got := requestedCPU(t, c, "n1"); got != 0 {
		t.Fatalf("requested after forget = %dm, want 0", got)
	}
}

func TestConfirmedPodIsNotForgotten(t *testing.T) {
	c := New()
	c.AddNode(st.MakeNode().Name("n1").Obj())
	p := st.MakePod().Name("p").Node("n1").Req("cpu", "1").Obj()
	c.AssumePod(framework.NewPodInfo(p))
	c.AddPod(p) // the informer reports the binding
	if c.IsAssumed(p.UID) {
		t.Fatal("pod still assumed after the API reported it")
	}
	c.ForgetPod(p.UID)
	if got := requestedCPU(t, c, "n1"); got != 1000 {
		t.Fatalf("requested = %dm after forgetting a confirmed pod, want 1000m", got)
	}
	if c.PodCount() != 1 {
		t.Fatalf("pod count = %d", c.PodCount())
	}
}

func TestPodBoundElsewhereMovesIt(t *testing.T) {
	c := New()
	c.AddNode(st.MakeNode().Name("n1").Obj())
	c.AddNode(st.MakeNode().Name("n2").Obj())
	c.AssumePod(framework.NewPodInfo(st.MakePod().Name("p").Node("n1").Req("cpu", "1").Obj()))
	c.AddPod(st.MakePod().Name("p").Node("n2").Req("cpu", "1").Obj())
	if a, b := requestedCPU(t, c, "n1"), requestedCPU(t, c, "n2"); a != 0 || b != 1000 {
		t.Fatalf("requested n1=%dm n2=%dm, want 0 and 1000", a, b)
	}
}

func TestPodsArriveBeforeTheirNode(t *testing.T) {
	c := New()
	c.AddPod(st.MakePod().Name("p").Node("late").Req("cpu", "1").Obj())
	var names []string
	c.View(func(nodes []*framework.NodeInfo) {
		for _, n := range nodes {
			names = append(names, n.Name())
		}
	})
	if len(names) != 0 {
		t.Fatalf("a node without a Node object is listed: %v", names)
	}
	c.AddNode(st.MakeNode().Name("late").Obj())
	if got := requestedCPU(t, c, "late"); got != 1000 {
		t.Fatalf("requested = %dm, want the early pod counted", got)
	}
}

func TestRemoveNodeAndPods(t *testing.T) {
	c := New()
	for _, n := range st.Names("n", 3) {
		c.AddNode(st.MakeNode().Name(n).Obj())
	}
	c.AddPod(st.MakePod().Name("p").Node("n-1").Obj())
	c.RemoveNode("n-1")
	if c.NumNodes() != 2 {
		t.Fatalf("nodes = %d, want 2", c.NumNodes())
	}
	c.RemovePod("p")
	if c.PodCount() != 0 {
		t.Fatalf("pods = %d", c.PodCount())
	}
	var order []string
	c.View(func(nodes []*framework.NodeInfo) {
		for _, n := range nodes {
			order = append(order, n.Name())
		}
	})
	if len(order) != 2 || order[0] != "n-0" || order[1] != "n-2" {
		t.Fatalf("nodes = %v, want [n-0 n-2] in insertion order", order)
	}
}

func TestHostPortsAreReleasedWithThePod(t *testing.T) {
	c := New()
	c.AddNode(st.MakeNode().Name("n1").Obj())
	p := st.MakePod().Name("p").Node("n1").HostPort(80, corev1.ProtocolTCP, "").Obj()
	c.AssumePod(framework.NewPodInfo(p))
	inUse := func() (used bool) {
		c.View(func(nodes []*framework.NodeInfo) {
			used = nodes[0].PortInUse(framework.HostPort{IP: framework.DefaultBindAllHostIP, Protocol: corev1.ProtocolTCP, Port: 80})
		})
		return used
	}
	if !inUse() {
		t.Fatal("assumed pod's port is free")
	}
	c.ForgetPod(p.UID)
	if inUse() {
		t.Fatal("forgotten pod's port is still in use")
	}
}
