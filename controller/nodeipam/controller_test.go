package nodeipam

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

type nodeBuilder struct{ n *corev1.Node }

func makeNode(name string) nodeBuilder {
	return nodeBuilder{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}}
}
func (b nodeBuilder) podCIDR(c string) nodeBuilder {
	b.n.Spec.PodCIDR, b.n.Spec.PodCIDRs = c, []string{c}
	return b
}
func (b nodeBuilder) obj() *corev1.Node { return b.n }

func start(t *testing.T, client kubernetes.Interface, cluster string) *record.FakeRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	c, err := New(Config{Client: client, Informers: factory, Recorder: rec, ClusterCIDR: netip.MustParsePrefix(cluster), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return rec
}

// podCIDRs waits until every named node has a range and returns them.
func podCIDRs(t *testing.T, client kubernetes.Interface, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if n.Spec.PodCIDR == "" {
				return false, nil
			}
			if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
				t.Errorf("node %s: podCIDRs %v do not match podCIDR %s", name, n.Spec.PodCIDRs, n.Spec.PodCIDR)
			}
			got[name] = n.Spec.PodCIDR
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for pod CIDRs of %v: %v (have %v)", names, err, got)
	}
	return got
}

func assertUnique(t *testing.T, cidrs map[string]string) {
	t.Helper()
	seen := map[string]string{}
	for node, c := range cidrs {
		if other, ok := seen[c]; ok {
			t.Errorf("nodes %s and %s share %s", node, other, c)
		}
		seen[c] = node
	}
}

func TestNodesGetDistinctSlash24sFromTheClusterCIDR(t *testing.T) {
	client := fake.NewClientset(makeNode("n0").podCIDR("10.42.0.0/24").obj(), makeNode("n1").obj(), makeNode("n2").obj())
	start(t, client, "10.42.0.0/16")
	ctx := context.Background()
	if _, err := client.CoreV1().Nodes().Create(ctx, makeNode("n3").obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := podCIDRs(t, client, "n0", "n1", "n2", "n3")
	if got["n0"] != "10.42.0.0/24" {
		t.Errorf("existing range of n0 changed to %s", got["n0"])
	}
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	for node, c := range got {
		p := netip.MustParsePrefix(c)
		if p.Bits() != 24 || !cluster.Contains(p.Addr()) {
			t.Errorf("node %s got %s, want a /24 in %s", node, c, cluster)
		}
	}
	assertUnique(t, got)
}

func TestDeletedNodesRangeIsReused(t *testing.T) {
	// Two /24s in a /23: the third node waits until a node goes.
	client := fake.NewClientset(makeNode("a").obj(), makeNode("b").obj())
	rec := start(t, client, "10.42.0.0/23")
	first := podCIDRs(t, client, "a", "b")
	assertUnique(t, first)

	ctx := context.Background()
	if _, err := client.CoreV1().Nodes().Create(ctx, makeNode("c").obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-rec.Events:
		if want := "Normal CIDRNotAvailable Node c status is now: CIDRNotAvailable"; e != want {
			t.Errorf("event %q, want %q", e, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no CIDRNotAvailable event for a node that cannot get a range")
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := podCIDRs(t, client, "c")
	if got["c"] != first["a"] {
		t.Errorf("node c got %s, want the range %s released by node a", got["c"], first["a"])
	}
}

func TestAllocationIsRebuiltOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	for _, n := range []*corev1.Node{makeNode("old").podCIDR("10.42.0.0/24").obj(), makeNode("new1").obj(), makeNode("new2").obj()} {
		if _, err := s.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	start(t, s.Client, "10.42.0.0/16")
	got := podCIDRs(t, s.Client, "old", "new1", "new2")
	assertUnique(t, got)
	if got["old"] != "10.42.0.0/24" {
		t.Errorf("old node's range changed to %s", got["old"])
	}
}

func TestCIDRSet(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		size    int
		wantN   []string
	}{
		{"ipv4 slash 24s", "10.42.0.0/16", 24, []string{"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"}},
		{"ipv6 slash 64s", "fd00:42::/56", 64, []string{"fd00:42::/64", "fd00:42:0:1::/64", "fd00:42:0:2::/64"}},
		{"unmasked cluster CIDR", "10.42.7.9/16", 24, []string{"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.size)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.wantN {
				got, err := s.allocate()
				if err != nil || got.String() != want {
					t.Errorf("allocation %d: %v, %v; want %s", i, got, err, want)
				}
			}
		})
	}
	if _, err := newCIDRSet(netip.MustParsePrefix("10.42.0.0/16"), 8); err == nil {
		t.Error("mask size shorter than the cluster CIDR accepted")
	}
}
