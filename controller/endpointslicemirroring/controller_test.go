package endpointslicemirroring

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// newFake is a fake clientset that, like the API server, fills in
// generateName.
func newFake(objs ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset(objs...)
	var n atomic.Int64
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		m, ok := a.(k8stesting.CreateAction).GetObject().(metav1.Object)
		if ok && m.GetName() == "" && m.GetGenerateName() != "" {
			m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), n.Add(1)))
		}
		return false, nil, nil
	})
	return client
}

func start(t testing.TB, client kubernetes.Interface, maxPer int) *record.FakeRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	c, err := New(Config{Client: client, Informers: factory, Recorder: rec, MaxEndpointsPerSubset: maxPer, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return rec
}

// view is what a user reads off the mirrored slices of a Service: one
// line per slice, "type ports: ip(ready) ...", sorted.
func view(ctx context.Context, client kubernetes.Interface, svc string) ([]string, []discoveryv1.EndpointSlice, error) {
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc + "," + discoveryv1.LabelManagedBy + "=" + ControllerName})
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, s := range list.Items {
		var ports, eps []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", ptrValue(p.Name), ptrValue(p.Port)))
		}
		for _, e := range s.Endpoints {
			eps = append(eps, fmt.Sprintf("%s(%v)", e.Addresses[0], ptrValue(e.Conditions.Ready)))
		}
		out = append(out, fmt.Sprintf("%s [%s]: %s", s.AddressType, strings.Join(ports, ","), strings.Join(eps, " ")))
	}
	slices.Sort(out)
	return out, list.Items, nil
}

func waitView(t *testing.T, client kubernetes.Interface, svc string, want ...string) []discoveryv1.EndpointSlice {
	t.Helper()
	var got []string
	var items []discoveryv1.EndpointSlice
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, items, err = view(ctx, client, svc)
		return slices.Equal(got, want), err
	})
	if err != nil {
		t.Fatalf("mirrored slices of %s:\n got  %q\n want %q", svc, got, want)
	}
	return items
}

func TestMirroring(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
		ep   *corev1.Endpoints
		max  int
		want []string
	}{
		{
			name: "ready and not ready addresses with their ports",
			svc:  makeService("ext"),
			ep:   makeEndpoints("ext").subset([]string{"192.0.2.2", "192.0.2.1"}, []string{"192.0.2.9"}, port("http", 8080)).obj(),
			want: []string{"IPv4 [http:8080]: 192.0.2.1(true) 192.0.2.2(true) 192.0.2.9(false)"},
		},
		{
			name: "one slice per address family and port set",
			svc:  makeService("ext"),
			ep: makeEndpoints("ext").
				subset([]string{"192.0.2.1", "2001:db8::1"}, nil, port("http", 80)).
				subset([]string{"192.0.2.5"}, nil, port("https", 443)).obj(),
			want: []string{"IPv4 [http:80]: 192.0.2.1(true)", "IPv4 [https:443]: 192.0.2.5(true)", "IPv6 [http:80]: 2001:db8::1(true)"},
		},
		{
			name: "invalid, loopback, link-local and multicast addresses are skipped",
			svc:  makeService("ext"),
			ep: makeEndpoints("ext").subset([]string{"not-an-ip", "127.0.0.1", "169.254.0.7", "::1", "fe80::1", "0.0.0.0", "224.0.0.1", "192.0.2.1"},
				[]string{"10.0.0.300"}, port("http", 80)).obj(),
			want: []string{"IPv4 [http:80]: 192.0.2.1(true)"},
		},
		{
			name: "addresses past the per-subset limit are left out, ready ones first",
			svc:  makeService("ext"),
			ep:   makeEndpoints("ext").subset([]string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.3"}, port("http", 80)).obj(),
			max:  2,
			want: []string{"IPv4 [http:80]: 192.0.2.1(true) 192.0.2.2(true)"},
		},
		{
			name: "skip-mirror label",
			svc:  makeService("ext"),
			ep:   makeEndpoints("ext").label(discoveryv1.LabelSkipMirror, "true").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		},
		{
			name: "Endpoints written by the endpoints controller",
			svc:  makeService("ext"),
			ep:   makeEndpoints("ext").label("endpoints.kubernetes.io/managed-by", "endpoint-controller").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		},
		{
			name: "leader-election lock",
			svc:  makeService("ext"),
			ep:   makeEndpoints("ext").annotation("control-plane.alpha.kubernetes.io/leader", "{}").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		},
		{
			name: "Service with a selector",
			svc:  withSelector(makeService("ext")),
			ep:   makeEndpoints("ext").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		},
		{
			name: "no Service",
			svc:  makeService("other"),
			ep:   makeEndpoints("ext").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A marker Service synced by the same workers shows the
			// controller has run when nothing is expected.
			client := newFake(tc.svc, tc.ep, makeService("marker"),
				makeEndpoints("marker").subset([]string{"198.51.100.1"}, nil, port("m", 1)).obj())
			start(t, client, tc.max)
			waitView(t, client, "marker", "IPv4 [m:1]: 198.51.100.1(true)")
			waitView(t, client, "ext", tc.want...)
		})
	}
}

