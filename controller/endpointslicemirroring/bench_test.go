package endpointslicemirroring

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func addresses(n, offset int) []string {
	out := make([]string, n)
	for i := range out {
		j := i + offset
		out[i] = fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255+1)
	}
	return out
}

// BenchmarkMirror computes the slices of one Endpoints of 1000 addresses.
func BenchmarkMirror(b *testing.B) {
	ep := makeEndpoints("ext").subset(addresses(800, 0), addresses(200, 1000), port("http", 80)).obj()
	b.ReportAllocs()
	for b.Loop() {
		if d := mirror(ep, MaxEndpointsPerSubset); len(d.groups) != 1 {
			b.Fatal(len(d.groups))
		}
	}
}

// BenchmarkMirrorLatencyOnTheRealAPIServer: a user updates an Endpoints of
// 1000 addresses; how long until the mirrored slice shows the change.
func BenchmarkMirrorLatencyOnTheRealAPIServer(b *testing.B) {
	s := apiservertest.Start(b, apiservertest.Options{})
	ctx := context.Background()
	svc := makeService("ext")
	svc.UID = ""
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	ep := makeEndpoints("ext").subset(addresses(1000, 0), nil, port("http", 80)).obj()
	ep.UID = ""
	ep, err := s.Client.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	start(b, s.Client, 0)
	var total time.Duration
	i := 0
	for b.Loop() {
		i++
		want := addresses(1, 5000+i)[0]
		ep.Subsets[0].Addresses[0] = corev1.EndpointAddress{IP: want}
		t0 := time.Now()
		if ep, err = s.Client.CoreV1().Endpoints("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, items, err := view(ctx, s.Client, "ext")
			if err != nil || len(items) != 1 {
				return false, err
			}
			for _, e := range items[0].Endpoints {
				if e.Addresses[0] == want {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			b.Fatalf("update %d not mirrored: %v", i, err)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(i), "ms/mirror")
}
