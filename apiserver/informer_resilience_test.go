package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// watchGate holds back watch requests while closed, so a test can change
// and compact the store while an informer is not watching.
type watchGate struct {
	mu     sync.Mutex
	closed chan struct{} // nil when open
}

func (g *watchGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = make(chan struct{})
}

func (g *watchGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

func (g *watchGate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.RawQuery, "watch=true") {
			g.mu.Lock()
			closed := g.closed
			g.mu.Unlock()
			if closed != nil {
				select {
				case <-closed:
				case <-r.Context().Done():
					return nil, r.Context().Err()
				}
			}
		}
		return rt.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// configMapState is name -> data["v"], as seen by the informer or by a
// fresh list.
func informerState(store cache.Store) string {
	var out []string
	for _, obj := range store.List() {
		cm := obj.(*corev1.ConfigMap)
		out = append(out, cm.Name+"="+cm.Data["v"])
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func serverState(t *testing.T, client kubernetes.Interface) string {
	list, err := client.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, cm := range list.Items {
		out = append(out, cm.Name+"="+cm.Data["v"])
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func waitConverged(t *testing.T, what string, store cache.Store, client kubernetes.Interface) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		want, got := serverState(t, client), informerState(store)
		if want == got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: informer never converged\n got: %s\nwant: %s", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInformerConvergesAcrossRestartAndCompaction(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	gate := &watchGate{}
	config := rest.CopyConfig(srv.Config)
	config.WrapTransport = gate.wrap
	informerClient, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	cms := srv.Client.CoreV1().ConfigMaps("default")
	write := func(name, v string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": v}}
		if _, err := cms.Create(context.Background(), cm, metav1.CreateOptions{}); err == nil {
			return
		}
		current, err := cms.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		current.Data = cm.Data
		if _, err := cms.Update(context.Background(), current, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		write(fmt.Sprint("cm", i), "1")
	}

	factory := informers.NewSharedInformerFactory(informerClient, 0)
	informer := factory.Core().V1().ConfigMaps().Informer()
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, informer.HasSynced) {
		t.Fatal("no sync")
	}
	waitConverged(t, "initial sync", informer.GetStore(), srv.Client)

	write("cm0", "2")
	if err := cms.Delete(context.Background(), "cm1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, "live changes", informer.GetStore(), srv.Client)

	// The server restarts on the same data: the informer resumes.
	srv.Restart()
	write("cm2", "3")
	write("cm-after-restart", "1")
	waitConverged(t, "after restart", informer.GetStore(), srv.Client)

	// While the informer cannot watch, history it has not seen is
	// compacted away: its next watch gets 410 and it must list again.
	gate.close()
	srv.Restart()
	write("cm3", "4")
	if err := cms.Delete(context.Background(), "cm4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	write("cm-while-compacted", "1")
	rev, err := srv.Store().Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store().Compact(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	gate.open()
	waitConverged(t, "after compaction", informer.GetStore(), srv.Client)
}
