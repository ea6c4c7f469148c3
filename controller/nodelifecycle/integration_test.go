package nodelifecycle

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func TestUnreachableNodeOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	cs := s.Client
	clk := clocktesting.NewFakeClock(t0)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, corev1.NamespaceNodeLease, metav1.GetOptions{}); err != nil {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: corev1.NamespaceNodeLease}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Log("API server gap: namespace kube-node-lease is not created at bootstrap")
	}
	for _, name := range []string{"n1", "n2"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, readyNode(name, t0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease(name, t0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range scenarioObjects(clk) {
		pod, ok := p.(*corev1.Pod)
		if !ok {
			continue
		}
		status := pod.Status
		pod.UID = ""
		switch pod.Name {
		case "default-tol":
			// The API server's admission adds these, as upstream's
			// DefaultTolerationSeconds plugin.
			pod.Spec.Tolerations = nil
		case "intolerant":
			// Admission would give it the defaults; zero seconds is
			// how a pod asks to leave at once.
			pod = makePod("intolerant", "n1").tolerate(corev1.TaintNodeUnreachable, seconds(0)).tolerate(corev1.TaintNodeNotReady, seconds(0)).obj()
			pod.UID = ""
		}
		created, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pod.Name == "default-tol" {
			if got := len(created.Spec.Tolerations); got != 2 {
				t.Errorf("pod created without tolerations got %d default tolerations, want 2 (not-ready, unreachable)", got)
			}
		}
		created.Status = status
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	renew(t, cs, clk)
	rec := start(t, cs, clk)
	unreachableScenario(t, cs, clk, rec)
}
