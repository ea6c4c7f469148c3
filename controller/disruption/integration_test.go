package disruption_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller"
	"github.com/tinykube/tinykube/controller/disruption"
)

const budgetRefusal = "Cannot evict pod as it would violate the pod's disruption budget."

func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	return startClusterOn(t, apiservertest.Start(t, apiservertest.Options{}))
}

// startClusterOn runs the controller manager against s until the test
// ends.
func startClusterOn(t *testing.T, s *apiservertest.Server) kubernetes.Interface {
	t.Helper()
	m, err := controller.NewManager(controller.ManagerConfig{RESTConfig: s.Config})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Client
}

func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// livePods lists the web pods that are not being deleted.
func livePods(ctx context.Context, client kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live, nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// makeReady does what a kubelet would: the pods run and are ready. It
// returns how many pods are ready.
func makeReady(ctx context.Context, client kubernetes.Interface, pods []corev1.Pod) (int, error) {
	n := 0
	for i := range pods {
		p := &pods[i]
		if !ready(p) {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
			if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					continue
				}
				return 0, err
			}
		}
		n++
	}
	return n, nil
}

func evict(ctx context.Context, client kubernetes.Interface, name string) error {
	return client.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
}

// createWeb creates the Deployment "web" and a budget "web" over its
// pods with spec (its selector filled in).
func createWeb(t *testing.T, client kubernetes.Interface, spec policyv1.PodDisruptionBudgetSpec) {
	t.Helper()
	createDeployment(t, client, 30)
	spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: spec}
	if _, err := client.PolicyV1().PodDisruptionBudgets("default").Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createDeployment creates the Deployment "web" of 3 pods labelled
// app=web, with the given termination grace period.
func createDeployment(t *testing.T, client kubernetes.Interface, grace int64) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{Name: "web", Image: "web:1"}}}}},
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestEvictionsKeepADeploymentWithinItsBudget(t *testing.T) {
	client := startCluster(t)
	ctx := context.Background()
	createWeb(t, client, policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2))})

	poll(t, "3 ready pods", func(ctx context.Context) (bool, error) {
		pods, err := livePods(ctx, client)
		if err != nil || len(pods) != 3 {
			return false, err
		}
		n, err := makeReady(ctx, client, pods)
		return n == 3, err
	})
	poll(t, "the budget to allow 1 disruption", func(ctx context.Context) (bool, error) {
		got, err := client.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return st.ObservedGeneration == got.Generation && st.CurrentHealthy == 3 && st.DesiredHealthy == 2 &&
			st.ExpectedPods == 3 && st.DisruptionsAllowed == 1, nil
	})

	pods, err := livePods(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	first, second := pods[0].Name, pods[1].Name
	if err := evict(ctx, client, first); err != nil {
		t.Fatalf("first eviction: %v", err)
	}
	err = evict(ctx, client, second)
	if !apierrors.IsTooManyRequests(err) || err.Error() != budgetRefusal {
		t.Fatalf("second eviction: %v, want 429 %q", err, budgetRefusal)
	}
	// The replacement is created but not ready: still refused.
	poll(t, "a replacement pod", func(ctx context.Context) (bool, error) {
		pods, err := livePods(ctx, client)
		return len(pods) == 3, err
	})
	err = evict(ctx, client, second)
	if !apierrors.IsTooManyRequests(err) || err.Error() != budgetRefusal {
		t.Fatalf("eviction before the replacement is ready: %v", err)
	}
	pods, err = livePods(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makeReady(ctx, client, pods); err != nil {
		t.Fatal(err)
	}
	poll(t, "the second eviction to be allowed once the replacement is ready", func(ctx context.Context) (bool, error) {
		err := evict(ctx, client, second)
		if apierrors.IsTooManyRequests(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// TestDrainEvictsEveryPodOneDisruptionAtATime is kubectl drain's loop:
// evict each pod, retrying on 429, while replacements become ready.
func TestDrainEvictsEveryPodOneDisruptionAtATime(t *testing.T) {
	client := startCluster(t)
	ctx := context.Background()
	createWeb(t, client, policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))})
	var drained []corev1.Pod
	poll(t, "3 ready pods", func(ctx context.Context) (bool, error) {
		pods, err := livePods(ctx, client)
		if err != nil || len(pods) != 3 {
			return false, err
		}
		drained = pods
		n, err := makeReady(ctx, client, pods)
		return n == 3, err
	})

	refusals := 0
	for _, p := range drained {
		poll(t, "evicting "+p.Name, func(ctx context.Context) (bool, error) {
			err := evict(ctx, client, p.Name)
			if apierrors.IsTooManyRequests(err) {
				refusals++
				// The kubelet's part: replacements start and get ready.
				pods, err := livePods(ctx, client)
				if err != nil {
					return false, err
				}
				_, err = makeReady(ctx, client, pods)
				return false, err
			}
			return err == nil, err
		})
		pods, err := livePods(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range pods {
			if ready(&pods[i]) {
				n++
			}
		}
		if n < 2 {
			t.Fatalf("after evicting %s only %d pods are ready; the budget allows 1 unavailable of 3", p.Name, n)
		}
	}
	if refusals == 0 {
		t.Fatal("no eviction was refused; the budget was not consulted")
	}
	for _, p := range drained {
		if _, err := client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("drained pod %s: %v", p.Name, err)
		}
	}
}

// An eviction whose delete never happened leaves a DisruptionTarget
// condition; the controller resets it once stale, through a server-side
// apply of the pod's status.
func TestStaleDisruptionTargetIsResetOnTheRealAPIServer(t *testing.T) {
	client := startCluster(t)
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "left", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c:1"}}}}
	p, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI",
		Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(time.Now().Add(-disruption.StalePodDisruptionTimeout - time.Minute))}}
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the DisruptionTarget condition to be reset", func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods("default").Get(ctx, "left", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.DisruptionTarget {
				return c.Status == corev1.ConditionFalse, nil
			}
		}
		return false, nil
	})
}
