package proxy

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestPartialSyncMatchesFullRebuild applies a series of changes with partial
// syncs and checks after each that the table is exactly what a fresh full
// sync of the same objects writes.
func TestPartialSyncMatchesFullRebuild(t *testing.T) {
	tp := newTestProxier(t, testConfig(), partialSyncObjects()...)
	tp.mustSync(t)
	for _, step := range partialSyncSteps(tp) {
		step.change(t)
		st := tp.mustSync(t)
		if st.Full {
			t.Fatalf("%s: sync was full, want partial", step.name)
		}
		objs := currentObjects(t, tp)
		fresh := newTestProxier(t, testConfig(), objs...)
		fresh.mustSync(t)
		if got, want := normalize(tp.nft.Dump()), normalize(fresh.nft.Dump()); got != want {
			t.Fatalf("%s: partial sync differs from a full rebuild:\n%s", step.name, diffLines(want, got))
		}
	}
}

// TestLabPartialSyncsApplyOnRealNFT applies the same changes to the real
// nftables in a lab namespace: the kernel (and nft) must accept every
// partial sync; a refused one would silently turn into a full rebuild.
func TestLabPartialSyncsApplyOnRealNFT(t *testing.T) {
	tp := newTestProxier(t, testConfig(), partialSyncObjects()...)
	tp.Proxier.nft = realNFTInLab(t)
	tp.mustSync(t)
	for _, step := range partialSyncSteps(tp) {
		step.change(t)
		st := tp.Sync(context.Background())
		if st.Err != nil || st.Full {
			t.Fatalf("%s: sync = %+v, want a successful partial sync", step.name, st)
		}
	}
}

func partialSyncObjects() []runtime.Object {
	return []runtime.Object{
		makeService("default", "web").clusterIP("10.43.0.20").typ("NodePort").port("http", 80, 8080, 30020).obj(),
		makeSlice("default", "web", "web-1").port("http", 8080).
			endpoint("10.42.0.5", testNode).endpoint("10.42.1.7", "node-b").obj(),
		makeService("default", "other").clusterIP("10.43.0.21").port("http", 80, 8080, 0).obj(),
		makeSlice("default", "other", "other-1").port("http", 8080).endpoint("10.42.0.9", testNode).obj(),
	}
}

type syncStep struct {
	name   string
	change func(t *testing.T)
}

// partialSyncSteps changes the objects of partialSyncObjects one step at a
// time through every kind of rule.
func partialSyncSteps(tp *testProxier) []syncStep {
	web := makeService("default", "web").clusterIP("10.43.0.20").typ("NodePort").port("http", 80, 8080, 30020)
	slice := makeSlice("default", "web", "web-1").port("http", 8080).
		endpoint("10.42.0.5", testNode).endpoint("10.42.1.7", "node-b")
	return []syncStep{
		{"endpoint becomes not ready", func(t *testing.T) {
			s := makeSlice("default", "web", "web-1").port("http", 8080).
				endpoint("10.42.0.5", testNode).notReady("10.42.1.7", "node-b").obj()
			apply(t, tp, s)
		}},
		{"endpoint added", func(t *testing.T) {
			s := makeSlice("default", "web", "web-1").port("http", 8080).
				endpoint("10.42.0.5", testNode).endpoint("10.42.1.7", "node-b").endpoint("10.42.1.8", "node-b").obj()
			apply(t, tp, s)
		}},
		{"session affinity turned on", func(t *testing.T) {
			apply(t, tp, web.affinity(60).obj())
		}},
		{"all endpoints gone", func(t *testing.T) {
			apply(t, tp, makeSlice("default", "web", "web-1").port("http", 8080).obj())
		}},
		{"endpoints back, externalTrafficPolicy Local", func(t *testing.T) {
			apply(t, tp, slice.obj())
			apply(t, tp, web.externalLocal(32100).obj())
		}},
		{"other: NodePort with an external IP and a UDP port, two endpoints", func(t *testing.T) {
			svc := makeService("default", "other").clusterIP("10.43.0.21").typ("NodePort").
				port("http", 80, 8080, 30021).udpPort("dns", 53, 5353).obj()
			svc.Spec.ExternalIPs = []string{"192.0.2.7"}
			apply(t, tp, svc)
			apply(t, tp, makeSlice("default", "other", "other-1").port("http", 8080).udpPort("dns", 5353).
				endpoint("10.42.0.9", testNode).endpoint("10.42.1.9", "node-b").obj())
		}},
		{"in one sync, other lets go of a shared chain that web takes up", func(t *testing.T) {
			apply(t, tp, makeSlice("default", "other", "other-1").port("http", 8080).udpPort("dns", 5353).
				endpoint("10.42.0.9", testNode).obj())
			apply(t, tp, makeService("default", "web").clusterIP("10.43.0.20").typ("NodePort").
				port("http", 80, 8080, 30020).obj())
		}},
		{"service deleted", func(t *testing.T) {
			del(t, tp, "services", "default", "other")
		}},
		{"service type back to ClusterIP", func(t *testing.T) {
			s := makeService("default", "web").clusterIP("10.43.0.20").port("http", 80, 8080, 0).obj()
			apply(t, tp, s)
		}},
	}
}

