package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// --default-not-ready-toleration-seconds and
// --default-unreachable-toleration-seconds set what new pods tolerate, as
// upstream's DefaultTolerationSeconds admission does; a pod that states
// its own toleration keeps it.
func TestDefaultTolerationSecondsComeFromTheConfig(t *testing.T) {
	notReady, unreachable := int64(30), int64(0)
	s := apiservertest.Start(t, apiservertest.Options{API: apiserver.Config{
		DefaultNotReadyTolerationSeconds:    &notReady,
		DefaultUnreachableTolerationSeconds: &unreachable,
	}})
	ctx := context.Background()
	own := int64(7)
	pods := map[string][]corev1.Toleration{
		"plain": nil,
		"own": {{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &own}},
	}
	want := map[string]map[string]int64{
		"plain": {corev1.TaintNodeNotReady: 30, corev1.TaintNodeUnreachable: 0},
		"own":   {corev1.TaintNodeNotReady: 30, corev1.TaintNodeUnreachable: 7},
	}
	for name, tolerations := range pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				Containers:  []corev1.Container{{Name: "c", Image: "busybox"}},
				Tolerations: tolerations,
			},
		}
		created, err := s.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, tol := range created.Spec.Tolerations {
			if tol.Effect == corev1.TaintEffectNoExecute && tol.TolerationSeconds != nil {
				got[tol.Key] = *tol.TolerationSeconds
			}
		}
		for key, seconds := range want[name] {
			if v, ok := got[key]; !ok || v != seconds {
				t.Errorf("pod %s: toleration for %s is %d (present %v), want %d", name, key, v, ok, seconds)
			}
		}
		if len(created.Spec.Tolerations) != 2 {
			t.Errorf("pod %s has %d tolerations, want 2: %+v", name, len(created.Spec.Tolerations), created.Spec.Tolerations)
		}
	}
}
