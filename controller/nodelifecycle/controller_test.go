package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

const grace = 40 * time.Second

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func readyNode(name string, at time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(at)},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(at)},
		}},
	}
}

func lease(node string, renew time.Time) *coordinationv1.Lease {
	r := metav1.NewMicroTime(renew)
	holder := node
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &r},
	}
}

type podBuilder struct{ p *corev1.Pod }

func makePod(name, node string) podBuilder {
	return podBuilder{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}}
}

// tolerate adds upstream's default toleration shape for a taint key.
func (b podBuilder) tolerate(key string, seconds *int64) podBuilder {
	b.p.Spec.Tolerations = append(b.p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds})
	return b
}
func (b podBuilder) obj() *corev1.Pod { return b.p }

func seconds(s int64) *int64 { return &s }

func start(t *testing.T, client kubernetes.Interface, clk *clocktesting.FakeClock) *record.FakeRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(1000)
	c, err := New(Config{Client: client, Informers: factory, Recorder: rec, Clock: clk,
		NodeMonitorGracePeriod: grace, NodeMonitorPeriod: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return rec
}

func waitNode(t *testing.T, client kubernetes.Interface, name, what string, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		n, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(n), err
	})
	if err != nil {
		t.Fatalf("node %s: waiting for %s: %v (%+v %+v)", name, what, err, n.Spec.Taints, n.Status.Conditions)
	}
	return n
}

func taintKeys(n *corev1.Node) []string {
	var out []string
	for _, t := range n.Spec.Taints {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	slices.Sort(out)
	return out
}

func hasTaints(keys ...string) func(*corev1.Node) bool {
	slices.Sort(keys)
	return func(n *corev1.Node) bool { return slices.Equal(taintKeys(n), keys) }
}

func podGone(client kubernetes.Interface, name string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && p.DeletionTimestamp != nil, err
	}
}

func podReadyStatus(ctx context.Context, client kubernetes.Interface, name string) (corev1.ConditionStatus, error) {
	p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status, nil
		}
	}
	return "", nil
}

// unreachableScenario runs the whole story on client: a node stops
// renewing its lease; it goes Unknown, is tainted, its pods are marked
// not ready and evicted as their tolerations run out.
func unreachableScenario(t *testing.T, client kubernetes.Interface, clk *clocktesting.FakeClock, rec *record.FakeRecorder) {
	t.Helper()
	ctx := context.Background()
	unreachable := []string{corev1.TaintNodeUnreachable + ":NoExecute", corev1.TaintNodeUnreachable + ":NoSchedule"}

	// The controller's first pass registers the nodes.
	var reasons []string
	for registered := 0; registered < 2; {
		select {
		case e := <-rec.Events:
			reasons = append(reasons, strings.Fields(e)[1])
			if strings.Fields(e)[1] == "RegisteredNode" {
				registered++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nodes not registered")
		}
	}
	// Within the grace period nothing happens, even though the clock
	// moves: the lease was renewed when the controller first saw it.
	stepClock(t, client, clk, grace-time.Second)

	stepClock(t, client, clk, 2*time.Second)
	n := waitNode(t, client, "n1", "Ready=Unknown and unreachable taints", func(n *corev1.Node) bool {
		r := readyCondition(n)
		return r != nil && r.Status == corev1.ConditionUnknown && hasTaints(unreachable...)(n)
	})
	r := readyCondition(n)
	if r.Reason != "NodeStatusUnknown" || r.Message != "Kubelet stopped posting node status." {
		t.Errorf("Ready condition %+v, want reason NodeStatusUnknown, message \"Kubelet stopped posting node status.\"", r)
	}
	for _, c := range n.Status.Conditions {
		if c.Status != corev1.ConditionUnknown {
			t.Errorf("condition %s is %s, want Unknown", c.Type, c.Status)
		}
	}
	// The healthy node keeps renewing and stays untouched.
	if h := waitNode(t, client, "n2", "still ready", func(*corev1.Node) bool { return true }); !isReady(h) || len(h.Spec.Taints) != 0 {
		t.Errorf("healthy node n2 changed: %+v %+v", h.Spec.Taints, h.Status.Conditions)
	}

	// The pod with no toleration goes at once; the others are marked not
	// ready and wait.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, podGone(client, "intolerant")); err != nil {
		t.Fatalf("pod without toleration not evicted: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := podReadyStatus(ctx, client, "default-tol")
		return s == corev1.ConditionFalse, err
	}); err != nil {
		t.Fatalf("pod on an unreachable node not marked Ready=False: %v", err)
	}
	if s, _ := podReadyStatus(ctx, client, "on-n2"); s != corev1.ConditionTrue {
		t.Errorf("pod on the healthy node: Ready=%s", s)
	}

	// 300s after the taint: the default-toleration pod goes, the one
	// tolerating forever stays.
	stepClock(t, client, clk, 299*time.Second)
	if done, _ := podGone(client, "default-tol")(ctx); done {
		t.Fatal("pod evicted before its tolerationSeconds ran out")
	}
	stepClock(t, client, clk, 2*time.Second)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, podGone(client, "default-tol")); err != nil {
		t.Fatalf("pod not evicted after its tolerationSeconds: %v", err)
	}
	if done, _ := podGone(client, "forever")(ctx); done {
		t.Error("pod tolerating the taint forever was evicted")
	}
	for len(rec.Events) > 0 {
		e := <-rec.Events
		reasons = append(reasons, strings.Fields(e)[1])
	}
	for _, want := range []string{"RegisteredNode", "NodeNotReady", "TaintManagerEviction"} {
		if !slices.Contains(reasons, want) {
			t.Errorf("no %s event among %v", want, reasons)
		}
	}
}

