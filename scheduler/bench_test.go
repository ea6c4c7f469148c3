package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	st "github.com/tinykube/tinykube/scheduler/testing"
)

// BenchmarkSchedule1000Nodes10000Pods measures pods bound per second end to
// end through the API: from the first pod create to the last pod observed
// with spec.nodeName, with 1,000 Node objects and 10,000 pending pods
// created by 64 concurrent clients. Run with -benchtime=1x.
func BenchmarkSchedule1000Nodes10000Pods(b *testing.B) {
	benchmarkSchedule(b, 1000, 10000)
}

// BenchmarkSchedule100Nodes2000Pods is a quicker variant.
func BenchmarkSchedule100Nodes2000Pods(b *testing.B) {
	benchmarkSchedule(b, 100, 2000)
}

func benchmarkSchedule(b *testing.B, numNodes, numPods int) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := apiservertest.Start(b, apiservertest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		createParallel(b, numNodes, func(i int) error {
			n := st.MakeNode().Name(fmt.Sprintf("node-%d", i)).Capacity("cpu", "32", "memory", "128Gi", "pods", "110").Obj()
			n.UID = ""
			status := n.Status
			created, err := s.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			created.Status = status
			_, err = s.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
			return err
		})

		// Protobuf, as kube-scheduler talks to the API server.
		pcfg := rest.CopyConfig(s.Config)
		pcfg.ContentType = "application/vnd.kubernetes.protobuf"
		pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		client := kubernetes.NewForConfigOrDie(pcfg)
		factory := informers.NewSharedInformerFactory(client, 0)
		sched, err := New(Config{Client: client, Informers: factory})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = sched.Run(ctx) }()
		<-sched.Ready()

		// An independent watcher counts bound pods, as `kubectl get pods
		// --field-selector spec.nodeName!= -w` would.
		watchFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName!="
		}))
		var bound atomic.Int64
		allBound := make(chan struct{})
		seen := sync.Map{}
		_, _ = watchFactory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				p := obj.(*corev1.Pod)
				if p.Spec.NodeName == "" {
					return
				}
				if _, dup := seen.LoadOrStore(p.UID, true); !dup && bound.Add(1) == int64(numPods) {
					close(allBound)
				}
			},
		})
		watchFactory.Start(ctx.Done())
		watchFactory.WaitForCacheSync(ctx.Done())

		b.StartTimer()
		cpuStart := processCPU()
		start := time.Now()
		createParallel(b, numPods, func(i int) error {
			p := st.MakePod().Name(fmt.Sprintf("pod-%d", i)).Owner("ReplicaSet", fmt.Sprintf("rs-%d", i%100), fmt.Sprintf("rs-uid-%d", i%100)).
				Req("cpu", "100m", "memory", "100Mi").Obj()
			p.UID = ""
			_, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
			return err
		})
		created := time.Since(start)
		select {
		case <-allBound:
		case <-time.After(10 * time.Minute):
			b.Fatalf("only %d of %d pods bound", bound.Load(), numPods)
		}
		elapsed := time.Since(start)
		cpu := processCPU() - cpuStart
		b.StopTimer()
		// CPU spent by the whole process (API server, store, scheduler,
		// clients) per pod, and what that allows on 2 otherwise idle cores.
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(numPods), "cpu-ms/pod")
		b.ReportMetric(2*float64(numPods)/cpu.Seconds(), "pods/s-at-2-idle-cores")
		b.ReportMetric(float64(numPods)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(numPods)/created.Seconds(), "creates/s")
		b.ReportMetric(elapsed.Seconds(), "s/total")
		cancel()
		<-done
		factory.Shutdown()
		watchFactory.Shutdown()
		s.Stop()
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// creators is how many clients create objects at once.
const creators = 64

func createParallel(b *testing.B, n int, create func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, creators)
	for range creators {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := create(i); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
