package deployment

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestFenceposts(t *testing.T) {
	tests := []struct {
		name                   string
		replicas               int32
		surge, unavailable     intstr.IntOrString
		wantSurge, wantUnavail int32
	}{
		{"percent rounds surge up and unavailable down", 2, intstr.FromString("25%"), intstr.FromString("25%"), 1, 0},
		{"integers as given", 10, intstr.FromInt32(3), intstr.FromInt32(2), 3, 2},
		{"both zero makes one unavailable", 4, intstr.FromInt32(0), intstr.FromString("10%"), 0, 1},
		{"unavailable capped at replicas", 2, intstr.FromInt32(0), intstr.FromInt32(5), 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := makeD(tt.replicas).obj()
			d.Spec.Strategy.RollingUpdate.MaxSurge = &tt.surge
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = &tt.unavailable
			if s, u := maxSurge(d), maxUnavailable(d); s != tt.wantSurge || u != tt.wantUnavail {
				t.Fatalf("surge %d unavailable %d, want %d %d", s, u, tt.wantSurge, tt.wantUnavail)
			}
		})
	}
}

func TestCreatesReplicaSetWithUpstreamMetadata(t *testing.T) {
	d := makeD(3).annotate("kubernetes.io/change-cause", "first").
		annotate(lastAppliedAnnotation, "{}").obj()
	f := newFixture(t, d)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	rs := f.replicaSets()["web:1"]
	if rs == nil {
		t.Fatal("no ReplicaSet")
	}
	hash := templateHash(&d.Spec.Template, nil)
	if rs.Name != "web-"+hash || rs.Labels[PodTemplateHashLabel] != hash {
		t.Errorf("ReplicaSet %s labels %v", rs.Name, rs.Labels)
	}
	// Rolling update from nothing: replicas + surge at most, capped at replicas.
	if *rs.Spec.Replicas != 3 {
		t.Errorf("replicas %d", *rs.Spec.Replicas)
	}
	want := map[string]string{RevisionAnnotation: "1", DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4",
		"kubernetes.io/change-cause": "first"}
	for k, v := range want {
		if rs.Annotations[k] != v {
			t.Errorf("annotation %s=%q, want %q", k, rs.Annotations[k], v)
		}
	}
	if _, ok := rs.Annotations[lastAppliedAnnotation]; ok {
		t.Error("last-applied-configuration copied to the ReplicaSet")
	}
	got := f.deployment()
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision %q", got.Annotations[RevisionAnnotation])
	}
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != reasonNewRSCreated ||
		c.Message != `Created new replica set "web-`+hash+`"` {
		t.Errorf("Progressing %+v", c)
	}
	if ev := f.events(); len(ev) != 1 || ev[0] != "Normal ScalingReplicaSet Scaled up replica set web-"+hash+" from 0 to 3" {
		t.Errorf("events %q", ev)
	}
}

func TestScalingMidRolloutIsProportional(t *testing.T) {
	// 10 replicas, surge 3: an old ReplicaSet with 8 and a new one with 5
	// (13 = 10 + 3). Scaled to 15 (surge 4, 19 allowed), the 6 extra are
	// shared 8:5.
	d := makeD(15).image("web:2").obj()
	d.Status.Replicas = 13
	old := makeRS(d, "web:1", 8, "1", t0).scaledFor("10", "13").obj()
	cur := makeRS(d, "web:2", 5, "2", t0.Add(time.Minute)).scaledFor("10", "13").available(0).obj()
	f := newFixture(t, d, old, cur)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	rss := f.replicaSets()
	if o, n := *rss["web:1"].Spec.Replicas, *rss["web:2"].Spec.Replicas; o != 12 || n != 7 {
		t.Fatalf("old %d new %d, want 12 and 7", o, n)
	}
	for _, rs := range rss {
		if rs.Annotations[DesiredReplicasAnnotation] != "15" || rs.Annotations[MaxReplicasAnnotation] != "19" {
			t.Errorf("%s annotations %v", rs.Name, rs.Annotations)
		}
	}
}

