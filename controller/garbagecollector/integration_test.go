package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &t, BlockOwnerDeletion: &t}
}

var webLabels = map[string]string{"app": "web"}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}}
}

// chain is a Deployment-like owner chain made by hand, as the deployment
// and replicaset controllers would make it: deploy -> rs -> 2 pods.
type chain struct {
	deploy *appsv1.Deployment
	rs     *appsv1.ReplicaSet
	pods   []*corev1.Pod
}

func createChain(t *testing.T, cs kubernetes.Interface, name string) chain {
	t.Helper()
	ctx := context.Background()
	two := int32(2)
	d, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: webLabels}, Spec: podSpec()}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cs.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-7d9f", OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.Name, d.UID)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: webLabels}, Spec: podSpec()}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := chain{deploy: d, rs: rs}
	for i := range 2 {
		p, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", rs.Name, i), Labels: webLabels,
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
			Spec: podSpec(),
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.pods = append(c.pods, p)
	}
	return c
}

// exists tells which of the chain's objects are still stored.
func (c chain) exists(ctx context.Context, cs kubernetes.Interface) (deploy, rs bool, pods int, err error) {
	check := func(err error) (bool, error) {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	if deploy, err = check(get(cs.AppsV1().Deployments("default").Get(ctx, c.deploy.Name, metav1.GetOptions{}))); err != nil {
		return
	}
	if rs, err = check(get(cs.AppsV1().ReplicaSets("default").Get(ctx, c.rs.Name, metav1.GetOptions{}))); err != nil {
		return
	}
	for _, p := range c.pods {
		var ok bool
		if ok, err = check(get(cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{}))); err != nil {
			return
		}
		if ok {
			pods++
		}
	}
	return
}

func get[T any](_ T, err error) error { return err }

// rawDelete deletes the Deployment with a propagation policy and returns
// what the API server answered (the object while it waits on finalizers).
func rawDelete(t *testing.T, cs kubernetes.Interface, name string, policy metav1.DeletionPropagation) *appsv1.Deployment {
	t.Helper()
	obj, err := cs.AppsV1().RESTClient().Delete().Namespace("default").Resource("deployments").Name(name).
		Body(&metav1.DeleteOptions{PropagationPolicy: &policy}).Do(context.Background()).Get()
	if err != nil {
		t.Fatalf("delete %s (%s): %v", name, policy, err)
	}
	d, _ := obj.(*appsv1.Deployment)
	return d
}

func startCollector(t testing.TB, s *apiservertest.Server) { startCollectorWorkers(t, s, 2) }

func startCollectorWorkers(t testing.TB, s *apiservertest.Server, workers int) {
	t.Helper()
	md, err := metadata.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Client: s.Client, Metadata: md, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCascadingDeletionOnTheRealAPIServer(t *testing.T) {
	tests := []struct {
		policy metav1.DeletionPropagation
		// finalizer the API server must put on the Deployment ("" none:
		// it is deleted at once).
		finalizer string
		// what must be left in the end
		wantRS   bool
		wantPods int
	}{
		{metav1.DeletePropagationBackground, "", false, 0},
		{metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents, false, 0},
		{metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents, true, 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			s := apiservertest.Start(t, apiservertest.Options{})
			ctx := context.Background()
			c := createChain(t, s.Client, "web")

			// Before any collector runs: what the API server does with
			// the propagation policy alone.
			answered := rawDelete(t, s.Client, "web", tt.policy)
			if tt.finalizer == "" {
				if _, err := s.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Fatalf("background delete: Deployment still there (%v)", err)
				}
			} else {
				if answered == nil || answered.DeletionTimestamp == nil || !slices.Contains(answered.Finalizers, tt.finalizer) {
					t.Fatalf("%s delete answered %+v, want the Deployment with deletionTimestamp and finalizer %s", tt.policy, answered, tt.finalizer)
				}
				stored, err := s.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
				if err != nil || stored.DeletionTimestamp == nil || !slices.Contains(stored.Finalizers, tt.finalizer) {
					t.Fatalf("%s delete stored %+v (%v), want deletionTimestamp and finalizer %s", tt.policy, stored, err, tt.finalizer)
				}
			}

			startCollector(t, s)
			err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
				d, rs, pods, err := c.exists(ctx, s.Client)
				return !d && rs == tt.wantRS && pods == tt.wantPods, err
			})
			if err != nil {
				d, rs, pods, _ := c.exists(ctx, s.Client)
				t.Fatalf("after %s delete: deployment %v, replicaset %v, pods %d; want false, %v, %d", tt.policy, d, rs, pods, tt.wantRS, tt.wantPods)
			}
			if tt.wantRS {
				rs, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, c.rs.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(rs.OwnerReferences) != 0 {
					t.Errorf("orphaned ReplicaSet still has ownerReferences %v", rs.OwnerReferences)
				}
				pod, err := s.Client.CoreV1().Pods("default").Get(ctx, c.pods[0].Name, metav1.GetOptions{})
				if err != nil || len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != rs.UID {
					t.Errorf("orphaning the Deployment changed the pods' owner: %v %v", pod.OwnerReferences, err)
				}
			}
		})
	}
}

