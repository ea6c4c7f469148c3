package clusterdns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name, podCIDR string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}}
}

func start(t *testing.T, nodes ...*corev1.Node) *fake.Clientset {
	t.Helper()
	client := fake.NewClientset()
	for _, n := range nodes {
		if _, err := client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: f, ClusterDNS: netip.MustParseAddr("10.43.0.10")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.Start(ctx.Done())
	go c.Run(ctx)
	return client
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func slices(t *testing.T, client *fake.Clientset) map[string]discoveryv1.EndpointSlice {
	t.Helper()
	l, err := client.DiscoveryV1().EndpointSlices(Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]discoveryv1.EndpointSlice{}
	for _, s := range l.Items {
		m[s.Name] = s
	}
	return m
}

func TestServiceAndOneSlicePerNodeAtItsGateway(t *testing.T) {
	client := start(t, node("a", "10.42.0.0/24"), node("b", "10.42.1.0/24"), node("nocidr", ""))
	ctx := context.Background()
	waitFor(t, "two slices", func() (bool, error) { return len(slices(t, client)) == 2, nil })
	svc, err := client.CoreV1().Services(Namespace).Get(ctx, ServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.43.0.10" || len(svc.Spec.Selector) != 0 || *svc.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyLocal {
		t.Fatalf("service spec %+v", svc.Spec)
	}
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Protocol != corev1.ProtocolUDP || svc.Spec.Ports[1].Protocol != corev1.ProtocolTCP {
		t.Fatalf("ports %+v", svc.Spec.Ports)
	}
	s := slices(t, client)
	b := s["kube-dns-b"]
	if got := b.Endpoints[0].Addresses[0]; got != "10.42.1.1" || *b.Endpoints[0].NodeName != "b" {
		t.Fatalf("node b's DNS endpoint is %s on %v", got, *b.Endpoints[0].NodeName)
	}
	if b.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		t.Fatalf("labels %v", b.Labels)
	}

	// Node a leaves: its slice goes.
	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slice of a removed", func() (bool, error) { _, ok := slices(t, client)["kube-dns-a"]; return !ok, nil })

	// A slice edited by hand is put back.
	b.Endpoints[0].Addresses = []string{"10.42.1.99"}
	if _, err := client.DiscoveryV1().EndpointSlices(Namespace).Update(ctx, &b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slice restored", func() (bool, error) {
		return slices(t, client)["kube-dns-b"].Endpoints[0].Addresses[0] == "10.42.1.1", nil
	})

	// The Service deleted by a user comes back.
	if err := client.CoreV1().Services(Namespace).Delete(ctx, ServiceName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "service recreated", func() (bool, error) {
		_, err := client.CoreV1().Services(Namespace).Get(ctx, ServiceName, metav1.GetOptions{})
		return err == nil, nil
	})
}
