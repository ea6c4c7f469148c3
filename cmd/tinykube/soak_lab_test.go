//go:build !nokubectl

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// soakNamespace holds the soak's ConfigMaps.
const soakNamespace = "soak"

// TestSoak is the soak benchmark (bench/soak.sh): for TINYKUBE_SOAK (say
// 10m) a lab node's server takes a mixed load from 20 clients (creates,
// updates, deletes, lists) and 200 watches while pods churn on the node,
// and the server is restarted every fifth of the time, once with SIGKILL.
// At the end every acknowledged write must be there, every watcher's view
// (built from the events it saw, each once and in order, or relisted after
// a clean 410) must equal the server's, and it prints the figures.
func TestSoak(t *testing.T) {
	d := os.Getenv("TINYKUBE_SOAK")
	if d == "" {
		t.Skip("the soak runs only when TINYKUBE_SOAK is set to its duration (bench/soak.sh)")
	}
	duration, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("TINYKUBE_SOAK=%q: %v", d, err)
	}
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP)
	node.start()
	node.waitNodeReady()
	node.kubectlOK("", "create", "namespace", soakNamespace)
	node.kubectlOK(`apiVersion: apps/v1
kind: Deployment
metadata: {name: churn, namespace: soak}
spec:
  replicas: 5
  selector: {matchLabels: {app: churn}}
  template:
    metadata: {labels: {app: churn}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: tinykube/testserver:v1
        imagePullPolicy: Never
`, "apply", "-f", "-")

	idleGoroutines := serverGoroutines(t, node.clientset())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var counts soakCounts
	track := &soakTracker{acked: map[string]string{}, uncertain: map[string]bool{}}
	newClient := func() kubernetes.Interface {
		cs, err := node.clientsetOrErr()
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	watchers := make([]*soakWatcher, 200)
	watchClient := newClient()
	var wg sync.WaitGroup
	for i := range watchers {
		watchers[i] = &soakWatcher{client: watchClient, state: map[string]string{}}
		wg.Go(func() { watchers[i].run(ctx, &counts) })
	}
	for c := range 20 {
		cs := newClient()
		wg.Go(func() { soakClient(ctx, cs, c, track, &counts) })
	}
	churnClient := newClient()
	wg.Go(func() { soakChurn(ctx, churnClient, &counts) })

	start := time.Now()
	restartEvery := max(duration/5, 20*time.Second)
	var rssFirstMinute, restarts int64
	firstMinute := time.NewTimer(time.Minute)
	nextRestart := time.NewTimer(restartEvery)
	end := time.NewTimer(duration)
	pid := func() int { return node.p.cmd.Process.Pid }
loop:
	for {
		select {
		case <-firstMinute.C:
			rssFirstMinute = rssKiB(pid())
			t.Logf("after the first minute: RSS %d MiB (%s)", rssFirstMinute/1024, rssParts(pid()))
		case <-nextRestart.C:
			restarts++
			sig := syscall.SIGTERM
			if restarts == 2 {
				sig = syscall.SIGKILL
			}
			t.Logf("%s: restart %d with %v; RSS before it %d MiB (%s)", time.Since(start).Truncate(time.Second), restarts, sig, rssKiB(pid())/1024, rssParts(pid()))
			node.stop(sig)
			node.start()
			nextRestart.Reset(restartEvery)
		case <-end.C:
			break loop
		}
	}
	rssEnd := rssKiB(pid())
	t.Logf("at the end: RSS %d MiB (%s)", rssEnd/1024, rssParts(pid()))
	cancel()
	wg.Wait()
	// With the clients gone, the server's goroutines go back to idle.
	idle, _ := strconv.Atoi(idleGoroutines)
	var goroutinesEnd string
	node.waitUntil("goroutines back to the idle count", time.Minute, func(context.Context) (bool, error) {
		goroutinesEnd = serverGoroutines(t, newClient())
		n, err := strconv.Atoi(goroutinesEnd)
		return err == nil && n <= idle+idle/10, nil
	})

	// A last write marks the end: a watcher that has seen it has seen
	// every ConfigMap event.
	marker, err := newClient().CoreV1().ConfigMaps(soakNamespace).Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "zz-end"}, Data: map[string]string{"v": "end"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every acknowledged write is there.
	final, err := newClient().CoreV1().ConfigMaps(soakNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	onServer := map[string]string{}
	for _, cm := range final.Items {
		onServer[cm.Name] = cm.Data["v"]
	}
	checked, lost := track.check(onServer)
	for _, l := range lost {
		t.Errorf("acknowledged write lost: %s", l)
	}
	// Every watcher's view is the server's: it saw every event once, in
	// order. Watchers stopped at different moments catch up first.
	var events, relists int64
	for i, w := range watchers {
		if err := w.catchUp(onServer, marker.ResourceVersion); err != nil {
			t.Errorf("watcher %d: %v", i, err)
		}
		events += w.events
		relists += w.relists
	}
	t.Logf("soak of %s on %s: %d writes acknowledged (%d creates, %d updates, %d deletes), all %d checked and found; %d uncertain (the server was restarting); %d lists; %d pods deleted for churn",
		duration, time.Since(start).Truncate(time.Second), counts.creates.Load()+counts.updates.Load()+counts.deletes.Load(),
		counts.creates.Load(), counts.updates.Load(), counts.deletes.Load(), checked, len(track.uncertain), counts.lists.Load(), counts.churned.Load())
	t.Logf("200 watchers: %d events checked in order, %d relists after 410, %d re-watches after the server went away; every view equals the server's",
		events, relists, counts.rewatches.Load())
	t.Logf("server restarts: %d (one SIGKILL); RSS after the first minute %d MiB, at the end %d MiB; goroutines idle before the load %s, after it %s",
		restarts, rssFirstMinute/1024, rssEnd/1024, idleGoroutines, goroutinesEnd)
	if rssFirstMinute > 0 && float64(rssEnd) > 1.2*float64(rssFirstMinute) {
		t.Errorf("RSS grew from %d to %d KiB, more than 20%%", rssFirstMinute, rssEnd)
	}
}

type soakCounts struct {
	creates, updates, deletes, lists, churned, rewatches atomic.Int64
}

// soakTracker knows what each acknowledged write left: a value, or "" for
// deleted. A key whose last write got no answer is uncertain and not
// checked.
type soakTracker struct {
	mu        sync.Mutex
	acked     map[string]string
	uncertain map[string]bool
}

func (tr *soakTracker) set(name, value string, ok bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if ok {
		tr.acked[name] = value
		delete(tr.uncertain, name)
	} else {
		tr.uncertain[name] = true
	}
}

func (tr *soakTracker) check(onServer map[string]string) (int, []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var lost []string
	n := 0
	for name, want := range tr.acked {
		if tr.uncertain[name] {
			continue
		}
		n++
		if got, ok := onServer[name]; want == "" && ok || want != "" && got != want {
			lost = append(lost, fmt.Sprintf("%s: want %q, server has %q (present %v)", name, want, got, ok))
		}
	}
	return n, lost
}

// soakKeysPerClient bounds each client's live ConfigMaps, so the data set
// stays the same size and memory can be compared over the run.
const soakKeysPerClient = 100

// soakClient writes its own keys, so its writes never conflict with
// another client's and their outcome is known from the answers.
func soakClient(ctx context.Context, cs kubernetes.Interface, id int, tr *soakTracker, counts *soakCounts) {
	cms := cs.CoreV1().ConfigMaps(soakNamespace)
	var live []string
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		value := strconv.Itoa(rand.Int())
		op := rand.IntN(10)
		if len(live) >= soakKeysPerClient && op < 4 {
			op = 7 // a steady state: at most soakKeysPerClient live keys each
		}
		switch {
		case op < 4 || len(live) == 0:
			name := fmt.Sprintf("c%02d-%06d", id, n)
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": value}}, metav1.CreateOptions{})
			if ctx.Err() != nil {
				// Cut short at the end: it may or may not have been stored.
				tr.set(name, value, false)
				return
			}
			tr.set(name, value, err == nil)
			if err == nil {
				live = append(live, name)
				counts.creates.Add(1)
			}
		case op < 7:
			name := live[rand.IntN(len(live))]
			cm, err := cms.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			cm.Data["v"] = value
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			if ctx.Err() != nil {
				// Cut short at the end: it may or may not have been stored.
				tr.set(name, value, false)
				return
			}
			tr.set(name, value, err == nil)
			if err == nil {
				counts.updates.Add(1)
			}
		case op < 9:
			i := rand.IntN(len(live))
			name := live[i]
			err := cms.Delete(ctx, name, metav1.DeleteOptions{})
			if ctx.Err() != nil {
				tr.set(name, "", false)
				return
			}
			ok := err == nil || apierrors.IsNotFound(err)
			tr.set(name, "", ok)
			if ok {
				live = append(live[:i], live[i+1:]...)
				counts.deletes.Add(1)
			}
		default:
			if _, err := cms.List(ctx, metav1.ListOptions{}); err == nil {
				counts.lists.Add(1)
			}
		}
	}
}

