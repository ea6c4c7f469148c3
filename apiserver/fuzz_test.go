package apiserver

// Fuzz targets for everything a client controls: request bodies, patches,
// selectors, continue tokens and paths. Each asserts that bad input is
// answered with a 4xx Status: never a panic, never a 5xx. Their seed
// corpora (testdata/fuzz/<target>) hold real requests (kubectl's and
// client-go's) and run with the unit tests; `make fuzz` fuzzes each
// target for a bounded time.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// fuzzServer is a test server for a fuzz target, with a pod
// default/p to patch and a few config maps to page through. Writes the
// fuzzer sends carry dryRun=All, so the store does not grow.
func fuzzServer(f *testing.F) *testServer {
	ts := newTestServer(f)
	if _, err := ts.client.CoreV1().Pods("default").Create(f.Context(), makePod("p"), metav1.CreateOptions{}); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := ts.client.CoreV1().ConfigMaps("default").Create(f.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			f.Fatal(err)
		}
	}
	return ts
}

// serveFuzzed runs one request through the server's handler and fails
// unless the answer is a success or a 4xx Status.
func serveFuzzed(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code < 400 {
		return w
	}
	var status metav1.Status
	if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil || status.Kind != "Status" || int(status.Code) != w.Code {
		t.Fatalf("%s %s: %d without a Status: %.300s", r.Method, r.URL, w.Code, w.Body.Bytes())
	}
	if w.Code >= 500 && !expected5xx(status) {
		t.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, status.Message)
	}
	return w
}

// expected5xx are the server errors upstream answers to a client's input
// too: its storage refuses a create that carries a resourceVersion with a
// plain error (500).
func expected5xx(s metav1.Status) bool {
	return s.Code == http.StatusInternalServerError &&
		s.Message == "Internal error occurred: resourceVersion should not be set on objects to be created"
}

// fuzzCollections are the collections FuzzDecodeBody posts to: core and
// group resources with webhooks-free validation of every kind.
var fuzzCollections = []string{
	"/api/v1/namespaces/default/pods",
	"/api/v1/namespaces/default/services",
	"/api/v1/namespaces/default/configmaps",
	"/apis/apps/v1/namespaces/default/deployments",
	"/apis/rbac.authorization.k8s.io/v1/clusterroles",
	"/api/v1/nodes",
}

// FuzzDecodeBody posts arbitrary bodies, in JSON, YAML, protobuf or any
// other claimed media type, through the server's decode path.
func FuzzDecodeBody(f *testing.F) {
	h := fuzzServer(f).api.Handler()
	f.Fuzz(func(t *testing.T, collection uint8, contentType string, body []byte) {
		path := fuzzCollections[int(collection)%len(fuzzCollections)]
		r := httptest.NewRequest(http.MethodPost, path+"?dryRun=All&fieldValidation=Strict", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", contentType)
		serveFuzzed(t, h, r)
	})
}

// FuzzPatch sends arbitrary JSON, merge, strategic merge and apply
// patches to a pod.
func FuzzPatch(f *testing.F) {
	h := fuzzServer(f).api.Handler()
	f.Fuzz(func(t *testing.T, patchType string, patch []byte) {
		r := httptest.NewRequest(http.MethodPatch, "/api/v1/namespaces/default/pods/p?dryRun=All&fieldManager=fuzz", strings.NewReader(string(patch)))
		r.Header.Set("Content-Type", patchType)
		serveFuzzed(t, h, r)
	})
}

// FuzzSelectors lists and watches-as-list pods with arbitrary label and
// field selectors.
func FuzzSelectors(f *testing.F) {
	h := fuzzServer(f).api.Handler()
	f.Fuzz(func(t *testing.T, labelSelector, fieldSelector string) {
		q := url.Values{"labelSelector": {labelSelector}, "fieldSelector": {fieldSelector}}
		for _, path := range []string{"/api/v1/namespaces/default/pods", "/api/v1/pods", "/api/v1/nodes"} {
			serveFuzzed(t, h, httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil))
		}
	})
}

// FuzzContinueToken pages through config maps with arbitrary continue
// tokens and limits.
func FuzzContinueToken(f *testing.F) {
	h := fuzzServer(f).api.Handler()
	f.Fuzz(func(t *testing.T, token, limit string) {
		q := url.Values{"continue": {token}, "limit": {limit}}
		serveFuzzed(t, h, httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps?"+q.Encode(), nil))
	})
}

// FuzzPath sends every verb to arbitrary request targets, as an
// authenticated user, and checks that whatever is served is exactly what
// was authorized.
func FuzzPath(f *testing.F) {
	ts := fuzzServer(f)
	rec := recordServing(ts.api)
	h := ts.api.Handler()
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	f.Fuzz(func(t *testing.T, method uint8, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return // net/http would refuse the request line
		}
		m := methods[int(method)%len(methods)]
		q := u.Query()
		q.Del("watch") // a watch would not end
		if m != http.MethodGet {
			q.Set("dryRun", "All")
		}
		u.RawQuery = q.Encode()
		r := &http.Request{Method: m, URL: u, RequestURI: u.RequestURI(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: http.NoBody, Host: "tinykube"}
		if m == http.MethodPatch {
			r.Header.Set("Content-Type", "application/merge-patch+json")
		}
		r = r.WithContext(authn.WithUser(t.Context(), authn.User{Name: "fuzz"}))
		rec.reset()
		serveFuzzed(t, h, r)
		if err := rec.check(r); err != nil {
			t.Fatalf("%s %s: %v", m, target, err)
		}
	})
}
