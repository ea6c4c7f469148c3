package apiserver

import (
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkCreateConfigMapParallel measures creates through client-go
// over HTTP on a real bolt store; run with -cpu and -benchtime to vary.
func BenchmarkCreateConfigMapParallel(b *testing.B) {
	ts := newTestServer(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm-", i)}, Data: map[string]string{"k": "v"}}
			if _, err := ts.client.CoreV1().ConfigMaps("default").Create(b.Context(), cm, metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkList5000Pods measures one list of 5,000 pods through client-go.
func BenchmarkList5000Pods(b *testing.B) {
	ts := newTestServer(b)
	pods := ts.client.CoreV1().Pods("default")
	for i := range 5000 {
		if _, err := pods.Create(b.Context(), makePod(fmt.Sprint("p-", i)), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		list, err := pods.List(b.Context(), metav1.ListOptions{})
		if err != nil || len(list.Items) != 5000 {
			b.Fatalf("%v %d", err, len(list.Items))
		}
	}
}

// BenchmarkWatchFanout100 measures how long one write takes to reach 100
// watchers.
func BenchmarkWatchFanout100(b *testing.B) {
	ts := newTestServer(b)
	cms := ts.client.CoreV1().ConfigMaps("default")
	const watchers = 100
	var watches []<-chan watch.Event
	for range watchers {
		w, err := cms.Watch(b.Context(), metav1.ListOptions{ResourceVersion: "1"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Stop)
		watches = append(watches, w.ResultChan())
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := cms.Create(b.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("f-", i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for _, w := range watches {
			<-w
		}
	}
}
