package deployment_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/deployment"
)

func TestNginxDeploymentCreatesReplicaSetAndPods(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	ctx := context.Background()
	d, err := s.Client.AppsV1().Deployments("default").Create(ctx, nginx(2).obj(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const hash = "585c5579f6" // what upstream 1.37 names it
	var rs *appsv1.ReplicaSet
	var pods []corev1.Pod
	waitFor(t, "a ReplicaSet and 2 pods", 10*time.Second, func(ctx context.Context) (bool, error) {
		rss, err := listReplicaSets(ctx, s.Client)
		if err != nil || len(rss) != 1 {
			return false, err
		}
		rs = &rss[0]
		pods, err = listPods(ctx, s.Client, "app=nginx")
		return len(pods) == 2 && rs.Status.Replicas == 2, err
	})
	if rs.Name != "nginx-deployment-"+hash {
		t.Errorf("ReplicaSet name %s, want nginx-deployment-%s", rs.Name, hash)
	}
	wantAnn := map[string]string{
		deployment.RevisionAnnotation:        "1",
		deployment.DesiredReplicasAnnotation: "2",
		deployment.MaxReplicasAnnotation:     "3",
	}
	for k, v := range wantAnn {
		if rs.Annotations[k] != v {
			t.Errorf("ReplicaSet annotation %s=%q, want %q", k, rs.Annotations[k], v)
		}
	}
	if rs.Labels[deployment.PodTemplateHashLabel] != hash || rs.Spec.Selector.MatchLabels[deployment.PodTemplateHashLabel] != hash ||
		rs.Spec.Template.Labels[deployment.PodTemplateHashLabel] != hash {
		t.Errorf("ReplicaSet labels %v, selector %v, template labels %v: want pod-template-hash=%s in each",
			rs.Labels, rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels, hash)
	}
	checkController(t, rs.OwnerReferences, "Deployment", d.Name, string(d.UID))
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, rs.Name+"-") || p.GenerateName != rs.Name+"-" {
			t.Errorf("pod %s (generateName %q) is not named after %s", p.Name, p.GenerateName, rs.Name)
		}
		if p.Labels["app"] != "nginx" || p.Labels[deployment.PodTemplateHashLabel] != hash {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		checkController(t, p.OwnerReferences, "ReplicaSet", rs.Name, string(rs.UID))
	}

	// Status as upstream shows it before any pod is ready.
	waitFor(t, "deployment status", 10*time.Second, func(ctx context.Context) (bool, error) {
		d, err = getDeployment(ctx, s.Client, d.Name)
		if err != nil {
			return false, err
		}
		p := condition(d, appsv1.DeploymentProgressing)
		return d.Status.Replicas == 2 && p != nil && p.Reason == "ReplicaSetUpdated", nil
	})
	if d.Annotations[deployment.RevisionAnnotation] != "1" {
		t.Errorf("deployment revision annotation %q, want 1", d.Annotations[deployment.RevisionAnnotation])
	}
	st := d.Status
	if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != 2 || st.UnavailableReplicas != 2 ||
		st.ReadyReplicas != 0 || st.AvailableReplicas != 0 || st.TerminatingReplicas == nil || *st.TerminatingReplicas != 0 {
		t.Errorf("status %+v", st)
	}
	checkConditions(t, d, []condWant{
		{appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."},
		{appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated", `ReplicaSet "nginx-deployment-585c5579f6" is progressing.`},
	})

	// Ready pods make it available and complete.
	if err := markAllReady(ctx, s.Client, "app=nginx"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout complete", 10*time.Second, func(ctx context.Context) (bool, error) {
		d, err = getDeployment(ctx, s.Client, d.Name)
		if err != nil {
			return false, err
		}
		p := condition(d, appsv1.DeploymentProgressing)
		return rolledOut(d) && p != nil && p.Reason == "NewReplicaSetAvailable", nil
	})
	checkConditions(t, d, []condWant{
		{appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability."},
		{appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable", `ReplicaSet "nginx-deployment-585c5579f6" has successfully progressed.`},
	})
	if d.Status.ReadyReplicas != 2 || d.Status.UnavailableReplicas != 0 {
		t.Errorf("status %+v", d.Status)
	}
	waitForEvent(t, s.Client, "ScalingReplicaSet", "Scaled up replica set nginx-deployment-585c5579f6 from 0 to 2")
	waitForEvent(t, s.Client, "SuccessfulCreate", "Created pod: nginx-deployment-585c5579f6-")
}

type condWant struct {
	typ             appsv1.DeploymentConditionType
	status          corev1.ConditionStatus
	reason, message string
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func checkConditions(t *testing.T, d *appsv1.Deployment, want []condWant) {
	t.Helper()
	if len(d.Status.Conditions) != len(want) {
		t.Errorf("conditions %+v, want %d", d.Status.Conditions, len(want))
		return
	}
	for i, w := range want {
		c := d.Status.Conditions[i]
		if c.Type != w.typ || c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
			t.Errorf("condition %d: %s=%s %s %q, want %s=%s %s %q", i, c.Type, c.Status, c.Reason, c.Message, w.typ, w.status, w.reason, w.message)
		}
		if c.LastUpdateTime.IsZero() || c.LastTransitionTime.IsZero() {
			t.Errorf("condition %s without times", c.Type)
		}
	}
}

func checkController(t *testing.T, refs []metav1.OwnerReference, kind, name, uid string) {
	t.Helper()
	if len(refs) != 1 {
		t.Errorf("ownerReferences %+v, want one", refs)
		return
	}
	r := refs[0]
	if r.APIVersion != "apps/v1" || r.Kind != kind || r.Name != name || string(r.UID) != uid ||
		r.Controller == nil || !*r.Controller || r.BlockOwnerDeletion == nil || !*r.BlockOwnerDeletion {
		t.Errorf("ownerReference %+v, want controller %s %s (%s) blocking deletion", r, kind, name, uid)
	}
}

// waitForEvent waits for an event with reason whose message starts with
// prefix, as kubectl describe would show it.
func waitForEvent(t *testing.T, client kubernetes.Interface, reason, prefix string) {
	t.Helper()
	waitFor(t, "event "+reason+" "+prefix, 10*time.Second, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range l.Items {
			if e.Reason == reason && strings.HasPrefix(e.Message, prefix) {
				return true, nil
			}
		}
		return false, nil
	})
}
