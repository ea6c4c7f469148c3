package endpointslice

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/record"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// BenchmarkThousandReadyPods: a Service over 1,000 ready pods on the real
// API server; the figure is the time from starting the controller to
// 1,000 ready endpoints in 10 slices.
func BenchmarkThousandReadyPods(b *testing.B) {
	const n = 1000
	for b.Loop() {
		b.StopTimer()
		s := apiservertest.Start(b, apiservertest.Options{})
		ctx := context.Background()
		svc := makeService("web").obj()
		svc.UID, svc.Spec.ClusterIP, svc.Spec.IPFamilies = "", "", nil
		if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			p := makePod(fmt.Sprintf("web-%04d", i)).obj()
			p.UID = ""
			created, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			created.Status = podBuilder{created}.ip(fmt.Sprintf("10.42.%d.%d", i/250, i%250+1)).ready(true).obj().Status
			if _, err := s.Client.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		began := time.Now()
		runCtx, cancel := context.WithCancel(ctx)
		factory := informers.NewSharedInformerFactory(s.Client, 0)
		c, err := New(Config{Client: s.Client, Informers: factory, Recorder: record.NewFakeRecorder(100), Workers: 5})
		if err != nil {
			b.Fatal(err)
		}
		factory.Start(runCtx.Done())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(runCtx) }()
		var slices int
		err = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
			if err != nil {
				return false, err
			}
			ready := 0
			for _, sl := range l.Items {
				for _, e := range sl.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
			slices = len(l.Items)
			return ready == n, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(began).Seconds(), "s-to-1000-endpoints")
		b.ReportMetric(float64(slices), "slices")
		b.StopTimer()
		cancel()
		<-done
		factory.Shutdown()
		b.StartTimer()
	}
}
