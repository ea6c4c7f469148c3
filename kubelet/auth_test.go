package kubelet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/pki"
)

// kubeletAPICaller calls a kubelet's HTTPS API directly with a client
// certificate the cluster CA signed for subject.
type kubeletAPICaller struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newKubeletAPICaller(t *testing.T, caDir string, caPool *x509.CertPool, port int32, subject pkix.Name) *kubeletAPICaller {
	t.Helper()
	signer, err := pki.LoadSigner(pki.CACertPath(caDir), pki.CAKeyPath(caDir))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := signer.Sign(pki.SignRequest{Request: csr, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Lifetime: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("signer returned no PEM certificate")
	}
	cert := tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: caPool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &kubeletAPICaller{t: t, base: "https://127.0.0.1:" + itoa(port), hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// call answers the status code and body of method path.
func (c *kubeletAPICaller) call(method, path string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestKubeletAPIAuthorizesCallersThroughRBAC(t *testing.T) {
	caDir := t.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: caDir, ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	nb, err := pki.EnsureNode(pki.NodeConfig{CADir: caDir, Dir: t.TempDir(), NodeName: nodeName, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	api := apiservertest.Start(t, apiservertest.Options{API: apiserver.Config{
		KubeletTransport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: bundle.ClientCAs, Certificates: []tls.Certificate{bundle.KubeletClient}}},
	}})
	// Decisions are cached as upstream (a denial for 30 s); the test
	// moves this clock past that instead of waiting.
	decisionClock := clocktesting.NewFakePassiveClock(time.Now())
	authorizer, err := kubelet.NewWebhookAuthorizer(kubelet.WebhookAuthorizerConfig{Client: api.Client, Clock: decisionClock})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, api, func(c *kubelet.Config) {
		c.ServingCert = &nb.Serving
		c.ClientCAs = nb.ClientCAs
		c.ListenAddress = "127.0.0.1:0"
		c.Authorizer = authorizer
	})
	n.create(newPod("talk", testimage.BusyboxRef).command("sh", "-c", "echo hello; sleep 3600").obj())
	n.waitPod("talk", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	ctx := context.Background()
	node, err := n.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	const logsPath = "/containerLogs/default/talk/main"

	// The API server, with its kubelet client certificate: kubectl logs
	// works (exec and port-forward: stream_test.go).
	logs, err := n.client.CoreV1().Pods("default").GetLogs("talk", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || !strings.HasPrefix(string(logs), "hello\n") {
		t.Errorf("kubectl logs through the API server: %q, %v", logs, err)
	}
	// Its user alone (without system:masters) is enough: the default
	// policy binds it system:kubelet-api-admin.
	apiserverUser := newKubeletAPICaller(t, caDir, nb.ClientCAs, port, pkix.Name{CommonName: pki.KubeletClientUser})
	if code, body := apiserverUser.call(http.MethodGet, logsPath); code != http.StatusOK || !strings.HasPrefix(body, "hello\n") {
		t.Errorf("logs as %s: %d %q, want the container's output", pki.KubeletClientUser, code, body)
	}

	// Another client certificate of the cluster CA, without a right.
	alice := newKubeletAPICaller(t, caDir, nb.ClientCAs, port, pkix.Name{CommonName: "alice", Organization: []string{"devs"}})
	forbidden := map[string]string{
		http.MethodGet:  "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])\n",
		http.MethodPost: "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n",
	}
	if code, body := alice.call(http.MethodGet, logsPath); code != http.StatusForbidden || body != forbidden[http.MethodGet] {
		t.Errorf("alice's logs: %d %q, want 403 %q", code, body, forbidden[http.MethodGet])
	}
	if code, body := alice.call(http.MethodPost, "/exec/default/talk/main?command=id&output=1"); code != http.StatusForbidden || body != forbidden[http.MethodPost] {
		t.Errorf("alice's exec: %d %q, want 403 %q", code, body, forbidden[http.MethodPost])
	}

	// kubectl create clusterrolebinding alice --clusterrole=system:kubelet-api-admin --user=alice
	if _, err := n.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-kubelet-api-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The denial is reused for 30 s, as upstream's kubelet reuses it.
	if code, _ := alice.call(http.MethodGet, logsPath); code != http.StatusForbidden {
		t.Errorf("alice's logs right after the binding: %d, want the cached 403", code)
	}
	decisionClock.SetTime(decisionClock.Now().Add(kubelet.DefaultUnauthorizedTTL + time.Second))
	if code, body := alice.call(http.MethodGet, logsPath); code != http.StatusOK || !strings.HasPrefix(body, "hello\n") {
		t.Errorf("alice's logs once bound: %d %q, want the container's output", code, body)
	}
	// Past authorization, the exec handler itself answers (this request
	// does not upgrade the connection).
	if code, body := alice.call(http.MethodPost, "/exec/default/talk/main?command=id&output=1"); code == http.StatusForbidden {
		t.Errorf("alice's exec once bound: %d %q, want it past authorization", code, body)
	}
}
