package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkPodStartup measures create → Running and Ready with the image
// present, for one pod at a time and for 30 created at once, and reports
// p50/p99 in milliseconds, plus the node's memory: containerd's RSS and the
// containerd shims' RSS per running pod.
//
//	go test -run '^$' -bench PodStartup -benchtime 20x ./kubelet/
func BenchmarkPodStartup(b *testing.B) {
	for _, pods := range []int{1, 30} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			n := startNode(b, nil)
			var lat []time.Duration
			var shimRSS, containerdRSS int64
			for i := 0; i < b.N; i++ {
				got := n.startPods(b, i, pods)
				lat = append(lat, got...)
				if i == b.N-1 {
					shimRSS = rssOf("containerd-shim") / int64(pods)
					containerdRSS = rssOfPidfile(n.dataDir)
				}
				b.StopTimer()
				n.deleteAll(b)
				b.StartTimer()
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 {
				idx := int(float64(len(lat)-1) * p)
				return float64(lat[idx].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(containerdRSS)/(1<<20), "containerd-MiB")
			b.ReportMetric(float64(shimRSS)/(1<<20), "shim-MiB/pod")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "test-process-heap-MiB")
		})
	}
}

// startPods creates count server pods at once and returns each one's time
// from its create call to the watch event showing it Running and Ready.
func (n *testNode) startPods(b *testing.B, round, count int) []time.Duration {
	ctx := context.Background()
	w, err := n.client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	created := make([]time.Time, count)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPod(fmt.Sprintf("bench-%d-%d", round, i), testimage.ServerRef).obj()
			p.Labels["bench"] = strconv.Itoa(i)
			mu.Lock()
			created[i] = time.Now()
			mu.Unlock()
			if _, err := n.client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	lat := make([]time.Duration, count)
	done := 0
	timeout := time.After(120 * time.Second)
	for done < count {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("watch closed")
			}
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			p := ev.Object.(*corev1.Pod)
			i, err := strconv.Atoi(p.Labels["bench"])
			if err != nil || !strings.HasPrefix(p.Name, fmt.Sprintf("bench-%d-", round)) || lat[i] != 0 || !podReady(p) {
				continue
			}
			mu.Lock()
			lat[i] = time.Since(created[i])
			mu.Unlock()
			done++
		case <-timeout:
			b.Fatalf("only %d of %d pods Ready after 120s", done, count)
		}
	}
	return lat
}

// deleteAll deletes every pod and waits until the node has cleaned up.
func (n *testNode) deleteAll(b *testing.B) {
	ctx := context.Background()
	if err := n.client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	err := waitFor(120*time.Second, func() bool {
		pods, err := n.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		uids, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "cni", "netns"))
		return err == nil && len(pods.Items) == 0 && len(uids) == 0
	})
	if err != nil {
		b.Fatal("pods not cleaned up after 120s")
	}
}

// rssOf sums VmRSS of processes whose command name starts with name.
func rssOf(name string) int64 {
	entries, _ := os.ReadDir("/proc")
	var total int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), name) {
			continue
		}
		total += vmRSS(e.Name())
	}
	return total
}

func vmRSS(pid string) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// rssOfPidfile is the RSS of the node's containerd, found by its config
// path on the command line.
func rssOfPidfile(dataDir string) int64 {
	cfg := filepath.Join(kubelet.ContainerdDir(dataDir), "config.toml")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), cfg) {
			return vmRSS(e.Name())
		}
	}
	return 0
}
