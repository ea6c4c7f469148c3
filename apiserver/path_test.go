package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
)

// servingRecorder records, per request, what a server authorized and
// what it served.
type servingRecorder struct {
	asked  []authz.Attributes
	routed []requestTarget
}

// recordServing makes s allow everything and record it in the returned
// recorder.
func recordServing(s *Server) *servingRecorder {
	rec := &servingRecorder{}
	s.authz.chain = rec
	s.routed = func(_ *http.Request, t requestTarget) { rec.routed = append(rec.routed, t) }
	return rec
}

// Authorize allows everything and remembers what it was asked.
func (rec *servingRecorder) Authorize(_ context.Context, a authz.Attributes) (authz.Decision, string, error) {
	rec.asked = append(rec.asked, a)
	return authz.Allow, "", nil
}

// reset forgets the last request.
func (rec *servingRecorder) reset() { rec.asked, rec.routed = nil, nil }

// check fails unless the last request was either not served, or served
// after one authorization that names exactly what was served.
func (rec *servingRecorder) check(r *http.Request) error {
	switch {
	case len(rec.routed) == 0:
		return nil
	case len(rec.routed) > 1 || len(rec.asked) != 1:
		return fmt.Errorf("served %d times after %d authorizations", len(rec.routed), len(rec.asked))
	}
	return attributesName(rec.asked[0], r, rec.routed[0])
}

// routePaths are the canonical paths of every route the server serves:
// for every resource its collection (also across namespaces), one object
// and each of its subresources.
func routePaths(s *Server) []string {
	var out []string
	for _, gv := range s.resources.groups {
		prefix := "/apis/" + gv.String()
		if gv.Group == "" {
			prefix = "/api/" + gv.Version
		}
		for _, res := range s.resources.byGV[gv] {
			base := prefix
			if res.Namespaced {
				out = append(out, prefix+"/"+res.GVR.Resource)
				base += "/namespaces/ns1"
			}
			out = append(out, base+"/"+res.GVR.Resource, base+"/"+res.GVR.Resource+"/obj1")
			for _, sub := range res.Subresources {
				out = append(out, base+"/"+res.GVR.Resource+"/obj1/"+sub)
			}
		}
	}
	return out
}

// pathVariant is a spelling of a canonical path and whether the server
// must refuse it before authorizing or serving anything.
type pathVariant struct {
	path    string
	refused bool
}

// pathVariants spells p in every way a router and an authorizer could
// read differently: an empty segment, "." and "x/.." segments and an
// encoded slash at every separator, the name replaced by "." and "..",
// and (served as p) a trailing slash and percent-encoded letters.
func pathVariants(p string) []pathVariant {
	out := []pathVariant{{p + "/", false}, {"/" + p, true}}
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		out = append(out,
			pathVariant{p[:i] + "/" + p[i:], true},
			pathVariant{p[:i] + "/." + p[i:], true},
			pathVariant{p[:i] + "/x/.." + p[i:], true},
			pathVariant{p[:i] + "%2F" + p[i+1:], true},
			pathVariant{p[:i] + "%2f" + p[i+1:], true},
			pathVariant{p[:i+1] + fmt.Sprintf("%%%02X", p[i+1]) + p[i+2:], false},
		)
	}
	if strings.Contains(p, "/obj1") {
		out = append(out,
			pathVariant{strings.Replace(p, "/obj1", "/.", 1), true},
			pathVariant{strings.Replace(p, "/obj1", "/..", 1), true},
		)
	}
	return out
}

// attributesName reports whether a names exactly t and the verb the
// handler serves for r's method (a list may name the object its
// metadata.name field selector asks for, which is all it can return).
func attributesName(a authz.Attributes, r *http.Request, t requestTarget) error {
	method := r.Method
	want := authz.Attributes{
		ResourceRequest: true, APIGroup: t.res.GVR.Group, APIVersion: t.res.GVR.Version,
		Resource: t.res.GVR.Resource, Subresource: t.subresource, Namespace: t.namespace, Name: t.name,
	}
	if t.res.GVR.Group == "" && t.res.GVR.Resource == "namespaces" {
		want.Namespace = t.name
	}
	switch {
	case method == http.MethodGet && t.name == "":
		want.Verb = "list"
	case method == http.MethodGet:
		want.Verb = "get"
	case method == http.MethodPost:
		want.Verb = "create"
	case method == http.MethodPut:
		want.Verb = "update"
	case method == http.MethodPatch:
		want.Verb = "patch"
	case method == http.MethodDelete && t.name == "":
		want.Verb = "deletecollection"
	case method == http.MethodDelete:
		want.Verb = "delete"
	}
	got := a
	got.User, got.Path, got.FieldSelector = authn.User{}, "", nil
	if sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector")); err == nil && want.Verb == "list" {
		if name, ok := sel.RequiresExactMatch("metadata.name"); ok && got.Name == name {
			got.Name = ""
		}
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("authorized %+v, served %+v", got, want)
	}
	return nil
}

