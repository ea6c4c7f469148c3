package main

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// TestInformerThroughTLSAndShutdownWithOpenWatch drives the server as a
// controller would, through TLS and the authenticator, and checks that an
// open watch does not hold up SIGTERM.
func TestInformerThroughTLSAndShutdownWithOpenWatch(t *testing.T) {
	p := startServer(t, t.TempDir())
	cs, err := kubernetes.NewForConfig(p.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	factory := informers.NewSharedInformerFactory(cs, 0)
	cms := factory.Core().V1().ConfigMaps().Informer()
	seen := make(chan string, 16)
	if _, err := cms.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				seen <- cm.Name
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	stopInformers := make(chan struct{})
	factory.Start(stopInformers)
	defer func() {
		close(stopInformers)
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), cms.HasSynced) {
		t.Fatal("informer did not sync")
	}

	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "watched"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name := ""; name != "watched"; {
		select {
		case name = <-seen:
		case <-ctx.Done():
			t.Fatal("informer never saw the created ConfigMap")
		}
	}

	// The informer's watch is open now; the server must still stop at
	// once and cleanly.
	w, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	if err := p.stop(t); err != nil {
		t.Fatalf("SIGTERM with open watches: exit %v, want 0; stderr:\n%s", err, p.stderr)
	}
	// A watch lasts up to an hour; a shutdown that waited for it would
	// blow well past this bound, which only guards against that.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("shutdown with open watches took %v: it waited for the watch", d)
	}
	for {
		select {
		case _, open := <-w.ResultChan():
			if !open {
				return
			}
		case <-ctx.Done():
			t.Fatal("client watch still open after the server exited")
		}
	}
}
