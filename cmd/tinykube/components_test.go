package main

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// waitFor watches w until cond holds for an event's object, or the
// deadline passes.
func waitFor[T any](t *testing.T, w watch.Interface, what string, cond func(T) bool) T {
	t.Helper()
	defer w.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended before %s", what)
			}
			if obj, ok := ev.Object.(T); ok && cond(obj) {
				return obj
			}
		case <-deadline:
			t.Fatalf("no %s after 20s", what)
		}
	}
}

// TestServerRunsControllers checks the in-process controllers work through
// the server's own authentication, as a user sees it: a new namespace gets
// its default ServiceAccount, and a node gets a pod CIDR from
// --cluster-cidr.
func TestServerRunsControllers(t *testing.T) {
	p := startServer(t, t.TempDir())
	cs, err := kubernetes.NewForConfig(p.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ServiceAccounts("team-a").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "default").String()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, "default ServiceAccount in team-a", func(*corev1.ServiceAccount) bool { return true })

	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err = cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "node-a").String()})
	if err != nil {
		t.Fatal(err)
	}
	n := waitFor(t, w, "pod CIDR on node-a", func(n *corev1.Node) bool { return n.Spec.PodCIDR != "" })
	if n.Spec.PodCIDR != "10.42.0.0/24" {
		t.Errorf("node-a pod CIDR %s, want the first /24 of 10.42.0.0/16", n.Spec.PodCIDR)
	}

	// A ready node, as a kubelet would report it, and a Deployment: the
	// deployment and replicaset controllers make the pods, the scheduler
	// places them.
	n.Status = corev1.NodeStatus{
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	_, err = cs.AppsV1().Deployments("team-a").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "tinykube.test/web:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods("team-a").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err = cs.CoreV1().Pods("team-a").Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]bool{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "node-a" {
			bound[p.Name] = true
		}
	}
	if len(bound) < 2 {
		waitFor(t, w, "two pods bound to node-a", func(p *corev1.Pod) bool {
			if p.Spec.NodeName == "node-a" {
				bound[p.Name] = true
			}
			return len(bound) == 2
		})
	}
}
