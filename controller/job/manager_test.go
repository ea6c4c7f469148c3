package job_test

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller"
)

// startManager runs the whole controller manager (job controller and
// garbage collector together) on a real API server.
func startManager(t *testing.T) *apiservertest.Server {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	m, err := controller.NewManager(controller.ManagerConfig{RESTConfig: s.Config})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestFinishedJobAndItsPodsGoAfterTTLThroughTheManager(t *testing.T) {
	s := startManager(t)
	ctx := context.Background()
	j := newJob("once", 1, 1, 6)
	j.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	j, err := s.Client.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	poll(t, "the pod", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, s.Client, j)
		return err == nil && len(pods) == 1, err
	})
	setPhase(t, s.Client, pods[0], corev1.PodSucceeded)
	poll(t, "the Job and its pod deleted", func(ctx context.Context) (bool, error) {
		_, err := s.Client.BatchV1().Jobs("default").Get(ctx, "once", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, err
	})
}

func TestDeletingARunningJobDeletesItsPodsThroughTheManager(t *testing.T) {
	s := startManager(t)
	ctx := context.Background()
	j, err := s.Client.BatchV1().Jobs("default").Create(ctx, newJob("long", 2, 2, 6), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the pods", func(ctx context.Context) (bool, error) {
		pods, err := activePods(ctx, s.Client, j)
		return err == nil && len(pods) == 2, err
	})
	// As kubectl delete: background propagation. The pods keep the
	// tracking finalizer until the controller sees their Job is gone.
	if err := s.Client.BatchV1().Jobs("default").Delete(ctx, "long", metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pods gone", func(ctx context.Context) (bool, error) {
		l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=long"})
		return err == nil && len(l.Items) == 0, err
	})
}

func TestPodsOrphanedByTheirJobLoseTheTrackingFinalizer(t *testing.T) {
	s := startManager(t)
	ctx := context.Background()
	j, err := s.Client.BatchV1().Jobs("default").Create(ctx, newJob("kept", 1, 1, 6), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the pod", func(ctx context.Context) (bool, error) {
		pods, err := activePods(ctx, s.Client, j)
		return err == nil && len(pods) == 1, err
	})
	if err := s.Client.BatchV1().Jobs("default").Delete(ctx, "kept", metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	var last corev1.Pod
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last seen: owners %v finalizers %v deletion %v", last.OwnerReferences, last.Finalizers, last.DeletionTimestamp)
		}
	})
	poll(t, "the pod orphaned, without the finalizer", func(ctx context.Context) (bool, error) {
		l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=kept"})
		if err != nil || len(l.Items) != 1 {
			return false, err
		}
		p := l.Items[0]
		last = p
		return len(p.OwnerReferences) == 0 && len(p.Finalizers) == 0, nil
	})
}
