package apiserver

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const endpointsDeprecation = "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"

// warningRecorder is a client-go WarningHandler keeping what it is told,
// which is what kubectl prints as "Warning: ...".
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (r *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if code == 299 {
		r.warnings = append(r.warnings, text)
	}
}

func (r *warningRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.warnings
	r.warnings = nil
	return w
}

func TestEndpointsRequestsCarryTheDeprecationWarning(t *testing.T) {
	ts := newTestServer(t)
	recorder := &warningRecorder{}
	config := rest.CopyConfig(ts.config)
	config.WarningHandler = recorder
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	eps := client.CoreV1().Endpoints("default")
	for _, call := range []struct {
		verb string
		do   func() error
	}{
		{"create", func() error {
			_, err := eps.Create(ctx(t), &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "e"}}, metav1.CreateOptions{})
			return err
		}},
		{"get", func() error { _, err := eps.Get(ctx(t), "e", metav1.GetOptions{}); return err }},
		{"list in all namespaces", func() error {
			_, err := client.CoreV1().Endpoints("").List(ctx(t), metav1.ListOptions{})
			return err
		}},
		{"watch", func() error {
			w, err := eps.Watch(ctx(t), metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"delete", func() error { return eps.Delete(ctx(t), "e", metav1.DeleteOptions{}) }},
		{"get of a missing object", func() error {
			if _, err := eps.Get(ctx(t), "e", metav1.GetOptions{}); err == nil {
				t.Error("deleted Endpoints still found")
			}
			return nil
		}},
	} {
		if err := call.do(); err != nil {
			t.Fatalf("%s: %v", call.verb, err)
		}
		if got := recorder.take(); !slices.Equal(got, []string{endpointsDeprecation}) {
			t.Errorf("%s: warnings %q, want exactly %q", call.verb, got, endpointsDeprecation)
		}
	}
	if _, err := client.CoreV1().ConfigMaps("default").List(ctx(t), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := recorder.take(); len(got) != 0 {
		t.Errorf("configmaps list warned: %q", got)
	}
	resp := ts.do("GET", "/api/v1/namespaces/default/endpoints", "", "")
	if got := resp.header.Values("Warning"); resp.code != http.StatusOK || !slices.Equal(got, []string{`299 - "` + endpointsDeprecation + `"`}) {
		t.Errorf("raw list: %d, Warning headers %q", resp.code, got)
	}
}

// Valid IPs written in a non-canonical form are taken with upstream's
// warning.
func TestNonCanonicalEndpointIPsGetWarnings(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do("POST", "/api/v1/namespaces/default/endpoints", "application/json",
		`{"metadata":{"name":"e"},"subsets":[{"addresses":[{"ip":"2001:DB8::1"}],"ports":[{"port":80}]}]}`)
	want := []string{
		`299 - "` + endpointsDeprecation + `"`,
		`299 - "subsets[0].addresses[0].ip: IPv6 address \"2001:DB8::1\" should be in RFC 5952 canonical format (\"2001:db8::1\")"`,
	}
	if got := resp.header.Values("Warning"); resp.code != http.StatusCreated || !slices.Equal(got, want) {
		t.Fatalf("create Endpoints: %d, Warning headers %q\nwant %q", resp.code, got, want)
	}
	slice := `{"metadata":{"name":"s"},"addressType":"IPv6","endpoints":[{"addresses":["2001:db8:0::2"]}]}`
	resp = ts.do("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "application/json", slice)
	want = []string{`299 - "endpoints[0].addresses[0]: IPv6 address \"2001:db8:0::2\" should be in RFC 5952 canonical format (\"2001:db8::2\")"`}
	if got := resp.header.Values("Warning"); resp.code != http.StatusCreated || !slices.Equal(got, want) {
		t.Fatalf("create EndpointSlice: %d, Warning headers %q\nwant %q", resp.code, got, want)
	}
	resp = ts.do("PUT", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/s", "application/json", slice)
	if got := resp.header.Values("Warning"); resp.code != http.StatusOK || !slices.Equal(got, want) {
		t.Fatalf("update EndpointSlice: %d, Warning headers %q\nwant %q", resp.code, got, want)
	}
}
