package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tinykube/tinykube/agent"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
	"github.com/tinykube/tinykube/server"
)

// joinTestServer is a `tinykube server --disable-agent` child process and
// an admin client of it.
type joinTestServer struct {
	*serverProcess
	dataDir string
	admin   kubernetes.Interface
	token   string
}

func startJoinTestServer(t *testing.T) *joinTestServer {
	t.Helper()
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, "server", "token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &joinTestServer{serverProcess: p, dataDir: dataDir, admin: admin, token: strings.TrimSpace(string(data))}
}

// join joins as nodeName with token into a fresh agent dir, or dir when
// given.
func (s *joinTestServer) join(t *testing.T, token, nodeName, dir string) (*agent.Joined, error) {
	t.Helper()
	return s.joinAt(t, token, nodeName, dir, nil)
}

// joinAt is join with the node's clock at now.
func (s *joinTestServer) joinAt(t *testing.T, token, nodeName, dir string, now func() time.Time) (*agent.Joined, error) {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "agent", "tls")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return agent.Join(ctx, agent.JoinConfig{Server: s.url, Token: token, Dir: dir, NodeName: nodeName,
		NodeIP: netip.MustParseAddr("192.0.2.10"), Now: now})
}

// whoami is `kubectl auth whoami` with the joined node's credentials.
func whoami(t *testing.T, j *agent.Joined) string {
	t.Helper()
	c, err := kubernetes.NewForConfig(j.API)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.UserInfo.Username + " " + strings.Join(r.Status.UserInfo.Groups, ",")
}

