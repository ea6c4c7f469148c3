package endpointslice

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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
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

func start(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
}

// endpointView is what a user reads off a service's slices: address ->
// "ready/serving/terminating node zone port".
func endpointView(ctx context.Context, client kubernetes.Interface, svc string) (map[string]string, []discoveryv1.EndpointSlice, error) {
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, nil, err
	}
	view := map[string]string{}
	for _, s := range list.Items {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", ptrValue(p.Name), ptrValue(p.Port)))
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			view[e.Addresses[0]] = fmt.Sprintf("ready=%v serving=%v terminating=%v node=%s zone=%s ports=%s",
				ptrValue(c.Ready), ptrValue(c.Serving), ptrValue(c.Terminating), ptrValue(e.NodeName), ptrValue(e.Zone), strings.Join(ports, ","))
		}
	}
	return view, list.Items, nil
}

func waitView(t *testing.T, client kubernetes.Interface, svc string, want map[string]string) []discoveryv1.EndpointSlice {
	t.Helper()
	var got map[string]string
	var items []discoveryv1.EndpointSlice
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, items, err = endpointView(ctx, client, svc)
		if err != nil {
			return false, err
		}
		if len(got) != len(want) {
			return false, nil
		}
		for k, v := range want {
			if got[k] != v {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("endpoints of %s:\n got %v\nwant %v", svc, got, want)
	}
	return items
}

// legacyView is the Endpoints object as kubectl describe summarizes it.
func legacyView(ctx context.Context, client kubernetes.Interface, svc string) (string, error) {
	ep, err := client.CoreV1().Endpoints("default").Get(ctx, svc, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "<none>", nil
	}
	if err != nil {
		return "", err
	}
	var parts []string
	for _, s := range ep.Subsets {
		var ready, notReady, ports []string
		for _, a := range s.Addresses {
			ready = append(ready, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		parts = append(parts, fmt.Sprintf("ready=%v notReady=%v ports=%v", ready, notReady, ports))
	}
	return strings.Join(parts, "; "), nil
}

func waitLegacy(t *testing.T, client kubernetes.Interface, svc, want string) {
	t.Helper()
	var got string
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = legacyView(ctx, client, svc)
		return got == want, err
	})
	if err != nil {
		t.Fatalf("Endpoints %s:\n got %q\nwant %q", svc, got, want)
	}
}

func TestEndpointsOfASelectorService(t *testing.T) {
	tests := []struct {
		name       string
		svc        *corev1.Service
		pods       []*corev1.Pod
		wantSlices map[string]string
		wantLegacy string
	}{
		{
			name: "ready and not-ready pods, named targetPort, node and zone",
			svc:  makeService("web").obj(),
			pods: []*corev1.Pod{
				makePod("a").ip("10.42.0.5").node("n1").ready(true).obj(),
				makePod("b").ip("10.42.1.5").node("n2").ready(false).obj(),
				makePod("no-ip").obj(),
				makePod("done").ip("10.42.0.9").phase(corev1.PodSucceeded).obj(),
				makePod("other").ip("10.42.0.7").labels(map[string]string{"app": "db"}).ready(true).obj(),
			},
			wantSlices: map[string]string{
				"10.42.0.5": "ready=true serving=true terminating=false node=n1 zone=z1 ports=http:8080",
				"10.42.1.5": "ready=false serving=false terminating=false node=n2 zone=z2 ports=http:8080",
			},
			wantLegacy: "ready=[10.42.0.5] notReady=[10.42.1.5] ports=[http:8080]",
		},
		{
			name: "numeric targetPort and a port the pod cannot resolve",
			svc: makeService("web").ports(
				corev1.ServicePort{Name: "num", Port: 81, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9000)},
				corev1.ServicePort{Name: "missing", Port: 82, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")},
			).obj(),
			pods:       []*corev1.Pod{makePod("a").ip("10.42.0.5").ready(true).obj()},
			wantSlices: map[string]string{"10.42.0.5": "ready=true serving=true terminating=false node= zone= ports=num:9000"},
			wantLegacy: "ready=[10.42.0.5] notReady=[] ports=[num:9000]",
		},
		{
			name:       "publishNotReadyAddresses makes not-ready pods ready",
			svc:        makeService("web").publishNotReady().obj(),
			pods:       []*corev1.Pod{makePod("a").ip("10.42.0.5").ready(false).obj()},
			wantSlices: map[string]string{"10.42.0.5": "ready=true serving=true terminating=false node= zone= ports=http:8080"},
			wantLegacy: "ready=[10.42.0.5] notReady=[] ports=[http:8080]",
		},
		{
			name: "terminating ready pod is serving but not ready; legacy Endpoints drop it",
			svc:  makeService("web").obj(),
			pods: []*corev1.Pod{
				makePod("a").ip("10.42.0.5").ready(true).terminating().obj(),
				makePod("b").ip("10.42.0.6").ready(true).obj(),
			},
			wantSlices: map[string]string{
				"10.42.0.5": "ready=false serving=true terminating=true node= zone= ports=http:8080",
				"10.42.0.6": "ready=true serving=true terminating=false node= zone= ports=http:8080",
			},
			wantLegacy: "ready=[10.42.0.6] notReady=[] ports=[http:8080]",
		},
		{
			name:       "no pods: one empty slice, no subsets",
			svc:        makeService("web").obj(),
			wantSlices: map[string]string{},
			wantLegacy: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{tt.svc, makeNode("n1", "z1"), makeNode("n2", "z2")}
			for _, p := range tt.pods {
				objs = append(objs, p)
			}
			client := newFake(objs...)
			start(t, client)
			waitLegacy(t, client, "web", tt.wantLegacy)
			items := waitView(t, client, "web", tt.wantSlices)
			if len(items) != 1 {
				t.Fatalf("%d slices, want 1", len(items))
			}
			checkSliceMeta(t, &items[0], tt.svc)
		})
	}
}