func TestMirroredSliceMetadata(t *testing.T) {
	ep := makeEndpoints("ext").label("team", "a").annotation("note", "kept").
		annotation(corev1.EndpointsLastChangeTriggerTime, "2026-01-01T00:00:00Z").
		annotation(corev1.LastAppliedConfigAnnotation, "{}").
		subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj()
	client := newFake(makeService("ext"), ep)
	start(t, client, 0)
	items := waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true)")
	s := items[0]
	if s.GenerateName != "ext-" || !strings.HasPrefix(s.Name, "ext-") {
		t.Errorf("name %q generateName %q, want generated from ext-", s.Name, s.GenerateName)
	}
	wantLabels := map[string]string{"team": "a", discoveryv1.LabelServiceName: "ext", discoveryv1.LabelManagedBy: ControllerName}
	if fmt.Sprint(s.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("labels %v, want %v", s.Labels, wantLabels)
	}
	if fmt.Sprint(s.Annotations) != fmt.Sprint(map[string]string{"note": "kept"}) {
		t.Errorf("annotations %v, want only note=kept", s.Annotations)
	}
	if len(s.OwnerReferences) != 1 {
		t.Fatalf("ownerReferences %+v, want the Endpoints", s.OwnerReferences)
	}
	o := s.OwnerReferences[0]
	if o.Kind != "Endpoints" || o.APIVersion != "v1" || o.Name != "ext" || o.UID != ep.UID || !ptrValue(o.Controller) {
		t.Errorf("ownerReference %+v, want controller ref to Endpoints ext", o)
	}
}

func TestInvalidAddressesAreReportedAsEvents(t *testing.T) {
	ep := makeEndpoints("ext").subset([]string{"127.0.0.1", "bogus", "192.0.2.1"}, nil, port("http", 80)).obj()
	client := newFake(makeService("ext"), ep)
	rec := start(t, client, 0)
	waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true)")
	select {
	case e := <-rec.Events:
		if !strings.Contains(e, ReasonInvalidIPAddress) || !strings.Contains(e, "Skipped 2 invalid IP addresses") {
			t.Errorf("event %q, want InvalidIPAddress for 2 addresses", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for invalid addresses")
	}
}

func TestMirroredSlicesFollowTheEndpoints(t *testing.T) {
	ctx := context.Background()
	client := newFake(makeService("ext"), makeEndpoints("ext").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj())
	start(t, client, 0)
	items := waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true)")

	// An address becomes not ready and one is added: the slice is updated
	// in place.
	upd := makeEndpoints("ext").subset([]string{"192.0.2.2"}, []string{"192.0.2.1"}, port("http", 80)).obj()
	if _, err := client.CoreV1().Endpoints("default").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(false) 192.0.2.2(true)")
	if after[0].Name != items[0].Name {
		t.Errorf("slice %s replaced by %s, want updated in place", items[0].Name, after[0].Name)
	}

	// A user deletes the mirrored slice: it comes back.
	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, after[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(false) 192.0.2.2(true)")

	// The Endpoints go: so do the slices.
	if err := client.CoreV1().Endpoints("default").Delete(ctx, "ext", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, client, "ext")
}

func TestSlicesGoWhenTheServiceGoesOrGainsASelector(t *testing.T) {
	ctx := context.Background()
	client := newFake(makeService("a"), makeService("b"),
		makeEndpoints("a").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj(),
		makeEndpoints("b").subset([]string{"192.0.2.2"}, nil, port("http", 80)).obj())
	start(t, client, 0)
	waitView(t, client, "a", "IPv4 [http:80]: 192.0.2.1(true)")
	waitView(t, client, "b", "IPv4 [http:80]: 192.0.2.2(true)")

	if err := client.CoreV1().Services("default").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, client, "a")
	if _, err := client.CoreV1().Services("default").Update(ctx, withSelector(makeService("b")), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, client, "b")
}

func TestSkipMirrorLabelAddedRemovesSlices(t *testing.T) {
	ctx := context.Background()
	client := newFake(makeService("ext"), makeEndpoints("ext").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj())
	start(t, client, 0)
	waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true)")
	upd := makeEndpoints("ext").label(discoveryv1.LabelSkipMirror, "true").subset([]string{"192.0.2.1"}, nil, port("http", 80)).obj()
	if _, err := client.CoreV1().Endpoints("default").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, client, "ext")
}

func TestSubsetsWithTheSamePortsShareSlicesOfBoundedSize(t *testing.T) {
	ep := makeEndpoints("ext").
		subset([]string{"192.0.2.1", "192.0.2.2"}, nil, port("http", 80)).
		subset([]string{"192.0.2.3"}, nil, port("http", 80)).obj()
	client := newFake(makeService("ext"), ep)
	start(t, client, 2)
	waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true) 192.0.2.2(true)", "IPv4 [http:80]: 192.0.2.3(true)")
}

func TestTruncationIsReportedAsAnEvent(t *testing.T) {
	ep := makeEndpoints("ext").subset([]string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, nil, port("http", 80)).obj()
	client := newFake(makeService("ext"), ep)
	rec := start(t, client, 2)
	waitView(t, client, "ext", "IPv4 [http:80]: 192.0.2.1(true) 192.0.2.2(true)")
	select {
	case e := <-rec.Events:
		if !strings.Contains(e, ReasonTooManyAddressesToMirror) || !strings.Contains(e, "1 addresses were skipped") {
			t.Errorf("event %q, want TooManyAddressesToMirror for 1 address", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the skipped address")
	}
}
