package apiserver

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
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

// BenchmarkObjectLatency measures single-object create, get and update of
// ConfigMaps through a typed client-go client (no client rate limit) with
// 1 and 32 concurrent clients, and reports p50/p99 latency and throughput.
func BenchmarkObjectLatency(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, verb := range []string{"create", "get", "update"} {
			b.Run(fmt.Sprintf("%s/clients=%d", verb, clients), func(b *testing.B) {
				ts := newTestServer(b)
				config := *ts.config
				config.QPS = -1
				client, err := kubernetes.NewForConfig(&config)
				if err != nil {
					b.Fatal(err)
				}
				cms := client.CoreV1().ConfigMaps("default")
				names := make([]string, clients)
				for i := range names {
					names[i] = fmt.Sprint("cm-", i)
					if verb != "create" {
						cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: names[i]}, Data: map[string]string{"k": "v"}}
						if _, err := cms.Create(b.Context(), cm, metav1.CreateOptions{}); err != nil {
							b.Fatal(err)
						}
					}
				}
				var next atomic.Int64
				durations := make([]time.Duration, b.N)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							began := time.Now()
							var err error
							switch verb {
							case "create":
								cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("new-", i)}, Data: map[string]string{"k": "v"}}
								_, err = cms.Create(b.Context(), cm, metav1.CreateOptions{})
							case "get":
								_, err = cms.Get(b.Context(), names[c], metav1.GetOptions{})
							case "update":
								cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: names[c]}, Data: map[string]string{"k": fmt.Sprint(i)}}
								_, err = cms.Update(b.Context(), cm, metav1.UpdateOptions{})
							}
							durations[i] = time.Since(began)
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				slices.Sort(durations)
				b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
			})
		}
	}
}
