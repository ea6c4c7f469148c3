package deployment_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// BenchmarkDeployment1000 measures how long a Deployment of 1,000 replicas
// takes from create until 1,000 Pod objects are listed (the deployment
// and replicaset controllers against the real API server on bbolt, no
// scheduler), and then the process CPU time used over an idle period
// when nothing changes.
//
// Sub-benchmarks vary the controllers' client: its rate limit (qps5000 is
// the test server's client, qps100 what `tinykube server` gives its
// in-process components) and its encoding (JSON, or protobuf as upstream's
// kube-controller-manager uses).
func BenchmarkDeployment1000(b *testing.B) {
	for _, lim := range []struct {
		name  string
		qps   float32
		burst int
		proto bool
	}{
		{"qps5000-json", 5000, 5000, false},
		{"qps5000-protobuf", 5000, 5000, true},
		{"qps100-json", 100, 200, false},
	} {
		b.Run(lim.name, func(b *testing.B) { benchmarkDeployment1000(b, lim.qps, lim.burst, lim.proto) })
	}
}

func benchmarkDeployment1000(b *testing.B, qps float32, burst int, proto bool) {
	const replicas = 1000
	const idle = 3 * time.Second
	var total, cpu time.Duration
	for range b.N {
		s := apiservertest.Start(b, apiservertest.Options{})
		cfg := rest.CopyConfig(s.Config)
		cfg.QPS, cfg.Burst = qps, burst
		if proto {
			cfg.ContentType = "application/vnd.kubernetes.protobuf"
			cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		stop := startControllers(b, client)
		ctx := context.Background()
		// Count pods from a watch rather than by listing 1,000 pods in a
		// loop, which would cost more than what is measured.
		w, err := s.Client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, nginx(replicas).obj(), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		deadline := time.After(60 * time.Second)
		for added := 0; added < replicas; {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					b.Fatal("watch closed")
				}
				if ev.Type == watch.Added {
					added++
				}
			case <-deadline:
				b.Fatal("no 1000 pods after 60s")
			}
		}
		w.Stop()
		l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != replicas {
			b.Fatalf("listed %d pods (%v)", len(l.Items), err)
		}
		total += time.Since(start)

		// Settle: every status written, then nothing left to do.
		waitFor(b, "settled status", 60*time.Second, func(ctx context.Context) (bool, error) {
			d, err := getDeployment(ctx, s.Client, "nginx-deployment")
			if err != nil {
				return false, err
			}
			return d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == replicas && d.Status.UpdatedReplicas == replicas, nil
		})
		before := cpuTime()
		time.Sleep(idle) // the measurement window, not synchronisation
		cpu += cpuTime() - before
		stop()
		s.Stop()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-1000-pods")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N)/idle.Seconds(), "idle-cpu-ms/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