func TestPausedDeploymentDoesNotRollOut(t *testing.T) {
	d := makeD(2).image("web:2").paused().obj()
	old := makeRS(d, "web:1", 2, "1", t0).scaledFor("2", "3").obj()
	f := newFixture(t, d, old)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if rss := f.replicaSets(); len(rss) != 1 {
		t.Fatalf("%d ReplicaSets while paused", len(rss))
	}
	c := getCondition(f.deployment().Status, appsv1.DeploymentProgressing)
	if c == nil || c.Status != corev1.ConditionUnknown || c.Reason != reasonPaused || c.Message != "Deployment is paused" {
		t.Fatalf("Progressing %+v", c)
	}

	// kubectl rollout resume clears spec.paused.
	resumed := f.deployment()
	resumed.Spec.Paused = false
	if _, err := f.client.AppsV1().Deployments("default").Update(f.ctx, resumed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if rss := f.replicaSets(); rss["web:2"] == nil {
		t.Fatal("no new ReplicaSet after resume")
	}
}

func TestProgressDeadlineExceeded(t *testing.T) {
	d := makeD(2).image("web:2").obj()
	stamp := metav1.NewTime(t0)
	old := makeRS(d, "web:1", 2, "1", t0).scaledFor("2", "3").obj()
	cur := makeRS(d, "web:2", 1, "2", t0).scaledFor("2", "3").available(0).obj()
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2,
		AvailableReplicas: 2, UnavailableReplicas: 1, TerminatingReplicas: ptr.To[int32](0),
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: reasonMinimumAvailable, Message: messageMinimumAvailable, LastUpdateTime: stamp, LastTransitionTime: stamp},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reasonRSUpdated, Message: `ReplicaSet "` + cur.Name + `" is progressing.`, LastUpdateTime: stamp, LastTransitionTime: stamp},
		}}
	f := newFixture(t, d, old, cur)
	if err := f.sync(); err != nil { // 1h after the last progress, deadline 10m
		t.Fatal(err)
	}
	c := getCondition(f.deployment().Status, appsv1.DeploymentProgressing)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonTimedOut ||
		c.Message != `ReplicaSet "`+cur.Name+`" has timed out progressing.` {
		t.Fatalf("Progressing %+v", c)
	}
}

func TestRevisionHistoryLimit(t *testing.T) {
	d := makeD(1).image("web:5").history(2).obj()
	objs := []runtimeObject{d}
	for i, img := range []string{"web:1", "web:2", "web:3", "web:4"} {
		objs = append(objs, makeRS(d, img, 0, string(rune('1'+i)), t0.Add(time.Duration(i)*time.Minute)).obj())
	}
	objs = append(objs, makeRS(d, "web:5", 1, "5", t0.Add(time.Hour)).scaledFor("1", "2").obj())
	d.Annotations = map[string]string{RevisionAnnotation: "5"}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}
	f := newFixture(t, toObjects(objs)...)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for img := range f.replicaSets() {
		kept = append(kept, img)
	}
	if len(kept) != 3 || f.replicaSets()["web:1"] != nil || f.replicaSets()["web:2"] != nil {
		t.Fatalf("kept %v, want web:3, web:4 (history of 2) and web:5", kept)
	}
}

func TestHashCollisionBumpsCollisionCount(t *testing.T) {
	d := makeD(1).obj()
	// A ReplicaSet with the name the controller wants but another template
	// and another owner.
	squatter := makeRS(d, "web:1", 0, "1", t0).obj()
	squatter.Spec.Template.Spec.Containers[0].Image = "other"
	squatter.OwnerReferences = nil
	squatter.Labels = map[string]string{"app": "other"}
	f := newFixture(t, d, squatter)
	if err := f.sync(); err == nil {
		t.Fatal("sync succeeded through a name collision")
	}
	got := f.deployment()
	if got.Status.CollisionCount == nil || *got.Status.CollisionCount != 1 {
		t.Fatalf("collisionCount %v", got.Status.CollisionCount)
	}
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	rs := f.replicaSets()["web:1"]
	if rs == nil || rs.Labels[PodTemplateHashLabel] != templateHash(&d.Spec.Template, ptr.To[int32](1)) {
		t.Fatalf("new ReplicaSet %+v", rs)
	}
}

func TestSelectingAllIsRefused(t *testing.T) {
	d := makeD(1).obj()
	d.Spec.Selector = &metav1.LabelSelector{}
	f := newFixture(t, d)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	if len(f.replicaSets()) != 0 {
		t.Fatal("created a ReplicaSet for a select-all Deployment")
	}
	ev := f.events()
	if len(ev) != 1 || !strings.Contains(ev[0], "SelectingAll This deployment is selecting all pods. A non-empty selector is required.") {
		t.Fatalf("events %q", ev)
	}
}

func TestAdoptsOrphanReplicaSetAndReleasesOthers(t *testing.T) {
	d := makeD(2).obj()
	orphan := makeRS(d, "web:1", 2, "1", t0).obj()
	orphan.OwnerReferences = nil
	// Owned by d but no longer selected (relabelled by hand).
	stray := makeRS(d, "web:0", 0, "0", t0).obj()
	stray.Labels = map[string]string{"app": "debug"}
	f := newFixture(t, d, orphan, stray)
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	rss := f.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d ReplicaSets, want the adopted one and the released one, none new", len(rss))
	}
	if ref := metav1.GetControllerOf(rss["web:1"]); ref == nil || ref.UID != d.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("adopted ReplicaSet ownerReferences %+v", rss["web:1"].OwnerReferences)
	}
	if refs := rss["web:0"].OwnerReferences; len(refs) != 0 {
		t.Errorf("released ReplicaSet ownerReferences %+v", refs)
	}
}