func TestForegroundDeletionWaitsForBlockingDependents(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	c := createChain(t, s.Client, "web")
	// A pod that cannot go yet: it has a finalizer of its own.
	pod, err := s.Client.CoreV1().Pods("default").Get(ctx, c.pods[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Finalizers = []string{"example.com/hold"}
	if _, err := s.Client.CoreV1().Pods("default").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	startCollector(t, s)
	rawDelete(t, s.Client, "web", metav1.DeletePropagationForeground)

	// The other pod goes; the held one is marked; owners wait.
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := s.Client.CoreV1().Pods("default").Get(ctx, c.pods[0].Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, other := s.Client.CoreV1().Pods("default").Get(ctx, c.pods[1].Name, metav1.GetOptions{})
		return p.DeletionTimestamp != nil && apierrors.IsNotFound(other), nil
	})
	if err != nil {
		t.Fatalf("foreground delete did not reach the pods: %v", err)
	}
	rs, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, c.rs.Name, metav1.GetOptions{})
	if err != nil || rs.DeletionTimestamp == nil || !slices.Contains(rs.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("ReplicaSet %+v (%v): want it waiting in foreground deletion", rs.ObjectMeta, err)
	}
	if _, err := s.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("Deployment gone while a blocking dependent remains: %v", err)
	}

	// Release the pod: everything goes.
	pod, err = s.Client.CoreV1().Pods("default").Get(ctx, c.pods[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Finalizers = nil
	if _, err := s.Client.CoreV1().Pods("default").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		d, rs, pods, err := c.exists(ctx, s.Client)
		return !d && !rs && pods == 0, err
	})
	if err != nil {
		t.Fatalf("chain not removed after the pod was released: %v", err)
	}
}

func TestDependentWithALiveOwnerStays(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	c := createChain(t, s.Client, "web")
	cm, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "two-owners",
		OwnerReferences: []metav1.OwnerReference{
			controllerRef("apps/v1", "ReplicaSet", c.rs.Name, c.rs.UID),
			{APIVersion: "v1", Kind: "ConfigMap", Name: "gone", UID: "00000000-0000-0000-0000-000000000001"},
		}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startCollector(t, s)
	// The reference to the missing owner is dropped; the object stays.
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		return err == nil && len(got.OwnerReferences) == 1 && got.OwnerReferences[0].UID == c.rs.UID, err
	})
	if err != nil {
		t.Fatalf("dangling reference not removed: %v", err)
	}
	if _, rs, pods, err := c.exists(ctx, s.Client); err != nil || !rs || pods != 2 {
		t.Errorf("objects with live owners were deleted: rs %v pods %d (%v)", rs, pods, err)
	}
}

func TestCollectorSurvivesAnAPIServerRestart(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	c := createChain(t, s.Client, "web")
	startCollector(t, s)
	s.Restart()
	if err := s.Client.AppsV1().Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		d, rs, pods, err := c.exists(ctx, s.Client)
		return !d && !rs && pods == 0, err
	})
	if err != nil {
		d, rs, pods, _ := c.exists(ctx, s.Client)
		t.Fatalf("after restart and delete: deployment %v, replicaset %v, pods %d; want all gone", d, rs, pods)
	}
}
