package disruption

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness is a controller on a fake clientset holding objs, its
// informers synced.
type harness struct {
	t      *testing.T
	c      *Controller
	client *fake.Clientset
	events *record.FakeRecorder
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	c, err := New(Config{Client: client, Informers: factory, Recorder: events, Clock: clocktesting.NewFakePassiveClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown(); c.queue.ShutDown(); c.staleQueue.ShutDown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		t.Fatal("caches did not sync")
	}
	return &harness{t: t, c: c, client: client, events: events}
}

// sync runs one sync of the budget and returns it as stored.
func (h *harness) sync(name string) *policyv1.PodDisruptionBudget {
	h.t.Helper()
	_ = h.c.sync(context.Background(), "default/"+name)
	pdb, err := h.client.PolicyV1().PodDisruptionBudgets("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return pdb
}

func budget(minAvailable, maxUnavailable *intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 3},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable, MaxUnavailable: maxUnavailable,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
}

func pod(name string, ready bool, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func controllerRef(kind, name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}
}

func wantStatus(t *testing.T, pdb *policyv1.PodDisruptionBudget, expected, desired, current, allowed int32, reason string) {
	t.Helper()
	st := pdb.Status
	if st.ExpectedPods != expected || st.DesiredHealthy != desired || st.CurrentHealthy != current || st.DisruptionsAllowed != allowed {
		t.Fatalf("status expected/desired/current/allowed = %d/%d/%d/%d, want %d/%d/%d/%d",
			st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed, expected, desired, current, allowed)
	}
	if st.ObservedGeneration != pdb.Generation {
		t.Fatalf("observedGeneration %d, generation %d", st.ObservedGeneration, pdb.Generation)
	}
	c := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
	if c == nil || c.Reason != reason {
		t.Fatalf("DisruptionAllowed condition %+v, want reason %s", c, reason)
	}
}

func TestIntegerMinAvailableCountsThePodsThereAre(t *testing.T) {
	h := newHarness(t, budget(ptr.To(intstr.FromInt32(2)), nil),
		pod("web-0", true, nil), pod("web-1", true, nil), pod("web-2", true, nil), pod("web-3", false, nil))
	wantStatus(t, h.sync("web"), 4, 2, 3, 1, policyv1.SufficientPodsReason)
}

func TestMaxUnavailableIsTakenOfTheDeploymentsScale(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "d1"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(4))}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default", UID: "rs1",
		OwnerReferences: []metav1.OwnerReference{*controllerRef("Deployment", "web", "d1")}}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(3))}}
	owner := controllerRef("ReplicaSet", "web-abc", "rs1")
	h := newHarness(t, d, rs, budget(nil, ptr.To(intstr.FromString("50%"))),
		pod("web-0", true, owner), pod("web-1", true, owner), pod("web-2", true, owner))
	// 4 expected (the Deployment's replicas, not the 3 pods), 2 may be
	// unavailable, 1 already is.
	wantStatus(t, h.sync("web"), 4, 2, 3, 1, policyv1.SufficientPodsReason)
}

func TestPercentMinAvailableOfAStatefulSetRoundsUp(t *testing.T) {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default", UID: "s1"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(3))}}
	owner := controllerRef("StatefulSet", "db", "s1")
	h := newHarness(t, sts, budget(ptr.To(intstr.FromString("50%")), nil),
		pod("db-0", true, owner), pod("db-1", true, owner), pod("db-2", true, owner))
	wantStatus(t, h.sync("web"), 3, 2, 3, 1, policyv1.SufficientPodsReason)
}

func TestRecentlyEvictedPodsDoNotCountAndOldEntriesAreDropped(t *testing.T) {
	pdb := budget(ptr.To(intstr.FromInt32(1)), nil)
	pdb.Status.DisruptedPods = map[string]metav1.Time{
		"web-0": metav1.NewTime(testNow.Add(-time.Minute)),     // evicted, deletion pending
		"web-1": metav1.NewTime(testNow.Add(-3 * time.Minute)), // never deleted: counts again
		"gone":  metav1.NewTime(testNow.Add(-time.Minute)),     // deleted
	}
	h := newHarness(t, pdb, pod("web-0", true, nil), pod("web-1", true, nil), pod("web-2", true, nil))
	got := h.sync("web")
	wantStatus(t, got, 3, 1, 2, 1, policyv1.SufficientPodsReason)
	if _, ok := got.Status.DisruptedPods["web-0"]; len(got.Status.DisruptedPods) != 1 || !ok {
		t.Fatalf("disruptedPods %v, want only web-0", got.Status.DisruptedPods)
	}
}

func TestNoPodsAllowNoDisruption(t *testing.T) {
	h := newHarness(t, budget(nil, ptr.To(intstr.FromInt32(1))))
	wantStatus(t, h.sync("web"), 0, 0, 0, 0, policyv1.InsufficientPodsReason)
}

func TestPodsOfAControllerWithoutScaleFailTheSync(t *testing.T) {
	owner := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds1", Controller: ptr.To(true)}
	pdb := budget(nil, ptr.To(intstr.FromInt32(1)))
	pdb.Status.DisruptionsAllowed = 2
	h := newHarness(t, pdb, pod("agent-0", true, owner))
	got := h.sync("web")
	c := apimeta.FindStatusCondition(got.Status.Conditions, policyv1.DisruptionAllowedCondition)
	if got.Status.DisruptionsAllowed != 0 || c == nil || c.Reason != policyv1.SyncFailedReason || c.Message != `found no controllers for pod "agent-0"` {
		t.Fatalf("status %+v", got.Status)
	}
}

func TestUnmanagedPodsAreLeftOutOfTheScale(t *testing.T) {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default", UID: "s1"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2))}}
	owner := controllerRef("StatefulSet", "db", "s1")
	h := newHarness(t, sts, budget(nil, ptr.To(intstr.FromInt32(1))),
		pod("db-0", true, owner), pod("db-1", true, owner), pod("stray", true, nil))
	wantStatus(t, h.sync("web"), 2, 1, 3, 2, policyv1.SufficientPodsReason)
	select {
	case e := <-h.events.Events:
		if e[:len("Warning UnmanagedPods")] != "Warning UnmanagedPods" {
			t.Fatalf("event %q", e)
		}
	default:
		t.Fatal("no UnmanagedPods event")
	}
}

func TestStaleDisruptionTargetConditionsAreReset(t *testing.T) {
	evicted := func(name string, ago time.Duration, reason string) *corev1.Pod {
		p := pod(name, true, nil)
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: reason, LastTransitionTime: metav1.NewTime(testNow.Add(-ago))})
		return p
	}
	h := newHarness(t, evicted("stale", 3*time.Minute, "EvictionByEvictionAPI"), evicted("fresh", time.Minute, "EvictionByEvictionAPI"),
		evicted("kubelet", 3*time.Minute, corev1.PodReasonTerminationByKubelet))
	for name, want := range map[string]corev1.ConditionStatus{"stale": corev1.ConditionFalse, "fresh": corev1.ConditionTrue, "kubelet": corev1.ConditionTrue} {
		if err := h.c.syncStaleDisruption(context.Background(), "default/"+name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var status corev1.ConditionStatus
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.DisruptionTarget {
				status = c.Status
			}
		}
		if status != want {
			t.Errorf("%s: DisruptionTarget %q, want %q", name, status, want)
		}
	}
}
