package proxy

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/tinykube/tinykube/internal/netlab"
)

// largeCluster returns n ClusterIP Services with eps endpoints each (the
// odd ones NodePort).
func largeCluster(n, eps int) []runtime.Object {
	objs := make([]runtime.Object, 0, 2*n)
	for i := range n {
		name := "svc-" + strconv.Itoa(i)
		ip := "10.43." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1)
		b := makeService("bench", name).clusterIP(ip)
		if i%2 == 1 {
			b = b.typ("NodePort").port("http", 80, 8080, int32(30000+i))
		} else {
			b = b.port("http", 80, 8080, 0)
		}
		objs = append(objs, b.obj(),
			makeSlice("bench", name, name+"-1").port("http", 8080).endpoints(i*eps, eps, "node-"+strconv.Itoa(i%3)).obj())
	}
	return objs
}

// realNFTInLab returns a knftables.Interface that runs nft in a fresh
// network namespace of the lab.
func realNFTInLab(b testing.TB) knftables.Interface {
	b.Helper()
	lab := netlab.New(b)
	node := lab.AddNS("node")
	b.Setenv("PATH", node.NFTWrapper()+":"+os.Getenv("PATH"))
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err != nil {
		b.Fatal(err)
	}
	return nft
}

// BenchmarkSync5000x10 measures, with the real nft in a lab namespace and
// 5,000 Services of 10 endpoints: a full sync (the whole table rebuilt),
// and a partial sync after one endpoint of one Service changed.
func BenchmarkSync5000x10(b *testing.B) {
	objs := largeCluster(5000, 10)
	cfg := testConfig()
	tp := newTestProxier(b, cfg, objs...)
	tp.nft = nil
	tp.Proxier.nft = realNFTInLab(b)
	ctx := context.Background()

	b.Run("full", func(b *testing.B) {
		var ops int
		cpu := cpuTime(b)
		for b.Loop() {
			tp.mu.Lock()
			tp.needFull = true
			tp.mu.Unlock()
			st := tp.Sync(ctx)
			if st.Err != nil {
				b.Fatal(st.Err)
			}
			ops = st.Operations
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sync")
		b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/sync")
		b.ReportMetric(float64(ops), "nft-ops")
	})
	b.Run("one-service-change", func(b *testing.B) {
		i := 0
		cpu := cpuTime(b)
		for b.Loop() {
			b.StopTimer()
			i++
			// endpoints 5..14 or 4..13 of svc-42: one chain in, one out
			s := makeSlice("bench", "svc-42", "svc-42-1").port("http", 8080).endpoints(420+i%2, 10, "node-0").obj()
			if err := tp.slices.Update(s); err != nil {
				b.Fatal(err)
			}
			tp.markDirty(types.NamespacedName{Namespace: "bench", Name: "svc-42"})
			b.StartTimer()
			st := tp.Sync(ctx)
			if st.Err != nil || st.Full {
				b.Fatalf("sync: %+v", st)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/sync")
		// includes updating the informer store, outside the timer
		b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/sync")
	})
}

// cpuTime is the user and system CPU time used so far by this process and
// its finished children (nft): on a shared machine it varies less than the
// wall-clock time.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}
