package garbagecollector

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// BenchmarkCascadeThousandPods: a ReplicaSet owning 1,000 pods is deleted
// (background); the figure is the time until the collector has removed
// every pod.
func BenchmarkCascadeThousandPods(b *testing.B) {
	const n = 1000
	for b.Loop() {
		b.StopTimer()
		s := apiservertest.Start(b, apiservertest.Options{})
		ctx := context.Background()
		replicas := int32(n)
		rs, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: webLabels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: webLabels}, Spec: podSpec()}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := s.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%04d", i), Labels: webLabels,
					OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
				Spec: podSpec(),
			}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		startCollectorWorkers(b, s, 20) // the manager's worker count
		// Wait until the collector has seen everything (it deletes
		// nothing while the owner lives), then delete the owner.
		<-time.After(500 * time.Millisecond)
		b.StartTimer()
		began := time.Now()
		if err := s.Client.AppsV1().ReplicaSets("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, err
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(began).Seconds(), "s-to-delete-1000-pods")
	}
}
