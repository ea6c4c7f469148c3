package scheduler

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/scheduler/framework"

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
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint(s). " +
		"no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "big"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
	c.waitEvent("default", "big", "FailedScheduling", want)
}

func TestUnschedulableMessageSaysWhenNoVictimsExist(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("busy").Capacity("cpu", "2").Obj())
	c.createNode(st.MakeNode().Name("cordoned").Unschedulable().Obj())
	c.createPod(st.MakePod().Name("first").Req("cpu", "1500m").Obj())
	if got := c.waitBound("default", "first"); got != "busy" {
		t.Fatalf("first pod went to %q", got)
	}
	c.createPod(st.MakePod().Name("second").Req("cpu", "1").Obj())
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. " +
		"no new claims to deallocate, preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "second"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
}

func TestTaintsAndTolerations(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("gpu").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	c.createNode(st.MakeNode().Name("draining").Taint("maintenance", "", corev1.TaintEffectNoExecute).Obj())

	c.createPod(st.MakePod().Name("plain").Obj())
	want := "0/2 nodes are available: 2 node(s) had untolerated taint(s). " +
		"no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "plain"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}

	c.createPod(st.MakePod().Name("gpu-job").Toleration("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	if got := c.waitBound("default", "gpu-job"); got != "gpu" {
		t.Fatalf("tolerating pod went to %q, want gpu", got)
	}
	c.createPod(st.MakePod().Name("tolerates-all").Toleration("maintenance", "", corev1.TaintEffectNoExecute).Obj())
	if got := c.waitBound("default", "tolerates-all"); got != "draining" {
		t.Fatalf("pod tolerating NoExecute went to %q, want draining", got)
	}
}

func TestNodeSelectorPicksTheLabelledNode(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("hdd").Label("disk", "hdd").Obj())
	c.createNode(st.MakeNode().Name("ssd").Label("disk", "ssd").Obj())
	for _, n := range st.Names("db", 4) {
		c.createPod(st.MakePod().Name(n).NodeSelector(map[string]string{"disk": "ssd"}).Obj())
	}
	for _, n := range st.Names("db", 4) {
		if got := c.waitBound("default", n); got != "ssd" {
			t.Fatalf("%s went to %q, want ssd", n, got)
		}
	}
	c.createPod(st.MakePod().Name("nvme").NodeSelector(map[string]string{"disk": "nvme"}).Obj())
	want := "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. " +
		"no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "nvme"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
	// Labelling a node makes the pending pod fit: node updates retry it.
	patch := []byte(`{"metadata":{"labels":{"disk":"nvme"}}}`)
	if _, err := c.client.CoreV1().Nodes().Patch(c.ctx, "hdd", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := c.waitBound("default", "nvme"); got != "hdd" {
		t.Fatalf("nvme went to %q after relabelling, want hdd", got)
	}
}

func TestCordonedNodeGetsNoNewPods(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Obj())
	c.createNode(st.MakeNode().Name("b").Obj())
	// What `kubectl cordon b` sends.
	cordon := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := c.client.CoreV1().Nodes().Patch(c.ctx, "b", types.StrategicMergePatchType, cordon, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scheduler sees the cordon", func() bool {
		var cordoned bool
		c.sched.cache.View(func(nodes []*framework.NodeInfo) {
			for _, n := range nodes {
				if n.Name() == "b" {
					cordoned = n.Node.Spec.Unschedulable
				}
			}
		})
		return cordoned
	})
	for _, n := range st.Names("p", 5) {
		c.createPod(st.MakePod().Name(n).Obj())
	}
	for _, n := range st.Names("p", 5) {
		if got := c.waitBound("default", n); got != "a" {
			t.Fatalf("%s went to cordoned node %q", n, got)
		}
	}
	// Cordon a as well: nothing fits, with upstream's reason.
	if _, err := c.client.CoreV1().Nodes().Patch(c.ctx, "a", types.StrategicMergePatchType, cordon, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	c.createPod(st.MakePod().Name("late").Obj())
	want := "0/2 nodes are available: 2 node(s) were unschedulable. no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	if got := c.waitUnschedulable("default", "late"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
	// kubectl uncordon a: the pending pod is retried and placed.
	uncordon := []byte(`{"spec":{"unschedulable":null}}`)
	if _, err := c.client.CoreV1().Nodes().Patch(c.ctx, "a", types.StrategicMergePatchType, uncordon, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := c.waitBound("default", "late"); got != "a" {
		t.Fatalf("late went to %q after uncordon", got)
	}
}

func TestHostPortsAreNotShared(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Obj())
	c.createNode(st.MakeNode().Name("b").Obj())
	first := c.createPod(st.MakePod().Name("ingress-0").HostPort(443, corev1.ProtocolTCP, "").Obj())
	second := c.createPod(st.MakePod().Name("ingress-1").HostPort(443, corev1.ProtocolTCP, "").Obj())
	n0, n1 := c.waitBound("default", first.Name), c.waitBound("default", second.Name)
	if n0 == n1 {
		t.Fatalf("both pods with host port 443 went to %q", n0)
	}
	c.createPod(st.MakePod().Name("ingress-2").HostPort(443, corev1.ProtocolTCP, "").Obj())
	want := "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports. " +
		"no new claims to deallocate, preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
	if got := c.waitUnschedulable("default", "ingress-2"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
	// UDP 443 is another port.
	c.createPod(st.MakePod().Name("quic").HostPort(443, corev1.ProtocolUDP, "").Obj())
	c.waitBound("default", "quic")
	// Deleting a holder frees its port for the waiting pod.
	if err := c.client.CoreV1().Pods("default").Delete(c.ctx, first.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if got := c.waitBound("default", "ingress-2"); got != n0 {
		t.Fatalf("ingress-2 went to %q, want the freed node %q", got, n0)
	}
}

func TestPodBecomesSchedulableWhenANodeIsAdded(t *testing.T) {
	c := startCluster(t)
	c.createPod(st.MakePod().Name("early").Req("cpu", "1").Obj())
	if got := c.waitPod("default", "early", "marked unschedulable", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Reason == corev1.PodReasonUnschedulable
	}); scheduledCondition(got).Message != "no nodes available to schedule pods" {
		t.Fatalf("message with no nodes = %q", scheduledCondition(got).Message)
	}
	c.createNode(st.MakeNode().Name("small").Capacity("cpu", "500m").Obj())
	want := "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
	waitFor(t, "message about the small node", func() bool {
		p, err := c.client.CoreV1().Pods("default").Get(c.ctx, "early", metav1.GetOptions{})
		return err == nil && scheduledCondition(p) != nil && scheduledCondition(p).Message == want
	})
	c.createNode(st.MakeNode().Name("big").Obj())
	if got := c.waitBound("default", "early"); got != "big" {
		t.Fatalf("early went to %q, want big", got)
	}
}

func TestNotReadyNodeIsSkipped(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("down").Ready(corev1.ConditionFalse).Obj())
	c.createNode(st.MakeNode().Name("up").Obj())
	for _, n := range st.Names("p", 3) {
		c.createPod(st.MakePod().Name(n).Obj())
	}
	for _, n := range st.Names("p", 3) {
		if got := c.waitBound("default", n); got != "up" {
			t.Fatalf("%s went to not-ready node %q", n, got)
		}
	}
}