// soakChurn deletes one of the churn Deployment's pods every few seconds;
// its ReplicaSet makes a new one, which the node starts.
func soakChurn(ctx context.Context, cs kubernetes.Interface, counts *soakCounts) {
	pace := time.NewTicker(3 * time.Second)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		pods, err := cs.CoreV1().Pods(soakNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=churn"})
		if err != nil || len(pods.Items) == 0 {
			continue
		}
		p := pods.Items[rand.IntN(len(pods.Items))]
		if err := cs.CoreV1().Pods(soakNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err == nil {
			counts.churned.Add(1)
		}
	}
}

// soakWatcher keeps a view of the soak's ConfigMaps from a list and the
// events after it, checking that each event's resourceVersion is newer
// than the last: every event once, in order.
type soakWatcher struct {
	client  kubernetes.Interface
	state   map[string]string
	rv      string
	lastRV  int64
	events  int64
	relists int64
	err     error
}

func (w *soakWatcher) relist(ctx context.Context) bool {
	list, err := w.client.CoreV1().ConfigMaps(soakNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	w.state = map[string]string{}
	for _, cm := range list.Items {
		w.state[cm.Name] = cm.Data["v"]
	}
	w.rv = list.ResourceVersion
	w.lastRV, _ = strconv.ParseInt(w.rv, 10, 64)
	return true
}

func (w *soakWatcher) run(ctx context.Context, counts *soakCounts) {
	for ctx.Err() == nil && !w.relist(ctx) {
		time.Sleep(100 * time.Millisecond) // the server is restarting: retry pacing
	}
	for ctx.Err() == nil && w.err == nil {
		wi, err := w.client.CoreV1().ConfigMaps(soakNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: w.rv, AllowWatchBookmarks: true})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				w.relists++
				w.relist(ctx)
			} else {
				time.Sleep(100 * time.Millisecond) // the server is restarting: retry pacing
			}
			continue
		}
		w.consume(wi)
		counts.rewatches.Add(1)
	}
}

