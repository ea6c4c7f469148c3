package endpointslice

import (
	"context"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

// syncOnce builds a controller on synced informers without running its
// workers, so a test can set what it remembers and sync one Service.
func syncOnce(t *testing.T, prepare func(c *Controller, clock *clocktesting.FakeClock)) []discoveryv1.EndpointSlice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc := makeService("web").obj()
	client := newFake(svc)
	factory := informers.NewSharedInformerFactory(client, 0)
	clock := clocktesting.NewFakeClock(time.Now())
	c, err := New(Config{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		t.Fatal("caches did not sync")
	}
	prepare(c, clock)
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func ghost(service string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: service + "-ghost", ResourceVersion: "99",
		Labels: map[string]string{discoveryv1.LabelServiceName: service},
	}}
}

func TestAWriteTheCacheHasNotShownHoldsBackOnlyItsOwnService(t *testing.T) {
	got := syncOnce(t, func(c *Controller, _ *clocktesting.FakeClock) {
		c.remember(ghost("other"), false)
	})
	if len(got) != 1 || got[0].Labels[discoveryv1.LabelServiceName] != "web" {
		t.Fatalf("web got slices %v, want its own: another Service's pending write held it back", names(got))
	}
}

func TestAWriteTheCacheNeverShowsIsGivenUp(t *testing.T) {
	held := syncOnce(t, func(c *Controller, _ *clocktesting.FakeClock) {
		c.remember(ghost("web"), false)
	})
	if len(held) != 0 {
		t.Fatalf("web synced past its own unseen write: %v", names(held))
	}
	got := syncOnce(t, func(c *Controller, clock *clocktesting.FakeClock) {
		c.remember(ghost("web"), false)
		clock.Step(writeExpectationTTL + time.Second)
	})
	if len(got) != 1 {
		t.Fatalf("web still waits for a write the cache never showed: slices %v", names(got))
	}
}

func TestASliceSeenDeletedIsForgotten(t *testing.T) {
	got := syncOnce(t, func(c *Controller, _ *clocktesting.FakeClock) {
		g := ghost("web")
		c.remember(g, false)
		c.forget(cache.DeletedFinalStateUnknown{Key: "default/web-ghost", Obj: g})
	})
	if len(got) != 1 {
		t.Fatalf("web waits for a slice already deleted: slices %v", names(got))
	}
}

func names(slices []discoveryv1.EndpointSlice) []string {
	var n []string
	for _, s := range slices {
		n = append(n, s.Name)
	}
	return n
}