func TestPodDeletedOrBoundElsewhereWhileQueuedIsDropped(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("tiny").Capacity("cpu", "100m").Obj())
	c.createPod(st.MakePod().Name("deleted").Req("cpu", "1").Obj())
	c.createPod(st.MakePod().Name("elsewhere").Req("cpu", "1").Obj())
	c.waitUnschedulable("default", "deleted")
	c.waitUnschedulable("default", "elsewhere")

	if err := c.client.CoreV1().Pods("default").Delete(c.ctx, "deleted", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	// Another scheduler (or a user) binds the other pod.
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Target: corev1.ObjectReference{Kind: "Node", Name: "tiny"}}
	if err := c.client.CoreV1().Pods("default").Bind(c.ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "queue to drop both pods", func() bool {
		a, bo, u := c.sched.queue.Counts()
		return a+bo+u == 0
	})
	waitFor(t, "cache to count the pod bound elsewhere", func() bool { return c.sched.cache.PodCount() == 1 })
	if got := c.waitBound("default", "elsewhere"); got != "tiny" {
		t.Fatalf("pod bound elsewhere moved to %q", got)
	}
}

func TestFailedBindingIsRetriedWithoutLeakingResources(t *testing.T) {
	var failures atomic.Int32
	failures.Store(2)
	c := startCluster(t, func(cfg *testConfig) {
		rc := rest.CopyConfig(cfg.restConfig)
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/binding") && failures.Add(-1) >= 0 {
					return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{"Content-Type": {"text/plain"}},
						Body: io.NopCloser(strings.NewReader("injected failure")), Request: r}, nil
				}
				return rt.RoundTrip(r)
			})
		}
		cfg.Client = kubernetes.NewForConfigOrDie(rc)
	})
	// Room for exactly one such pod: a leaked assumption would keep it
	// pending forever.
	c.createNode(st.MakeNode().Name("only").Capacity("cpu", "1").Obj())
	c.createPod(st.MakePod().Name("p").Req("cpu", "1").Obj())
	if got := c.waitBound("default", "p"); got != "only" {
		t.Fatalf("bound to %q", got)
	}
	if failures.Load() >= 0 {
		t.Fatalf("the binding did not fail as injected (%d failures left)", failures.Load())
	}
	waitFor(t, "cache to hold exactly the bound pod", func() bool { return c.sched.cache.PodCount() == 1 && !c.sched.cache.IsAssumed(podUID(t, c, "p")) })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func podUID(t *testing.T, c *cluster, name string) types.UID {
	t.Helper()
	p, err := c.client.CoreV1().Pods("default").Get(c.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.UID
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestPodsOfOtherSchedulersOrWithNodeNameAreLeftAlone(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Obj())
	c.createNode(st.MakeNode().Name("b").Obj())
	c.createPod(st.MakePod().Name("pinned").Node("b").Obj())
	other := st.MakePod().Name("custom").Obj()
	other.Spec.SchedulerName = "my-scheduler"
	c.createPod(other)
	// A pod created after them is placed: the scheduler has seen both.
	c.createPod(st.MakePod().Name("marker").Obj())
	c.waitBound("default", "marker")
	waitFor(t, "the pinned pod to be counted on b", func() bool { return c.sched.cache.PodCount() == 2 })
	p, err := c.client.CoreV1().Pods("default").Get(c.ctx, "custom", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" || scheduledCondition(p) != nil {
		t.Fatalf("pod of another scheduler was touched: nodeName=%q conditions=%v", p.Spec.NodeName, p.Status.Conditions)
	}
	if a, b, u := c.sched.queue.Counts(); a+b+u != 0 {
		t.Fatalf("queue holds %d/%d/%d pods, want none", a, b, u)
	}
}

func TestSchedulingContinuesAcrossAnAPIServerRestart(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Obj())
	c.createPod(st.MakePod().Name("before").Obj())
	c.waitBound("default", "before")
	c.api.Restart()
	c.createPod(st.MakePod().Name("after").Obj())
	if got := c.waitBound("default", "after"); got != "a" {
		t.Fatalf("after restart the pod went to %q", got)
	}
}

