package apiserver

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// A Job deleted without a propagation policy orphans its pods, with
// upstream's warning; one naming a policy gets it and no warning.
func TestJobDeleteOrphansPodsByDefault(t *testing.T) {
	ts := newTestServer(t)
	recorder := &warningRecorder{}
	config := rest.CopyConfig(ts.config)
	config.WarningHandler = recorder
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	jobs := client.BatchV1().Jobs("default")
	for _, name := range []string{"plain", "background"} {
		if _, err := jobs.Create(ctx(t), makeJob(name, corev1.RestartPolicyNever), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	recorder.take()

	if err := jobs.Delete(ctx(t), "plain", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"
	if got := recorder.take(); !slices.Equal(got, []string{want}) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	plain, err := jobs.Get(ctx(t), "plain", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Job waits for the garbage collector to orphan its pods: %v", err)
	}
	if !slices.Contains(plain.Finalizers, metav1.FinalizerOrphanDependents) || plain.DeletionTimestamp == nil {
		t.Errorf("finalizers %v, deletionTimestamp %v: want the orphan finalizer", plain.Finalizers, plain.DeletionTimestamp)
	}

	background := metav1.DeletePropagationBackground
	if err := jobs.Delete(ctx(t), "background", metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		t.Fatal(err)
	}
	if got := recorder.take(); len(got) != 0 {
		t.Errorf("warnings %q for a delete naming its policy", got)
	}
	if _, err := jobs.Get(ctx(t), "background", metav1.GetOptions{}); err == nil {
		t.Error("a Job deleted in the background is still there")
	}
}
