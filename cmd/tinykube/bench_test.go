package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinykube/tinykube/server"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkServerStartToReady measures what a user waits for after a
// restart: exec of `tinykube server` on an existing data dir until the ready
// line. It also reports the resident memory (VmRSS) at that moment.
func BenchmarkServerStartToReady(b *testing.B) {
	dataDir := b.TempDir()
	first := startServer(b, dataDir)
	if err := first.stop(b); err != nil {
		b.Fatal(err)
	}
	var total, rss float64
	for b.Loop() {
		p := startServer(b, dataDir)
		total += p.readyAfter.Seconds()
		rss = max(rss, vmRSSMiB(b, p.cmd.Process.Pid))
		if err := p.stop(b); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total/float64(b.N)*1000, "ms-to-ready")
	b.ReportMetric(rss, "MiB-rss-at-ready")
}

func vmRSSMiB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkServerStartToReady10kPods is the same with 10,000 pods stored:
// start-up must not grow with the data, and the figure of idle memory with
// a realistic store.
func BenchmarkServerStartToReady10kPods(b *testing.B) {
	dataDir := b.TempDir()
	first := startServer(b, dataDir)
	createPods(b, first, 10000)
	if err := first.stop(b); err != nil {
		b.Fatal(err)
	}
	var total, rss float64
	for b.Loop() {
		p := startServer(b, dataDir)
		total += p.readyAfter.Seconds()
		// Memory after a full list, as once informers have synced.
		cs := p.clientset(b)
		if _, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		rss = max(rss, vmRSSMiB(b, p.cmd.Process.Pid))
		if err := p.stop(b); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total/float64(b.N)*1000, "ms-to-ready")
	b.ReportMetric(rss, "MiB-rss-after-list")
}

// createPods creates n pods in default with 32 concurrent clients.
func createPods(b *testing.B, p *serverProcess, n int) {
	b.Helper()
	cs := p.clientset(b)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := cs.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Labels: map[string]string{"app": "bench"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "tinykube.test/web:1"}}},
				}, metav1.CreateOptions{})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// BenchmarkServerIdleRSS is the resident memory of an idle API server with
// its controllers (--disable-agent), 5 s after start-up memory was given
// back: the figure a user reads in top.
func BenchmarkServerIdleRSS(b *testing.B) {
	var rss float64
	for b.Loop() {
		p := startServer(b, b.TempDir())
		time.Sleep(server.ReleaseStartupMemoryAfter + 5*time.Second) // the measurement's idle period
		rss = max(rss, vmRSSMiB(b, p.cmd.Process.Pid))
		if err := p.stop(b); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rss, "MiB-rss-idle")
}