func TestPodThatMayNotPreemptSaysSo(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Capacity("cpu", "1").Obj())
	never := corev1.PreemptNever
	p := st.MakePod().Name("polite").Req("cpu", "2").Obj()
	p.Spec.PreemptionPolicy = &never
	c.createPod(p)
	want := "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."
	if got := c.waitUnschedulable("default", "polite"); got != want {
		t.Fatalf("message:\n got %q\nwant %q", got, want)
	}
}

func TestGatedPodIsNotScheduled(t *testing.T) {
	c := startCluster(t)
	c.createNode(st.MakeNode().Name("a").Obj())
	gated := st.MakePod().Name("gated").Obj()
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	c.createPod(gated)
	c.createPod(st.MakePod().Name("marker").Obj())
	c.waitBound("default", "marker")
	p, err := c.client.CoreV1().Pods("default").Get(c.ctx, "gated", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Fatalf("gated pod was bound to %q", p.Spec.NodeName)
	}
	if a, b, u := c.sched.queue.Counts(); a+b+u != 0 {
		t.Fatalf("gated pod is queued: %d/%d/%d", a, b, u)
	}
	// Removing the gates (a pod update upstream allows) is not accepted by
	// the API server yet, so the release of a gated pod is tested in the
	// queue's unit tests through Update.
}
