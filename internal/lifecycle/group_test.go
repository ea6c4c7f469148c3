package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder notes the order in which components stop.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = append(r.order, name)
}

func (r *recorder) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.order, ",")
}

// blocking is a component that is ready at once and notes when it stops.
func blocking(name string, r *recorder) Component {
	return Component{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		r.note(name)
		return ctx.Err()
	}}
}

func TestStopEndsComponentsInReverseOrderOfStart(t *testing.T) {
	g := New(context.Background(), nil)
	var r recorder
	for _, name := range []string{"apiserver", "controllers", "kubelet"} {
		if err := g.Start(context.Background(), blocking(name, &r)); err != nil {
			t.Fatal(err)
		}
	}
	if late := g.Stop(5 * time.Second); len(late) > 0 {
		t.Fatalf("late: %v", late)
	}
	if got, want := r.got(), "kubelet,controllers,apiserver"; got != want {
		t.Fatalf("stop order %s, want %s", got, want)
	}
	if err := g.Err(); err != nil {
		t.Fatalf("a clean stop is no failure: %v", err)
	}
}

func TestStartWaitsForReadyBeforeTheNextComponent(t *testing.T) {
	g := New(context.Background(), nil)
	defer g.Stop(time.Second)
	ready := make(chan struct{})
	var started sync.WaitGroup
	started.Add(1)
	returned := make(chan error, 1)
	go func() {
		returned <- g.Start(context.Background(), Component{Name: "api", Ready: ready, Run: func(ctx context.Context) error {
			started.Done()
			<-ctx.Done()
			return nil
		}})
	}()
	started.Wait()
	select {
	case err := <-returned:
		t.Fatalf("Start returned before the component was ready: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(ready)
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return once the component was ready")
	}
}

func TestAFailureBeforeReadyIsReturnedNamingTheComponent(t *testing.T) {
	g := New(context.Background(), nil)
	defer g.Stop(time.Second)
	var r recorder
	if err := g.Start(context.Background(), blocking("apiserver", &r)); err != nil {
		t.Fatal(err)
	}
	err := g.Start(context.Background(), Component{Name: "kubelet", Ready: make(chan struct{}), Run: func(context.Context) error {
		return errors.New("listen tcp :10250: bind: address already in use")
	}})
	if err == nil || err.Error() != "kubelet: listen tcp :10250: bind: address already in use" {
		t.Fatalf("got %v", err)
	}
	if err := g.Start(context.Background(), blocking("proxy", &r)); err == nil {
		t.Fatal("a component started after a failure")
	}
	if got := g.Wait(context.Background()); got == nil || !strings.HasPrefix(got.Error(), "kubelet: ") {
		t.Fatalf("Wait: %v", got)
	}
}

func TestAComponentThatStopsOnItsOwnFailsTheGroup(t *testing.T) {
	g := New(context.Background(), nil)
	defer g.Stop(time.Second)
	stop := make(chan struct{})
	if err := g.Start(context.Background(), Component{Name: "dns", Run: func(context.Context) error {
		<-stop
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err == nil || err.Error() != "dns: stopped unexpectedly" {
		t.Fatalf("Wait: %v", err)
	}
}

func TestStartTimeout(t *testing.T) {
	g := New(context.Background(), nil)
	defer g.Stop(time.Second)
	err := g.Start(context.Background(), Component{Name: "containerd", Ready: make(chan struct{}), StartTimeout: 20 * time.Millisecond,
		Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	if err == nil || err.Error() != "containerd: not ready after 20ms" {
		t.Fatalf("got %v", err)
	}
}

func TestStopDoesNotWaitForeverForAStuckComponent(t *testing.T) {
	g := New(context.Background(), nil)
	var r recorder
	if err := g.Start(context.Background(), blocking("apiserver", &r)); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	if err := g.Start(context.Background(), Component{Name: "stuck", Run: func(context.Context) error { <-release; return nil }}); err != nil {
		t.Fatal(err)
	}
	late := g.Stop(20 * time.Millisecond)
	if len(late) != 1 || late[0] != "stuck" {
		t.Fatalf("late %v", late)
	}
	if r.got() != "apiserver" {
		t.Fatalf("the components before the stuck one were not stopped: %q", r.got())
	}
}
