package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// processMemory is this process's resident memory and its peak since the
// last resetPeakMemory, in bytes, as the kernel counts them (VmRSS,
// VmHWM): the server and the test's clients together.
func processMemory(t *testing.T) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	field := func(name string) int64 {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				return kb << 10
			}
		}
		t.Skipf("no %s in /proc/self/status", name)
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// resetPeakMemory starts VmHWM again from the current RSS.
func resetPeakMemory(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	return strings.Count(buf.String(), fn)
}

// h2cServer serves the API over cleartext HTTP/2, as many streams on one
// connection as `tinykube server` allows.
func h2cServer(t *testing.T, ts *testServer) *httptest.Server {
	srv := httptest.NewUnstartedServer(ts.api.Handler())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(ts.api.CloseWatches)
	return srv
}

// h2cClient speaks cleartext HTTP/2, on connections of its own.
func h2cClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	// The clients share the process with the server and read as fast as
	// they can: a small window keeps their own buffers out of the figure.
	tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 16 << 20}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestTwoThousandWatchesStayInBoundedMemory(t *testing.T) {
	const (
		watches   = 2000
		objects   = 20
		valueSize = 100 << 10 // 20 x 100 KiB: about 2 MB of ConfigMaps
		memLimit  = 300 << 20
	)
	ts := newTestServer(t)
	if _, err := ts.client.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "load"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range objects {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)},
			Data:       map[string]string{"blob": strings.Repeat(string(rune('a'+i%26)), valueSize)},
		}
		if _, err := ts.client.CoreV1().ConfigMaps("load").Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := h2cServer(t, ts)
	client, probe := h2cClient(t), h2cClient(t)

	// Whatever earlier tests left goes back to the kernel first.
	debug.FreeOSMemory()
	idleGoroutines := runtime.NumGoroutine()
	idleRSS, _ := processMemory(t)
	resetPeakMemory(t)

	// Readiness is probed on its own connection the whole time.
	probeCtx, stopProbe := context.WithCancel(context.Background())
	var slowest atomic.Int64
	probed := make(chan struct{})
	var synced, failed atomic.Int64
	go func() {
		defer close(probed)
		for probeCtx.Err() == nil {
			start := time.Now()
			req, _ := http.NewRequestWithContext(probeCtx, http.MethodGet, srv.URL+"/readyz", nil)
			resp, err := probe.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err == nil || probeCtx.Err() == nil {
				d := time.Since(start)
				if err != nil {
					d = time.Hour
				}
				for cur := slowest.Load(); d > time.Duration(cur) && !slowest.CompareAndSwap(cur, int64(d)); cur = slowest.Load() {
				}
			}
			select {
			case <-probeCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// Each watcher reads its stream as fast as it can and counts events
	// (one JSON line each) until it has the initial ADDED of every object.
	watchCtx, disconnect := context.WithCancel(context.Background())
	defer disconnect()
	var wg sync.WaitGroup
	for range watches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(watchCtx, http.MethodGet, srv.URL+"/api/v1/namespaces/load/configmaps?watch=true", nil)
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 4<<10)
			lines, counted := 0, false
			for {
				n, err := resp.Body.Read(buf)
				lines += bytes.Count(buf[:n], []byte("\n"))
				if lines >= objects && !counted {
					counted = true
					synced.Add(1)
				}
				if err != nil && !counted {
					failed.Add(1)
				}
				if err != nil {
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(50 * time.Second)
	for synced.Load()+failed.Load() < watches {
		if _, peak := processMemory(t); peak > 4*memLimit {
			t.Fatalf("peak RSS %d MiB with %d of %d watches synced (idle %d MiB)", peak>>20, synced.Load(), watches, idleRSS>>20)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d watches synced within 50s, %d failed", synced.Load(), watches, failed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopProbe()
	<-probed
	rss, peak := processMemory(t)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("RSS idle %d MiB, with %d watches %d MiB, peak %d MiB (Go heap after GC %d MiB, stacks %d MiB); slowest /readyz %v",
		idleRSS>>20, watches, rss>>20, peak>>20, ms.HeapAlloc>>20, ms.StackInuse>>20, time.Duration(slowest.Load()))
	if failed.Load() > 0 {
		t.Errorf("%d watches failed", failed.Load())
	}
	if peak > memLimit {
		t.Errorf("peak RSS %d MiB, want under %d MiB", peak>>20, memLimit>>20)
	}
	if d := time.Duration(slowest.Load()); d > time.Second {
		t.Errorf("slowest /readyz took %v, want under 1s", d)
	}

	// The clients go away: every watch ends on the server too.
	disconnect()
	wg.Wait()
	client.CloseIdleConnections()
	probe.CloseIdleConnections()
	deadline = time.Now().Add(20 * time.Second)
	for goroutinesIn("serveWatch") > 0 || runtime.NumGoroutine() > idleGoroutines+20 {
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left: %d goroutines (idle %d), %d in serveWatch",
				runtime.NumGoroutine(), idleGoroutines, goroutinesIn("serveWatch"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAWatcherThatDoesNotReadIsEndedAndTheOthersGetEveryEvent(t *testing.T) {
	const updates = 300
	ts := newTestServer(t)
	ts.api.watchQueueEvents, ts.api.watchSlowGrace = 20, 200*time.Millisecond
	cms := ts.client.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "busy"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := cms.Watch(ctx(t), metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()
	// The slow client has a connection of its own and never reads.
	slowClient := &http.Client{Transport: &http.Transport{}}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, ts.http.URL+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion="+cm.ResourceVersion, nil)
	slow, err := slowClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	eventually(t, "both watches to run", func() bool { return goroutinesIn("serveWatch(") == 2 })

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	received := make(chan error, 1)
	go func() {
		last := 0
		for ev := range fast.ResultChan() {
			var n int
			if _, err := fmt.Sscanf(ev.Object.(*corev1.ConfigMap).Data["n"], "%d", &n); err != nil || n != last+1 {
				received <- fmt.Errorf("%s event with n=%d after n=%d", ev.Type, n, last)
				return
			}
			if last = n; last == updates {
				received <- nil
				return
			}
		}
		received <- fmt.Errorf("the fast watch ended after n=%d", last)
	}()
	for i := 1; i <= updates; i++ {
		cm.Data = map[string]string{"n": strconv.Itoa(i), "blob": strings.Repeat(strconv.Itoa(i%10), 100<<10)}
		if cm, err = cms.Update(ctx(t), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-received:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fast watch did not get every event within 30s")
	}
	eventually(t, "the slow watch to end", func() bool { return goroutinesIn("serveWatch(") == 1 })

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// What stays is the shared event cache, not the slow client's backlog
	// (the updates were 2 x 30 MB with their previous states).
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > eventCacheBytes+16<<20 {
		t.Errorf("the heap grew by %d MiB", grown>>20)
	}
	// When the slow client reads at last, its stream ends short.
	lines := 0
	buf := make([]byte, 64<<10)
	for {
		n, err := slow.Body.Read(buf)
		lines += bytes.Count(buf[:n], []byte("\n"))
		if err != nil {
			break
		}
	}
	if lines >= updates {
		t.Errorf("the slow watch got all %d events", lines)
	}
	t.Logf("the slow watch got %d of %d events; heap %d -> %d MiB", lines, updates, before.HeapAlloc>>20, after.HeapAlloc>>20)
}