// consume applies a watch's events until it ends.
func (w *soakWatcher) consume(wi watch.Interface) {
	defer wi.Stop()
	for ev := range wi.ResultChan() {
		switch ev.Type {
		case watch.Error:
			if st, ok := ev.Object.(*metav1.Status); ok && (st.Code == 410 || st.Reason == metav1.StatusReasonExpired || st.Reason == metav1.StatusReasonGone) {
				w.relists++
				w.rv = "" // relist before the next watch
				w.relist(context.Background())
			}
			return
		case watch.Bookmark:
			if m, err := meta.Accessor(ev.Object); err == nil {
				w.rv = m.GetResourceVersion()
			}
			continue
		}
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		if w.err = w.apply(ev.Type, cm); w.err != nil {
			return
		}
	}
}

// apply records one event, which must be newer than the last.
func (w *soakWatcher) apply(typ watch.EventType, cm *corev1.ConfigMap) error {
	rv, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
	if rv <= w.lastRV {
		return fmt.Errorf("event %s %s at resourceVersion %d after %d: out of order or repeated", typ, cm.Name, rv, w.lastRV)
	}
	w.lastRV, w.rv = rv, cm.ResourceVersion
	w.events++
	if typ == watch.Deleted {
		delete(w.state, cm.Name)
	} else {
		w.state[cm.Name] = cm.Data["v"]
	}
	return nil
}

// catchUp watches from where the watcher stopped until it has seen the
// ConfigMap event at rv, the last, and compares its view with the
// server's.
func (w *soakWatcher) catchUp(onServer map[string]string, rv string) error {
	if w.err != nil {
		return w.err
	}
	target, _ := strconv.ParseInt(rv, 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for w.lastRV < target && ctx.Err() == nil && w.err == nil {
		wi, err := w.client.CoreV1().ConfigMaps(soakNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: w.rv, AllowWatchBookmarks: true})
		if err != nil {
			if !w.relist(ctx) {
				return err
			}
			w.relists++
			continue
		}
		go func() {
			<-ctx.Done()
			wi.Stop()
		}()
		for ev := range wi.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			if err := w.apply(ev.Type, cm); err != nil {
				return err
			}
			if w.lastRV >= target {
				break
			}
		}
		wi.Stop()
	}
	if w.err != nil {
		return w.err
	}
	if len(w.state) != len(onServer) {
		return fmt.Errorf("view has %d ConfigMaps, the server %d", len(w.state), len(onServer))
	}
	for k, v := range onServer {
		if w.state[k] != v {
			return fmt.Errorf("view has %s=%q, the server %q", k, w.state[k], v)
		}
	}
	return nil
}

// rssKiB is the VmRSS of pid.
func rssKiB(pid int) int64 { return procStatusKiB(pid, "VmRSS") }

// rssParts is the anonymous and file-backed parts of pid's RSS (the store's
// mapped file and the binary's pages are file-backed), for the log.
func rssParts(pid int) string {
	return fmt.Sprintf("anon %d MiB, file %d MiB", procStatusKiB(pid, "RssAnon")/1024, procStatusKiB(pid, "RssFile")/1024)
}

// procStatusKiB is a kB field of /proc/PID/status.
func procStatusKiB(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// serverGoroutines is the goroutine count from the server's profiling
// endpoint, or "n/a" when it has none.
func serverGoroutines(t *testing.T, cs kubernetes.Interface) string {
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/goroutine").Param("debug", "1").DoRaw(context.Background())
	if err != nil {
		return "n/a (" + err.Error() + ")"
	}
	first, _, _ := strings.Cut(string(body), "\n")
	return strings.TrimPrefix(first, "goroutine profile: total ")
}
