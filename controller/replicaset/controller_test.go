package replicaset

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func ownedBy(p *corev1.Pod, rs *appsv1.ReplicaSet) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.UID == rs.UID && ref.Kind == "ReplicaSet" && ref.APIVersion == "apps/v1" &&
		ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
}

func TestReplicaSetKeepsPods(t *testing.T) {
	rs := makeRS("web", 3).obj()
	// A pod another kind of controller owns, with labels rs selects.
	theirs := makePod("theirs").obj()
	theirs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "db-uid", Controller: ptr.To(true)}}
	tests := []struct {
		name    string
		replica *appsv1.ReplicaSet
		pods    []runtime.Object
		// want lists the pods that must be left (by name) besides new ones;
		// created is how many new ones there must be.
		want    []string
		created int
	}{
		{name: "creates missing pods from the template", replica: rs, created: 3},
		{name: "keeps the right number of owned pods", replica: rs, pods: []runtime.Object{
			makePod("a").ownedBy(rs).obj(), makePod("b").ownedBy(rs).obj(), makePod("c").ownedBy(rs).obj(),
		}, want: []string{"a", "b", "c"}},
		{name: "adopts orphans that match the selector", replica: rs, pods: []runtime.Object{
			makePod("orphan").obj(), makePod("b").ownedBy(rs).obj(),
		}, want: []string{"b", "orphan"}, created: 1},
		{name: "leaves pods of another controller alone", replica: rs, pods: []runtime.Object{
			theirs,
		}, want: []string{"theirs"}, created: 3},
		{name: "ignores finished pods", replica: rs, pods: []runtime.Object{
			func() runtime.Object {
				p := makePod("done").ownedBy(rs).obj()
				p.Status.Phase = corev1.PodSucceeded
				return p
			}(),
		}, want: []string{"done"}, created: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := append([]runtime.Object{tt.replica.DeepCopy()}, tt.pods...)
			f := run(t, objs...)
			var pods []corev1.Pod
			waitFor(t, "status", func() bool {
				pods = f.pods(t)
				got := f.rs(t, tt.replica.Name)
				return len(pods) == len(tt.want)+tt.created && got.Status.Replicas == 3 && got.Status.ObservedGeneration == 1
			})
			kept := map[string]bool{}
			for _, n := range tt.want {
				kept[n] = true
			}
			for _, p := range pods {
				switch {
				case kept[p.Name]:
					if p.Name == "theirs" {
						if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != "db-uid" || len(p.OwnerReferences) != 1 {
							t.Errorf("pod of another controller: ownerReferences %+v", p.OwnerReferences)
						}
						continue
					}
					if p.Name == "done" {
						continue
					}
				case !strings.HasPrefix(p.Name, "web-") || p.GenerateName != "web-":
					t.Errorf("new pod %s has generateName %q, want web-", p.Name, p.GenerateName)
				case p.Labels["tier"] != "front" || p.Spec.Containers[0].Image != "web:1":
					t.Errorf("new pod %s not made from the template: %v %v", p.Name, p.Labels, p.Spec.Containers)
				}
				if !ownedBy(&p, tt.replica) {
					t.Errorf("pod %s ownerReferences %+v", p.Name, p.OwnerReferences)
				}
			}
			got := f.rs(t, tt.replica.Name)
			if got.Status.FullyLabeledReplicas != 3 || got.Status.TerminatingReplicas == nil || *got.Status.TerminatingReplicas != 0 {
				t.Errorf("status %+v", got.Status)
			}
		})
	}
}

func TestReleasesPodsThatNoLongerMatch(t *testing.T) {
	rs := makeRS("web", 1).obj()
	f := run(t, rs, makePod("moved").ownedBy(rs).labels(map[string]string{"app": "debug"}).obj())
	waitFor(t, "release and replacement", func() bool {
		pods := f.pods(t)
		if len(pods) != 2 {
			return false
		}
		for _, p := range pods {
			if p.Name == "moved" && len(p.OwnerReferences) != 0 {
				return false
			}
		}
		return f.rs(t, "web").Status.Replicas == 1
	})
}