// TestSyncOnlyTouchesChangedService checks that a change to one Service
// writes only that Service's rules.
func TestSyncOnlyTouchesChangedService(t *testing.T) {
	var objs []runtime.Object
	for i := range 50 {
		name := "svc-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		objs = append(objs,
			makeService("default", name).clusterIP("10.43.1."+itoa(i+1)).port("http", 80, 8080, 0).obj(),
			makeSlice("default", name, name+"-1").port("http", 8080).endpoints(i*3, 3, testNode).obj())
	}
	tp := newTestProxier(t, testConfig(), objs...)
	tp.mustSync(t)
	apply(t, tp, makeSlice("default", "svc-aa", "svc-aa-1").port("http", 8080).endpoints(0, 2, testNode).obj())
	st := tp.mustSync(t)
	if st.Full || st.Services != 1 {
		t.Fatalf("sync = %+v, want a partial sync of 1 Service", st)
	}
	// the shared chain for 2 endpoints: add, 2 rules; the verdict (goto
	// lb-cluster-tcp-3 -> 2): delete, add; the endpoint's backend and
	// hairpin elements deleted
	if st.Operations > 7 {
		t.Errorf("one endpoint removal took %d nftables operations, want at most 7", st.Operations)
	}
}

// TestFailedApplyForcesFullResync checks that after the kernel refused a
// transaction the next sync rebuilds the whole table.
func TestFailedApplyForcesFullResync(t *testing.T) {
	tp := newTestProxier(t, testConfig(),
		makeService("default", "web").clusterIP("10.43.0.20").port("http", 80, 8080, 0).obj())
	tp.mustSync(t)
	// Someone deletes our table behind our back: a partial sync fails.
	tx := tp.nft.NewTransaction()
	tx.Delete(&knftablesTable)
	if err := tp.nft.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	apply(t, tp, makeSlice("default", "web", "web-1").port("http", 8080).endpoint("10.42.0.5", testNode).obj())
	if st := tp.Sync(context.Background()); st.Err == nil {
		t.Fatalf("partial sync on a missing table succeeded: %+v", st)
	}
	st := tp.mustSync(t)
	if !st.Full {
		t.Fatalf("sync after a failure = %+v, want full", st)
	}
	m := tp.nft.Table.Maps[backendsMapName(mapClusterBackends, "tcp")]
	if m == nil || len(m.Elements) != 1 {
		t.Errorf("full resync did not restore the Service's endpoint")
	}
	if _, ok := tp.nft.Table.Chains[lbChain(lbCluster, "tcp", 1)]; !ok {
		t.Errorf("full resync did not restore the load-balancing chain")
	}
}

// apply writes obj to the fake API and waits until the informer has it.
func apply(t *testing.T, tp *testProxier, obj runtime.Object) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *corev1.Service:
		_, err = tp.client.CoreV1().Services(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = tp.client.DiscoveryV1().EndpointSlices(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
		if err != nil {
			_, err = tp.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return informerHas(tp, obj) })
	m := obj.(metav1.Object)
	name := m.GetName()
	if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
		name = s.Labels[discoveryv1.LabelServiceName]
	}
	waitDirty(t, tp, types.NamespacedName{Namespace: m.GetNamespace(), Name: name})
}

// waitDirty waits until the event handlers have recorded a change of k (the
// informer's store is updated before its handlers run).
func waitDirty(t *testing.T, tp *testProxier, k types.NamespacedName) {
	t.Helper()
	waitFor(t, func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return tp.dirty[k]
	})
}

func del(t *testing.T, tp *testProxier, resource, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := tp.client.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := tp.services.Services(ns).Get(name)
		return err != nil
	})
	waitDirty(t, tp, types.NamespacedName{Namespace: ns, Name: name})
}

func informerHas(tp *testProxier, obj runtime.Object) bool {
	switch o := obj.(type) {
	case *corev1.Service:
		got, err := tp.services.Services(o.Namespace).Get(o.Name)
		return err == nil && equalish(got.Spec, o.Spec)
	case *discoveryv1.EndpointSlice:
		got, ok, _ := tp.slices.GetByKey(o.Namespace + "/" + o.Name)
		return ok && len(got.(*discoveryv1.EndpointSlice).Endpoints) == len(o.Endpoints) &&
			equalish(got.(*discoveryv1.EndpointSlice).Endpoints, o.Endpoints)
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatal("condition not met in time")
	}
}

// currentObjects reads all Services and EndpointSlices from the fake API.
func currentObjects(t *testing.T, tp *testProxier) []runtime.Object {
	ctx := context.Background()
	svcs, err := tp.client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices, err := tp.client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for i := range svcs.Items {
		s := svcs.Items[i]
		s.ResourceVersion = ""
		objs = append(objs, &s)
	}
	for i := range slices.Items {
		s := slices.Items[i]
		s.ResourceVersion = ""
		objs = append(objs, &s)
	}
	return objs
}

// TestRunKeepsOrFlushesRulesOnShutdown checks that rules stay after Run
// returns (traffic survives a restart) unless FlushOnShutdown is set.
func TestRunKeepsOrFlushesRulesOnShutdown(t *testing.T) {
	for _, flush := range []bool{false, true} {
		cfg := testConfig()
		cfg.FlushOnShutdown = flush
		tp := newTestProxier(t, cfg,
			makeService("default", "web").clusterIP("10.43.0.20").port("http", 80, 8080, 0).obj())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tp.Run(ctx) }()
		select {
		case <-tp.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("no first sync")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if exists := tp.nft.Table != nil; exists == flush {
			t.Errorf("FlushOnShutdown=%v: table exists after shutdown = %v", flush, exists)
		}
	}
}
