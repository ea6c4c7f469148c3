package authn_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// cluster is a TLS server behind the authenticator whose handler answers
// with the authenticated user, and the material to call it.
type cluster struct {
	url    string
	bundle *pki.Bundle
	token  string
	server *httptest.Server
}

func newBundle(t *testing.T) *pki.Bundle {
	t.Helper()
	b, err := pki.Ensure(pki.Config{
		Dir:       filepath.Join(t.TempDir(), "tls"),
		ServiceIP: netip.MustParseAddr("10.43.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	b := newBundle(t)
	tokenPath := filepath.Join(t.TempDir(), "server", "tokens.csv")
	tokens, err := authn.EnsureTokenFile(tokenPath, authn.User{Name: "admin-token", UID: "admin", Groups: []string{pki.AdminGroup}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := strings.Cut(string(data), ",")

	loopback, err := authn.NewTokens(map[string]authn.User{"loopback-secret": {Name: "system:kube-scheduler"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{ClientCAs: b.ClientCAs, Tokens: []*authn.Tokens{tokens, loopback}})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authn.UserFrom(r.Context())
		if !ok {
			http.Error(w, "no user in context", http.StatusInternalServerError)
			return
		}
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "authorization header leaked to handler", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s", u.Name, strings.Join(u.Groups, ","))
	}))
	srv := httptest.NewUnstartedServer(h)
	// As the real server: ask for a certificate, verify it in the
	// authenticator, so a bad one gets a 401 rather than a TLS alert.
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{b.Serving},
		ClientAuth:   tls.RequestClientCert,
		ClientCAs:    b.ClientCAs,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &cluster{url: srv.URL, bundle: b, token: token, server: srv}
}

// client trusts the cluster CA and presents cert when not nil.
func (c *cluster) client(cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(c.bundle.CA)
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(t *testing.T, hc *http.Client, url, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestAuthentication(t *testing.T) {
	c := startCluster(t)
	admin, err := tls.X509KeyPair(c.bundle.AdminCertPEM, c.bundle.AdminKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreign := newBundle(t)
	foreignAdmin, err := tls.X509KeyPair(foreign.AdminCertPEM, foreign.AdminKeyPEM)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		path     string
		cert     *tls.Certificate
		token    string
		wantCode int
		wantUser string
	}{
		{"admin certificate", "/api/v1/pods", &admin, "", 200, "kubernetes-admin system:masters,system:authenticated"},
		{"bearer token", "/api/v1/pods", nil, c.token, 200, "admin-token system:masters,system:authenticated"},
		{"in-memory token", "/api/v1/pods", nil, "loopback-secret", 200, "system:kube-scheduler system:authenticated"},
		{"no credential", "/api", nil, "", 401, ""},
		{"no credential on a path that only starts like a public one", "/versions", nil, "", 401, ""},
		{"wrong token", "/api", nil, "not-the-token", 401, ""},
		{"certificate from another CA", "/api", &foreignAdmin, "", 401, ""},
		{"wrong token on a public path", "/healthz", nil, "not-the-token", 401, ""},
		{"version without credential", "/version", nil, "", 200, "system:anonymous system:unauthenticated"},
		{"healthz without credential", "/healthz", nil, "", 200, "system:anonymous system:unauthenticated"},
		{"livez subpath without credential", "/livez/ping", nil, "", 200, "system:anonymous system:unauthenticated"},
		{"readyz without credential", "/readyz", nil, "", 200, "system:anonymous system:unauthenticated"},
		{"version with certificate", "/version", &admin, "", 200, "kubernetes-admin system:masters,system:authenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, c.client(tt.cert), c.url+tt.path, tt.token)
			if code != tt.wantCode {
				t.Fatalf("code = %d (%s), want %d", code, body, tt.wantCode)
			}
			if code == 200 {
				if body != tt.wantUser {
					t.Errorf("user = %q, want %q", body, tt.wantUser)
				}
				return
			}
			var st metav1.Status
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("401 body is not a Status: %v: %s", err, body)
			}
			if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure ||
				st.Reason != metav1.StatusReasonUnauthorized || st.Code != 401 || st.Message != "Unauthorized" {
				t.Errorf("401 body = %+v, want upstream's Unauthorized Status", st)
			}
		})
	}
}

func TestReadTokenFileUpstreamFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	content := "# comment\n" +
		"tok1,alice,uid-1\n" +
		"tok2,bob,uid-2,\"dev,ops\"\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.ReadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{Tokens: []*authn.Tokens{tokens}})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := authn.UserFrom(r.Context())
		fmt.Fprintf(w, "%s %s %s", u.Name, u.UID, strings.Join(u.Groups, ","))
	}))
	for token, want := range map[string]string{
		"tok1": "alice uid-1 system:authenticated",
		"tok2": "bob uid-2 dev,ops,system:authenticated",
	} {
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("token %s: %d %q, want %q", token, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestReadTokenFileRejectsMalformed(t *testing.T) {
	for name, content := range map[string]string{
		"too few fields":  "tok,alice\n",
		"duplicate token": "tok,alice,1\ntok,bob,2\n",
		"empty token":     ",alice,1\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.csv")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := authn.ReadTokenFile(path); err == nil {
				t.Error("accepted a malformed token file")
			}
		})
	}
}

func TestEnsureTokenFileIsPrivateAndStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "tokens.csv")
	u := authn.User{Name: "admin", UID: "admin", Groups: []string{"system:masters"}}
	if _, err := authn.EnsureTokenFile(path, u); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	if _, err := authn.EnsureTokenFile(path, u); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Error("token changed on the second start")
	}
}