func scenarioObjects(clk *clocktesting.FakeClock) []runtime.Object {
	return []runtime.Object{
		readyNode("n1", t0), lease("n1", t0),
		readyNode("n2", t0), lease("n2", t0),
		makePod("intolerant", "n1").obj(),
		makePod("default-tol", "n1").tolerate(corev1.TaintNodeUnreachable, seconds(300)).tolerate(corev1.TaintNodeNotReady, seconds(300)).obj(),
		makePod("forever", "n1").tolerate(corev1.TaintNodeUnreachable, nil).obj(),
		makePod("on-n2", "n2").obj(),
	}
}

// stepClock moves the clock by d in steps well inside the grace period,
// waiting after each for n2's kubelet (renew) to catch up, so the
// healthy node never looks silent for a whole grace period.
func stepClock(t *testing.T, client kubernetes.Interface, clk *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	for d > 0 {
		step := min(d, grace/4)
		clk.Step(step)
		d -= step
		err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "n2", metav1.GetOptions{})
			return err == nil && l.Spec.RenewTime.Time.Equal(clk.Now()), err
		})
		if err != nil {
			t.Fatalf("n2's lease not renewed: %v", err)
		}
	}
}

// renew keeps n2's lease fresh as the fake clock moves, as its kubelet
// would.
func renew(t *testing.T, client kubernetes.Interface, clk *clocktesting.FakeClock) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), "n2", metav1.GetOptions{})
			if err != nil || l.Spec.RenewTime.Time.Equal(clk.Now()) {
				continue
			}
			r := metav1.NewMicroTime(clk.Now())
			l.Spec.RenewTime = &r
			client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(context.Background(), l, metav1.UpdateOptions{})
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func TestUnreachableNodeIsTaintedAndItsPodsEvicted(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(scenarioObjects(clk)...)
	renew(t, client, clk)
	rec := start(t, client, clk)
	unreachableScenario(t, client, clk, rec)
}

func TestNotReadyNodeGetsNotReadyTaints(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	n := readyNode("n1", t0)
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	client := fake.NewClientset(n, lease("n1", t0))
	start(t, client, clk)
	waitNode(t, client, "n1", "not-ready taints", hasTaints(corev1.TaintNodeNotReady+":NoExecute", corev1.TaintNodeNotReady+":NoSchedule"))

	// The kubelet reports Ready again: the taints go.
	ctx := context.Background()
	n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(clk.Now())
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNode(t, client, "n1", "no taints", hasTaints())
}

