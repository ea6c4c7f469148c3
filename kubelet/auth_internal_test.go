package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestNodeSubresourcesAsUpstream(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/containerLogs/default/web/main", []string{"proxy"}},
		{"/exec/default/web/main", []string{"proxy"}},
		{"/attach/default/web/main", []string{"proxy"}},
		{"/portForward/default/web", []string{"proxy"}},
		{"/healthz", []string{"healthz", "proxy"}},
		{"/pods", []string{"pods", "proxy"}},
		{"/podsx", []string{"proxy"}},
		{"/configz", []string{"configz", "proxy"}},
		{"/stats/summary", []string{"stats"}},
		{"/metrics/cadvisor", []string{"metrics"}},
		{"/logs/syslog", []string{"log"}},
		{"/checkpoint/default/web/main", []string{"checkpoint"}},
	}
	for _, tt := range tests {
		if got := nodeSubresources(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("%s: subresources %v, want %v", tt.path, got, tt.want)
		}
	}
}

// reviewer answers SubjectAccessReviews on a fake clientset from the set
// of users allowed, and keeps the specs it was asked.
type reviewer struct {
	mu      sync.Mutex
	allowed map[string]bool
	asked   []authorizationv1.SubjectAccessReviewSpec
}

func (r *reviewer) allow(user string, yes bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allowed[user] = yes
}

func (r *reviewer) client() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.asked = append(r.asked, review.Spec)
		review.Status.Allowed = r.allowed[review.Spec.User]
		return true, review, nil
	})
	return c
}

func TestWebhookDecisionsAreCachedAsUpstream(t *testing.T) {
	rev := &reviewer{allowed: map[string]bool{}}
	clk := clocktesting.NewFakePassiveClock(time.Now())
	authz, err := NewWebhookAuthorizer(WebhookAuthorizerConfig{Client: rev.client(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	spec := authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{
		Verb: "get", Version: "v1", Resource: "nodes", Subresource: "proxy", Name: "node-1"}}
	allowed := func() bool {
		t.Helper()
		st, err := authz.Authorize(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return st.Allowed
	}
	if allowed() {
		t.Fatal("alice allowed before any rule")
	}
	rev.allow("alice", true)
	clk.SetTime(clk.Now().Add(DefaultUnauthorizedTTL - time.Second))
	if allowed() {
		t.Error("a denial was not reused within 30 s")
	}
	clk.SetTime(clk.Now().Add(2 * time.Second))
	if !allowed() {
		t.Error("a denial was reused after 30 s")
	}
	rev.allow("alice", false)
	clk.SetTime(clk.Now().Add(DefaultAuthorizedTTL - time.Second))
	if !allowed() {
		t.Error("an allow was not reused within 5 min")
	}
	clk.SetTime(clk.Now().Add(2 * time.Second))
	if allowed() {
		t.Error("an allow was reused after 5 min")
	}
	if len(rev.asked) != 3 {
		t.Errorf("%d SubjectAccessReviews for 5 questions, want 3 (two answers reused)", len(rev.asked))
	}
}

func TestKubeletAPIAsksAndAnswersAsUpstream(t *testing.T) {
	rev := &reviewer{allowed: map[string]bool{"kube-apiserver-kubelet-client": true}}
	authz, err := NewWebhookAuthorizer(WebhookAuthorizerConfig{Client: rev.client()})
	if err != nil {
		t.Fatal(err)
	}
	k := &Kubelet{cfg: Config{NodeName: "node-1", Authorizer: authz}, log: slog.New(slog.DiscardHandler)}
	h := k.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) }))
	call := func(method, path string, subject *pkix.Name) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "https://node-1:10250"+path, nil)
		req.TLS = &tls.ConnectionState{}
		if subject != nil {
			req.TLS.PeerCertificates = []*x509.Certificate{{Subject: *subject}}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := call(http.MethodPost, "/exec/default/web/main", &pkix.Name{CommonName: "alice", Organization: []string{"devs"}})
	if rec.Code != http.StatusForbidden || rec.Body.String() != "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n" {
		t.Errorf("alice's exec: %d %q, want upstream's 403", rec.Code, rec.Body.String())
	}
	want := authorizationv1.SubjectAccessReviewSpec{User: "alice", Groups: []string{"devs", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Version: "v1", Resource: "nodes", Subresource: "proxy", Name: "node-1"}}
	if len(rev.asked) != 1 || !equalSpec(rev.asked[0], want) {
		t.Errorf("asked %+v, want one review %+v", rev.asked, want)
	}

	rec = call(http.MethodGet, "/healthz", &pkix.Name{CommonName: "alice"})
	if rec.Code != http.StatusForbidden || rec.Body.String() != "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n" {
		t.Errorf("alice's healthz: %d %q, want upstream's 403 naming both subresources", rec.Code, rec.Body.String())
	}
	if rec := call(http.MethodGet, "/containerLogs/default/web/main", &pkix.Name{CommonName: "kube-apiserver-kubelet-client"}); rec.Code != http.StatusOK {
		t.Errorf("the API server's logs: %d %q, want it served", rec.Code, rec.Body.String())
	}
	if rec := call(http.MethodGet, "/healthz", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("no client certificate: %d, want 401", rec.Code)
	}
}

func equalSpec(a, b authorizationv1.SubjectAccessReviewSpec) bool {
	return a.User == b.User && slices.Equal(a.Groups, b.Groups) && *a.ResourceAttributes == *b.ResourceAttributes
}