func TestScaleDownDeletesLeastValuableFirst(t *testing.T) {
	now := time.Now()
	rs := makeRS("web", 2).obj()
	pods := []runtime.Object{
		makePod("unscheduled").ownedBy(rs).created(10).obj(),
		makePod("pending").ownedBy(rs).node("n1").created(9).obj(),
		makePod("running-not-ready").ownedBy(rs).node("n1").running().created(8).obj(),
		makePod("ready-new").ownedBy(rs).node("n2").readySince(now.Add(-time.Minute)).created(7).obj(),
		makePod("ready-old").ownedBy(rs).node("n3").readySince(now.Add(-time.Hour)).created(1).obj(),
	}
	f := run(t, append([]runtime.Object{rs}, pods...)...)
	waitFor(t, "scale down to 2", func() bool { return len(f.pods(t)) == 2 })
	if got := podNames(f.pods(t)); got[0] != "ready-new" || got[1] != "ready-old" {
		t.Fatalf("kept %v, want the two ready pods", got)
	}
	waitFor(t, "status", func() bool {
		s := f.rs(t, "web").Status
		return s.Replicas == 2 && s.ReadyReplicas == 2 && s.AvailableReplicas == 2
	})
	deleted := 0
	for len(f.recorder.Events) > 0 {
		if e := <-f.recorder.Events; strings.HasPrefix(e, "Normal SuccessfulDelete Deleted pod: ") {
			deleted++
		}
	}
	if deleted != 3 {
		t.Errorf("%d SuccessfulDelete events, want 3", deleted)
	}
}

func TestPodsToDeleteOrder(t *testing.T) {
	now := time.Now()
	rs := makeRS("web", 0).obj()
	tests := []struct {
		name      string
		pods      []*corev1.Pod
		wantFirst string
	}{
		{"unscheduled before scheduled", []*corev1.Pod{makePod("s").node("n").obj(), makePod("u").obj()}, "u"},
		{"pending before running", []*corev1.Pod{makePod("r").node("n").running().obj(), makePod("p").node("n").obj()}, "p"},
		{"not ready before ready", []*corev1.Pod{makePod("ready").node("n").readySince(now).obj(), makePod("nr").node("n").running().obj()}, "nr"},
		{"lower deletion cost first", []*corev1.Pod{makePod("high").node("n").cost("10").obj(), makePod("low").node("n").cost("-5").obj()}, "low"},
		{"doubled-up node first", []*corev1.Pod{makePod("alone").node("a").obj(), makePod("crowded").node("b").obj(), makePod("crowded2").node("b").created(999).obj()}, "crowded"},
		{"ready for less time first", []*corev1.Pod{makePod("long").node("n").readySince(now.Add(-time.Hour)).obj(), makePod("short").node("n").readySince(now).obj()}, "short"},
		{"newer first", []*corev1.Pod{makePod("old").node("n").createdAt(now.Add(-time.Hour)).obj(), makePod("new").node("n").createdAt(now.Add(-time.Minute)).obj()}, "new"},
		{"similar age: by UID", []*corev1.Pod{makePod("b").node("n").createdAt(now.Add(-61 * time.Minute)).obj(), makePod("a").node("n").createdAt(now.Add(-60 * time.Minute)).obj()}, "a"},
		{"similar age by UID even if newer", []*corev1.Pod{makePod("z").node("n").createdAt(now.Add(-60 * time.Minute)).obj(), makePod("a").node("n").createdAt(now.Add(-61 * time.Minute)).obj()}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.pods {
				p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)}
			}
			got := podsToDelete(tt.pods, tt.pods, 1, now)
			if got[0].Name != tt.wantFirst {
				t.Fatalf("deletes %s first, want %s", got[0].Name, tt.wantFirst)
			}
		})
	}
}

