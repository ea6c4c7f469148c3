package nodenet

import (
	"context"
	"net"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPublishPatchesOnlyItsOwnAnnotationsWhenTheyDiffer(t *testing.T) {
	self := makeNode("a").cidr("10.42.1.0/24").ann("team", "blue").ann(AnnotationBackendData, "stale").obj()
	other := makeNode("b").cidr("10.42.2.0/24").obj()
	client := fake.NewClientset(self, other)
	ctx := context.Background()
	n := &NodeNet{cfg: Config{Client: client, NodeName: "a", NodeIP: netip.MustParseAddr("192.0.2.1"), Backend: VXLAN}}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")

	if err := n.publish(ctx, self, mac); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"team":                "blue",
		AnnotationBackendType: "vxlan",
		AnnotationBackendData: `{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}`,
		AnnotationPublicIP:    "192.0.2.1",
	}
	for k, v := range want {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}

	client.ClearActions()
	if err := n.publish(ctx, got, mac); err != nil {
		t.Fatal(err)
	}
	if a := client.Actions(); len(a) != 0 {
		t.Errorf("published again although nothing changed: %v", a)
	}

	// Switched to host-gw: the VTEP data goes.
	n.cfg.Backend = HostGW
	if err := n.publish(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	got, err = client.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Annotations[AnnotationBackendData]; ok || got.Annotations[AnnotationBackendType] != "host-gw" {
		t.Errorf("after switching to host-gw: annotations %v", got.Annotations)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" && a.(interface{ GetName() string }).GetName() != "a" {
			t.Errorf("wrote another node: %v", a)
		}
	}
}
