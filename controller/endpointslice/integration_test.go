package endpointslice

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// setStatus plays the kubelet: the pod gets an IP and a readiness.
func setStatus(t *testing.T, client kubernetes.Interface, name, ip string, ready bool) {
	t.Helper()
	ctx := context.Background()
	pod, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := podBuilder{pod}.ip(ip).ready(ready)
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, b.obj(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestEndpointSlicesFollowReadinessOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	svc := makeService("web").obj()
	svc.UID, svc.Spec.ClusterIP, svc.Spec.IPFamilies = "", "", nil
	svc, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Client)

	// No pods yet: one empty slice, as upstream shows for a fresh Service.
	var items []discoveryv1.EndpointSlice
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, items, err = endpointView(ctx, s.Client, "web")
		return len(items) > 0, err
	}); err != nil {
		t.Fatalf("no slice for a fresh service: %v", err)
	}
	if len(items) != 1 || items[0].Endpoints != nil || items[0].Ports != nil {
		t.Fatalf("fresh service: slices %+v, want one with endpoints and ports null", items)
	}
	checkSliceMeta(t, &items[0], svc)

	for _, name := range []string{"a", "b"} {
		p := makePod(name).obj()
		p.UID = ""
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(t, s.Client, "a", "10.42.0.5", false)
	setStatus(t, s.Client, "b", "10.42.0.6", true)
	notReady := "ready=false serving=false terminating=false node= zone= ports=http:8080"
	ready := "ready=true serving=true terminating=false node= zone= ports=http:8080"
	waitView(t, s.Client, "web", map[string]string{"10.42.0.5": notReady, "10.42.0.6": ready})
	waitLegacy(t, s.Client, "web", "ready=[10.42.0.6] notReady=[10.42.0.5] ports=[http:8080]")
	ep, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ep.Labels["endpoints.kubernetes.io/managed-by"]; got != "endpoint-controller" {
		t.Errorf("Endpoints managed-by label %q, want endpoint-controller", got)
	}

	setStatus(t, s.Client, "a", "10.42.0.5", true)
	setStatus(t, s.Client, "b", "10.42.0.6", false)
	items = waitView(t, s.Client, "web", map[string]string{"10.42.0.5": ready, "10.42.0.6": notReady})
	waitLegacy(t, s.Client, "web", "ready=[10.42.0.5] notReady=[10.42.0.6] ports=[http:8080]")
	if len(items) != 1 {
		t.Errorf("%d slices for two pods, want 1", len(items))
	}

	if err := s.Client.CoreV1().Pods("default").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "web", map[string]string{"10.42.0.6": notReady})
	waitLegacy(t, s.Client, "web", "ready=[] notReady=[10.42.0.6] ports=[http:8080]")

	// The controller survives an API server restart and keeps one slice.
	s.Restart()
	setStatus(t, s.Client, "b", "10.42.0.6", true)
	items = waitView(t, s.Client, "web", map[string]string{"10.42.0.6": ready})
	if len(items) != 1 {
		t.Errorf("%d slices after restart, want 1", len(items))
	}
}

// Users write Endpoints by hand for Services without a selector, often in
// the same file as the Service and before it: the controller must leave
// them alone.
func TestHandWrittenEndpointsAreKept(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	manual := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "192.0.2.50"}},
			Ports:     []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if _, err := s.Client.CoreV1().Endpoints("default").Create(ctx, manual, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start(t, s.Client)
	// A Service with a selector created after the controller started gets
	// its slice: by then the controller has synced the Endpoints too, for
	// a Service that does not exist yet.
	web := makeService("web").obj()
	web.UID, web.Spec.ClusterIP, web.Spec.IPFamilies = "", "", nil
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, items, err := endpointView(ctx, s.Client, "web")
		return len(items) > 0, err
	}); err != nil {
		t.Fatalf("no slice for web: %v", err)
	}
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Client.CoreV1().Endpoints("default").Get(ctx, "ext", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("hand-written Endpoints were removed: %v", err)
	}
	if len(got.Subsets) != 1 || got.Subsets[0].Addresses[0].IP != "192.0.2.50" {
		t.Fatalf("hand-written Endpoints changed: %+v", got.Subsets)
	}
}