func TestNodeThatNeverPostedStatusGetsTheStartupGracePeriod(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new"}})
	rec := start(t, client, clk)
	select {
	case <-rec.Events: // registered: the first pass has seen the node
	case <-time.After(10 * time.Second):
		t.Fatal("node not registered")
	}
	clk.Step(grace + time.Second)
	// Give the controller passes to (wrongly) act on the normal grace
	// period, then check via a second node that a pass ran.
	if _, err := client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "marker"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.Events:
	case <-time.After(10 * time.Second):
		t.Fatal("marker node not registered")
	}
	n, err := client.CoreV1().Nodes().Get(context.Background(), "new", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Status.Conditions) != 0 {
		t.Fatalf("node marked within its startup grace period: %+v", n.Status.Conditions)
	}
	clk.Step(DefaultNodeStartupGracePeriod)
	n = waitNode(t, client, "new", "Ready=Unknown after the startup grace period", func(n *corev1.Node) bool {
		r := readyCondition(n)
		return r != nil && r.Status == corev1.ConditionUnknown && r.Reason == "NodeStatusNeverUpdated"
	})
	if r := readyCondition(n); r.Message != "Kubelet never posted node status." {
		t.Errorf("message %q", r.Message)
	}
}

func TestDeletedNodeIsRemovedFromTheController(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	client := fake.NewClientset(readyNode("gone", t0))
	rec := start(t, client, clk)
	next := func() string {
		select {
		case e := <-rec.Events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return ""
	}
	if e := next(); !strings.Contains(e, "RegisteredNode") {
		t.Fatalf("first event %q, want RegisteredNode", e)
	}
	if err := client.CoreV1().Nodes().Delete(context.Background(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e, want := next(), "Normal RemovingNode Node gone event: Removing Node gone from Controller"; e != want {
		t.Errorf("event %q, want %q", e, want)
	}
}

func TestTaintsFollowConditions(t *testing.T) {
	tests := []struct {
		name   string
		change func(*corev1.Node)
		want   []string
	}{
		{"healthy node: none (trivially true at once; the other cases prove passes run)", func(*corev1.Node) {}, nil},
		{"memory pressure", func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionTrue },
			[]string{corev1.TaintNodeMemoryPressure + ":NoSchedule"}},
		{"cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true },
			[]string{corev1.TaintNodeUnschedulable + ":NoSchedule"}},
		{"not ready keeps a user's taint", func(n *corev1.Node) {
			n.Status.Conditions[0].Status = corev1.ConditionFalse
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		}, []string{"dedicated:NoSchedule", corev1.TaintNodeNotReady + ":NoExecute", corev1.TaintNodeNotReady + ":NoSchedule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			n := readyNode("n1", t0)
			tt.change(n)
			client := fake.NewClientset(n, lease("n1", t0))
			start(t, client, clk)
			waitNode(t, client, "n1", fmt.Sprint(tt.want), hasTaints(tt.want...))
		})
	}
}

func TestEvictionTime(t *testing.T) {
	added := metav1.NewTime(t0)
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		wantDue time.Time
		wantOK  bool
	}{
		{"not tolerated: now", makePod("p", "n").obj(), time.Time{}, true},
		{"tolerated 300s", makePod("p", "n").tolerate(corev1.TaintNodeUnreachable, seconds(300)).obj(), t0.Add(300 * time.Second), true},
		{"tolerated forever", makePod("p", "n").tolerate(corev1.TaintNodeUnreachable, nil).obj(), time.Time{}, false},
		{"shortest of two", makePod("p", "n").tolerate(corev1.TaintNodeUnreachable, seconds(300)).tolerate("", seconds(60)).obj(), t0.Add(60 * time.Second), true},
		{"negative is zero", makePod("p", "n").tolerate(corev1.TaintNodeUnreachable, seconds(-5)).obj(), t0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, ok := evictionTime(tt.pod, []corev1.Taint{unreachable})
			if !due.Equal(tt.wantDue) || ok != tt.wantOK {
				t.Errorf("got %v %v, want %v %v", due, ok, tt.wantDue, tt.wantOK)
			}
		})
	}
}