func TestAvailabilityWaitsForMinReadySeconds(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	rs := makeRS("web", 1).minReady(30).obj()
	client := newFakeClient(rs, makePod("p").ownedBy(rs).node("n").readySince(clock.Now().Add(-10*time.Second)).obj())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(10), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.ReadyReplicas != 1 || got.Status.AvailableReplicas != 0 {
		t.Fatalf("ready 10s of 30: status %+v, want ready 1, available 0", got.Status)
	}
	clock.Step(21 * time.Second)
	waitFor(t, "informer to see the status", func() bool {
		rs, err := c.rsLister.ReplicaSets("default").Get("web")
		return err == nil && rs.Status.ReadyReplicas == 1
	})
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	got, _ = client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.AvailableReplicas != 1 {
		t.Fatalf("ready 31s of 30: status %+v, want available 1", got.Status)
	}
}

// With the pod informer lagging (here: not running at all), a second sync
// must not create the pods a first sync already created.
func TestExpectationsPreventExtraPodsUnderInformerLag(t *testing.T) {
	rs := makeRS("web", 4).obj()
	client := newFakeClient(rs)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100)})
	if err != nil {
		t.Fatal(err)
	}
	// Fill the ReplicaSet cache by hand; the pod cache stays empty.
	if err := factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(rs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if err := c.sync(ctx, "default/web"); err != nil {
			t.Fatal(err)
		}
	}
	pods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 4 {
		t.Fatalf("%d pods after three syncs with a lagging cache, want 4", len(pods.Items))
	}
	// Once the informer reports them, the ReplicaSet is settled.
	for i := range pods.Items {
		c.addPod(&pods.Items[i])
	}
	if !c.expectations.satisfied("default/web") {
		t.Fatal("expectations not satisfied after every creation was observed")
	}
}

func TestSlowStartBatch(t *testing.T) {
	boom := errors.New("quota exceeded")
	tests := []struct {
		name      string
		count     int
		failAfter int // calls that succeed before every call fails; -1 never
		wantOK    int
		wantCalls int
	}{
		{"all succeed", 10, -1, 10, 10},
		{"first call fails, nothing more is tried", 10, 0, 0, 1},
		{"failure in the third batch stops after it", 100, 5, 5, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := make(chan struct{}, tt.count)
			ok, err := slowStartBatch(tt.count, 1, func() error {
				calls <- struct{}{}
				if tt.failAfter >= 0 && len(calls) > tt.failAfter {
					return boom
				}
				return nil
			})
			if tt.failAfter >= 0 && !errors.Is(err, boom) {
				t.Errorf("err %v", err)
			}
			if len(calls) != tt.wantCalls || (tt.failAfter < 0 && ok != tt.wantOK) {
				t.Errorf("%d calls, %d ok; want %d calls, %d ok", len(calls), ok, tt.wantCalls, tt.wantOK)
			}
			if tt.failAfter == 0 && ok != 0 {
				t.Errorf("%d ok", ok)
			}
		})
	}
}

func TestCreateFailureSetsReplicaFailure(t *testing.T) {
	rs := makeRS("web", 2).obj()
	client := newFakeClient(rs)
	client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("pods \"web\" is forbidden: exceeded quota")
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := record.NewFakeRecorder(100)
	c, err := New(Config{Client: client, Informers: factory, Recorder: recorder})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := c.sync(ctx, "default/web"); err == nil {
		t.Fatal("sync succeeded though every create fails")
	}
	got, _ := client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != appsv1.ReplicaSetReplicaFailure || got.Status.Conditions[0].Reason != "FailedCreate" {
		t.Fatalf("conditions %+v", got.Status.Conditions)
	}
	if e := <-recorder.Events; !strings.HasPrefix(e, "Warning FailedCreate Error creating: ") {
		t.Fatalf("event %q", e)
	}
	// Only one create was tried (slow start), so expectations are clear.
	if !c.expectations.satisfied("default/web") {
		t.Fatal("expectations still wait for creations that failed")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	client := newFakeClient()
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(1)
	for name, cfg := range map[string]Config{
		"no client":    {Informers: factory, Recorder: rec},
		"no informers": {Client: client, Recorder: rec},
		"no recorder":  {Client: client, Informers: factory},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
