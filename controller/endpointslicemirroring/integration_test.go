package endpointslicemirroring

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// The classic selectorless Service: a user points it at an external
// database by writing its Endpoints.
func TestMirroringOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	svc := makeService("db")
	svc.UID = ""
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := makeEndpoints("db").subset([]string{"192.0.2.10"}, []string{"192.0.2.11"}, port("http", 5432)).obj()
	ep.UID = ""
	ep, err := s.Client.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Client, 0)
	items := waitView(t, s.Client, "db", "IPv4 [http:5432]: 192.0.2.10(true) 192.0.2.11(false)")
	if o := items[0].OwnerReferences; len(o) != 1 || o[0].UID != ep.UID || o[0].Kind != "Endpoints" {
		t.Errorf("ownerReferences %+v, want the Endpoints %s", o, ep.UID)
	}

	// The user edits the Endpoints.
	ep.Subsets = makeEndpoints("db").subset([]string{"192.0.2.11", "2001:db8::11"}, nil, port("http", 5432)).obj().Subsets
	if _, err := s.Client.CoreV1().Endpoints("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "db", "IPv4 [http:5432]: 192.0.2.11(true)", "IPv6 [http:5432]: 2001:db8::11(true)")

	// A user's edit of a mirrored slice is undone, also across an API
	// server restart.
	s.Restart()
	items = waitView(t, s.Client, "db", "IPv4 [http:5432]: 192.0.2.11(true)", "IPv6 [http:5432]: 2001:db8::11(true)")
	edited := items[0].DeepCopy()
	edited.Endpoints = nil
	if _, err := s.Client.DiscoveryV1().EndpointSlices("default").Update(ctx, edited, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "db", "IPv4 [http:5432]: 192.0.2.11(true)", "IPv6 [http:5432]: 2001:db8::11(true)")

	// The Service gains a selector: the mirrored slices go (the
	// endpointslice controller takes over).
	got, err := s.Client.CoreV1().Services("default").Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Selector = map[string]string{"app": "db"}
	if _, err := s.Client.CoreV1().Services("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "db")

	// Back to no selector, then the Endpoints are deleted.
	got, err = s.Client.CoreV1().Services("default").Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Selector = nil
	if _, err := s.Client.CoreV1().Services("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "db", "IPv4 [http:5432]: 192.0.2.11(true)", "IPv6 [http:5432]: 2001:db8::11(true)")
	if err := s.Client.CoreV1().Endpoints("default").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, s.Client, "db")
}
