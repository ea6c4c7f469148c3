package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tinykube/tinykube/scheduler/framework"
	schedcache "github.com/tinykube/tinykube/scheduler/internal/cache"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

// BenchmarkDecision1000Nodes measures the scheduling decision alone (filter,
// score, assume) with 1,000 nodes, without any API call: the ceiling the
// scheduler itself puts on throughput. Pods accumulate, 10,000 per run of
// b.N, as in the end-to-end benchmark.
func BenchmarkDecision1000Nodes(b *testing.B) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := New(Config{Client: client, Informers: factory})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pods := make([]*podAndState, 10000)
	for i := range pods {
		pods[i] = &podAndState{pod: st.MakePod().Name(fmt.Sprintf("pod-%d", i)).
			Owner("ReplicaSet", fmt.Sprintf("rs-%d", i%100), fmt.Sprintf("rs-uid-%d", i%100)).
			Req("cpu", "100m", "memory", "100Mi").Obj()}
	}
	b.ResetTimer()
	start := time.Now()
	decisions := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s.cache = freshCache(1000)
		b.StartTimer()
		for _, p := range pods {
			state := framework.NewCycleState()
			host, err := s.schedulePod(ctx, state, p.pod)
			if err != nil {
				b.Fatal(err)
			}
			pi := *state.PodInfo(p.pod)
			assumed := p.pod.DeepCopy()
			assumed.Spec.NodeName = host
			pi.Pod = assumed
			s.cache.AssumePod(&pi)
			decisions++
		}
	}
	b.ReportMetric(float64(decisions)/time.Since(start).Seconds(), "decisions/s")
}

type podAndState struct {
	pod *corev1.Pod
}

func freshCache(nodes int) *schedcache.Cache {
	c := schedcache.New()
	for i := range nodes {
		c.AddNode(st.MakeNode().Name(fmt.Sprintf("node-%d", i)).Capacity("cpu", "32", "memory", "128Gi", "pods", "110").Obj())
	}
	return c
}