func csrCount(t *testing.T, s *joinTestServer) int {
	t.Helper()
	l, err := s.admin.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

func TestJoinWithTheServerTokenGetsNodeCertificates(t *testing.T) {
	s := startJoinTestServer(t)
	if _, err := pki.ParseJoinToken(s.token); err != nil || !strings.HasPrefix(s.token, "K10") {
		t.Fatalf("server token %q: %v", s.token, err)
	}
	dir := filepath.Join(t.TempDir(), "agent", "tls")
	j, err := s.join(t, s.token, "node-a", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := whoami(t, j); got != "system:node:node-a system:nodes,system:authenticated" {
		t.Errorf("joined node authenticates as %q", got)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "kubelet-client.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:node-a" {
		t.Errorf("saved client certificate is for %q", cert.Subject.CommonName)
	}
	for _, key := range []string{"kubelet-client.key", "kubelet-serving.key"} {
		fi, err := os.Stat(filepath.Join(dir, key))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", key, err, fi.Mode())
		}
	}
	if _, err := j.ServingCert.Leaf.Verify(x509.VerifyOptions{Roots: j.ClientCAs, DNSName: "node-a",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	if err := j.ServingCert.Leaf.VerifyHostname("192.0.2.10"); err != nil {
		t.Errorf("serving certificate: %v", err)
	}

	// A restart reuses what it has: no new request.
	before := csrCount(t, s)
	again, err := s.join(t, s.token, "node-a", dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := csrCount(t, s); n != before {
		t.Errorf("restart made %d new certificate requests", n-before)
	}
	if string(readFile(t, again.API.CertFile)) != string(certPEM) {
		t.Error("restart did not reuse the client certificate")
	}

	// Close to expiry, the node renews as itself: the token (here one
	// that no longer works) is not needed any more.
	jt, err := pki.ParseJoinToken(s.token)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := authn.ParseBootstrapToken(jt.Credential)
	stale := "K10" + jt.CAHash + "::" + id + ".0000000000000000"
	later := func() time.Time { return time.Now().Add(300 * 24 * time.Hour) }
	renewed, err := s.joinAt(t, stale, "node-a", dir, later)
	if err != nil {
		t.Fatal(err)
	}
	if string(readFile(t, renewed.API.CertFile)) == string(certPEM) {
		t.Error("a client certificate close to expiry was not renewed")
	}
	csrs, err := s.admin.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var requestors []string
	for _, c := range csrs.Items {
		requestors = append(requestors, c.Spec.Username)
	}
	slices.Sort(requestors)
	if want := "system:bootstrap:" + id + ",system:node:node-a,system:node:node-a,system:node:node-a"; strings.Join(requestors, ",") != want {
		t.Errorf("requestors %v, want the token for the first client certificate and the node for the rest (%s)", requestors, want)
	}
}

func TestTokenCreatePrintsATokenThatJoins(t *testing.T) {
	s := startJoinTestServer(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	token, err := server.CreateJoinToken(context.Background(), cfg, server.TokenOptions{TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if token == s.token || !strings.HasPrefix(token, s.token[:strings.Index(s.token, "::")+2]) {
		t.Fatalf("token %q, want a new credential for the same CA as %q", token, s.token)
	}
	j, err := s.join(t, token, "node-b", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := whoami(t, j); !strings.HasPrefix(got, "system:node:node-b ") {
		t.Errorf("joined node authenticates as %q", got)
	}
}

func TestJoinRefusesBadTokensAndRegistersNothing(t *testing.T) {
	s := startJoinTestServer(t)
	good, err := pki.ParseJoinToken(s.token)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := authn.ParseBootstrapToken(good.Credential)
	caPEM, err := os.ReadFile(pki.CACertPath(filepath.Join(s.dataDir, "server", "tls")))
	if err != nil {
		t.Fatal(err)
	}

	expired, err := authn.NewBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := authn.BootstrapTokenSecret(expired, time.Now().Add(-time.Minute), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.CoreV1().Secrets("kube-system").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"wrong secret", pki.FormatJoinToken(caPEM, id+".0000000000000000"), agent.ErrTokenRefused},
		{"unknown token", pki.FormatJoinToken(caPEM, "zzzzzz.0123456789abcdef"), agent.ErrTokenRefused},
		{"expired token", pki.FormatJoinToken(caPEM, expired), agent.ErrTokenRefused},
		{"token for another CA", pki.FormatJoinToken(other.CACertPEM, good.Credential), pki.ErrCAHashMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.join(t, tt.token, "intruder", "")
			if !errors.Is(err, tt.want) {
				t.Fatalf("join: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := s.join(t, good.Credential, "intruder", ""); err == nil || !strings.Contains(err.Error(), "carries no CA hash") {
		t.Errorf("a token without the CA hash: %v", err)
	}
	if n := csrCount(t, s); n != 0 {
		t.Errorf("refused tokens left %d certificate requests", n)
	}
	nodes, err := s.admin.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 0 {
		t.Errorf("refused tokens registered nodes: %v", nodes.Items)
	}
}

func TestTokenCreateCommandPrintsATokenThatAuthenticates(t *testing.T) {
	s := startJoinTestServer(t)
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"token", "create", "--ttl", "2h", "--groups", "system:bootstrappers:worker", "--kubeconfig", s.kubeconfig}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	jt, err := pki.ParseJoinToken(stdout.String())
	if err != nil || strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("printed %q: %v", stdout.String(), err)
	}
	id, _, ok := authn.ParseBootstrapToken(jt.Credential)
	if !ok {
		t.Fatalf("credential %q is not a bootstrap token", jt.Credential)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CertData, cfg.KeyData, cfg.BearerToken = nil, nil, jt.Credential
	if got := whoami(t, &agent.Joined{API: cfg}); got != "system:bootstrap:"+id+" system:bootstrappers,system:bootstrappers:worker,system:authenticated" {
		t.Errorf("the printed token authenticates as %q", got)
	}
	secret, err := s.admin.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, string(secret.Data["expiration"]))
	if err != nil || time.Until(exp) > 2*time.Hour || time.Until(exp) < time.Hour {
		t.Errorf("expiration %q (%v), want about two hours from now", secret.Data["expiration"], err)
	}
}

func TestTokenListAndDelete(t *testing.T) {
	s := startJoinTestServer(t)
	tokenCmd := func(args ...string) string {
		t.Helper()
		var stdout, stderr strings.Builder
		if code := run(context.Background(), append(append([]string{"token"}, args...), "--kubeconfig", s.kubeconfig), &stdout, &stderr); code != 0 {
			t.Fatalf("token %v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	token := strings.TrimSpace(tokenCmd("create", "--description", "for rack 2"))
	jt, err := pki.ParseJoinToken(token)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := authn.ParseBootstrapToken(jt.Credential)
	list := tokenCmd("list")
	if !strings.HasPrefix(list, "ID ") || !strings.Contains(list, id) || !strings.Contains(list, "for rack 2") || !strings.Contains(list, "authentication,signing") {
		t.Errorf("token list:\n%s", list)
	}
	if strings.Contains(list, jt.Credential) {
		t.Errorf("token list shows a secret:\n%s", list)
	}
	tokenCmd("delete", token)
	if strings.Contains(tokenCmd("list"), id) {
		t.Error("deleted token still listed")
	}
	if _, err := s.join(t, token, "node-c", ""); !errors.Is(err, agent.ErrTokenRefused) {
		t.Errorf("join with a deleted token: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