func TestEveryRouteAuthorizesWhatItServes(t *testing.T) {
	ts := newTestServer(t)
	rec := recordServing(ts.api)
	handler := ts.api.Handler()
	user := authn.User{Name: "tester"}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	paths := routePaths(ts.api)
	if len(paths) < 100 {
		t.Fatalf("only %d routes found", len(paths))
	}
	var checked int
	for _, canonical := range paths {
		variants := append([]pathVariant{{canonical, false}}, pathVariants(canonical)...)
		for _, v := range variants {
			for _, method := range methods {
				rec.reset()
				r := httptest.NewRequest(method, "http://tinykube"+v.path, strings.NewReader("{}"))
				r.Header.Set("Content-Type", "application/merge-patch+json")
				if method != http.MethodPatch {
					r.Header.Set("Content-Type", "application/json")
				}
				r = r.WithContext(authn.WithUser(r.Context(), user))
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, r)
				what := method + " " + v.path
				if v.refused {
					if len(rec.asked) != 0 || len(rec.routed) != 0 || (w.Code != http.StatusNotFound && w.Code != http.StatusBadRequest) {
						t.Errorf("%s: want 404 or 400 before authorization, got %d (authorized %d, served %d)", what, w.Code, len(rec.asked), len(rec.routed))
					}
					continue
				}
				if len(rec.routed) == 0 {
					if method != http.MethodGet && method != http.MethodPost && w.Code == http.StatusNotFound {
						continue // e.g. PUT on a collection: not served
					}
					t.Errorf("%s: not served (%d)", what, w.Code)
					continue
				}
				if err := rec.check(r); err != nil {
					t.Errorf("%s: %v", what, err)
				}
				checked++
			}
		}
	}
	t.Logf("%d routes, %d served requests checked", len(paths), checked)

	// A cluster-scoped resource is served under no namespace: its paths
	// there would be authorized in the namespace.
	for _, res := range ts.api.resources.byGVR {
		if res.Namespaced || res.CreateOnly != nil {
			continue
		}
		prefix := "/apis/" + res.GVR.GroupVersion().String()
		if res.GVR.Group == "" {
			prefix = "/api/" + res.GVR.Version
		}
		for _, path := range []string{prefix + "/namespaces/ns1/" + res.GVR.Resource, prefix + "/namespaces/ns1/" + res.GVR.Resource + "/ns1"} {
			rec.reset()
			r := httptest.NewRequest(http.MethodGet, "http://tinykube"+path, nil)
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), user)))
			if len(rec.routed) != 0 || w.Code != http.StatusNotFound {
				t.Errorf("GET %s: got %d, served %+v", path, w.Code, rec.routed)
			}
		}
	}
}

// TestEmptySegmentDoesNotBypassRBAC is issue 13's finding 2: with get and
// delete on every resource of every group (kubectl's "*.*"), neither
// listing Secrets nor deleting a collection may succeed through a path
// with an empty segment.
func TestEmptySegmentDoesNotBypassRBAC(t *testing.T) {
	s := newAuthServer(t)
	admin := s.client
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx(t), &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "everything-get-delete"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get", "delete"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-everything-get-delete"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "everything-get-delete"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets("other").Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "join-token"}, StringData: map[string]string{"token": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps("other").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keep"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/v1/secrets", http.StatusForbidden},
		{"GET", "/api/v1//secrets", http.StatusNotFound},
		{"GET", "/api/v1/namespaces/other//secrets", http.StatusNotFound},
		{"GET", "/api/v1/namespaces/other/secrets/", http.StatusForbidden},
		{"GET", "/api/v1/namespaces%2Fother%2Fsecrets", http.StatusNotFound},
		{"GET", "/api/v1/namespaces/x/../other/secrets", http.StatusNotFound},
		{"DELETE", "/api/v1/namespaces/other/configmaps", http.StatusForbidden},
		{"DELETE", "/api/v1//namespaces/other/configmaps", http.StatusNotFound},
		{"DELETE", "/api/v1/namespaces/other/configmaps//", http.StatusNotFound},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, s.url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, resp)
		if got.code != tt.code || strings.Contains(string(got.body), "join-token") {
			t.Errorf("%s %s: got %d %s, want %d", tt.method, tt.path, got.code, got.body, tt.code)
		}
	}
	if _, err := admin.CoreV1().ConfigMaps("other").Get(ctx(t), "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap was deleted: %v", err)
	}
}