// checkSliceMeta checks what upstream puts on every slice.
func checkSliceMeta(t *testing.T, s *discoveryv1.EndpointSlice, svc *corev1.Service) {
	t.Helper()
	if s.GenerateName != svc.Name+"-" || !strings.HasPrefix(s.Name, svc.Name+"-") {
		t.Errorf("slice name %q generateName %q, want generated from %q", s.Name, s.GenerateName, svc.Name+"-")
	}
	if s.Labels[discoveryv1.LabelServiceName] != svc.Name || s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" {
		t.Errorf("slice labels %v", s.Labels)
	}
	if s.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("addressType %s", s.AddressType)
	}
	if len(s.OwnerReferences) != 1 {
		t.Fatalf("ownerReferences %v", s.OwnerReferences)
	}
	o := s.OwnerReferences[0]
	if o.APIVersion != "v1" || o.Kind != "Service" || o.Name != svc.Name || o.UID != svc.UID || !ptrValue(o.Controller) || !ptrValue(o.BlockOwnerDeletion) {
		t.Errorf("ownerReference %+v", o)
	}
	if _, err := time.Parse(time.RFC3339, s.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
		t.Errorf("trigger time annotation: %v", err)
	}
}

func TestAtMostHundredEndpointsPerSlice(t *testing.T) {
	objs := []runtime.Object{makeService("web").obj()}
	want := map[string]string{}
	for i := range 250 {
		ip := fmt.Sprintf("10.42.%d.%d", i/200, i%200+1)
		objs = append(objs, makePod(fmt.Sprintf("p%03d", i)).ip(ip).ready(true).obj())
		want[ip] = "ready=true serving=true terminating=false node= zone= ports=http:8080"
	}
	client := newFake(objs...)
	start(t, client)
	items := waitView(t, client, "web", want)
	var sizes []int
	for _, s := range items {
		sizes = append(sizes, len(s.Endpoints))
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{50, 100, 100}) {
		t.Errorf("slice sizes %v, want [50 100 100]", sizes)
	}
}

func TestDeletedServiceTakesItsEndpointsAlong(t *testing.T) {
	client := newFake(makeService("web").obj(), makePod("a").ip("10.42.0.5").ready(true).obj())
	start(t, client)
	waitLegacy(t, client, "web", "ready=[10.42.0.5] notReady=[] ports=[http:8080]")
	if err := client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLegacy(t, client, "web", "<none>")
	waitView(t, client, "web", map[string]string{})
}

func TestExternalNameServiceGetsNoEndpoints(t *testing.T) {
	client := newFake(makeService("web").obj(), makePod("a").ip("10.42.0.5").ready(true).obj())
	start(t, client)
	waitLegacy(t, client, "web", "ready=[10.42.0.5] notReady=[] ports=[http:8080]")
	ctx := context.Background()
	svc, err := client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type, svc.Spec.ExternalName, svc.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", ""
	if _, err := client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLegacy(t, client, "web", "<none>")
	waitView(t, client, "web", map[string]string{})
}

func TestSelectorlessServiceIsLeftAlone(t *testing.T) {
	svc := makeService("manual").obj()
	svc.Spec.Selector = nil
	client := newFake(svc, makeService("web").obj(), makePod("a").ip("10.42.0.5").ready(true).obj())
	start(t, client)
	// Once "web" is handled, so is "manual" (both queued at start).
	waitLegacy(t, client, "web", "ready=[10.42.0.5] notReady=[] ports=[http:8080]")
	if got, _ := legacyView(context.Background(), client, "manual"); got != "<none>" {
		t.Errorf("selectorless service got Endpoints %q", got)
	}
}

func TestTerminatingNamespaceIsNotRetriedOrReported(t *testing.T) {
	client := newFake(makeService("web").obj(), makePod("a").ip("10.42.0.5").ready(true).obj())
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "",
			fmt.Errorf("unable to create new content in namespace default because it is being terminated"))
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(10)
	c, err := New(Config{Client: client, Informers: factory, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := c.sync(ctx, "default/web"); err != nil {
		t.Errorf("sync in a terminating namespace: %v, want nil (nothing to retry)", err)
	}
	if len(rec.Events) != 0 {
		t.Errorf("event recorded for a terminating namespace: %q", <-rec.Events)
	}
}
