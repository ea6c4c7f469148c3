package csrsigning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/pki"
)

// startSigner runs the signer with a fresh cluster CA against client and
// returns the CA's PEM.
func startSigner(t *testing.T, client kubernetes.Interface) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	b, err := pki.Ensure(pki.Config{Dir: dir, ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := pki.LoadSigner(pki.CACertPath(dir), pki.CAKeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: f, Signer: signer, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	f.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
	})
	return b.CACertPEM
}

// submit creates a CSR for request and approves it, as `kubectl
// certificate approve` would.
func submit(t *testing.T, client kubernetes.Interface, name, signer string, request []byte, usages []certificatesv1.KeyUsage, seconds *int32) {
	t.Helper()
	ctx := context.Background()
	csr, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: signer, Usages: usages, ExpirationSeconds: seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "KubectlApprove"})
	if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits until the signer has issued a certificate or failed the
// request.
func waitDone(t *testing.T, client kubernetes.Interface, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var csr *certificatesv1.CertificateSigningRequest
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		csr, err = client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		return err == nil && (len(csr.Status.Certificate) > 0 || has(csr, certificatesv1.CertificateFailed)), nil
	})
	if err != nil {
		t.Fatalf("CSR %s neither issued nor failed: %+v", name, csr.Status)
	}
	return csr
}

func parseIssued(t *testing.T, csr *certificatesv1.CertificateSigningRequest, caPEM []byte, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(csr.Status.Certificate)
	if block == nil {
		t.Fatalf("CSR %s: no certificate (%+v)", csr.Name, csr.Status.Conditions)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("CSR %s: certificate does not verify against the cluster CA: %v", csr.Name, err)
	}
	return cert
}

func TestSignerIssuesApprovedKubeletCertificates(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	caPEM := startSigner(t, s.Client)
	node := pki.JoinedNode{NodeName: "n1", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	client, err := node.NewRequest(pki.NodeClient)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := node.NewRequest(pki.NodeServing)
	if err != nil {
		t.Fatal(err)
	}
	hour := int32(3600)
	submit(t, s.Client, "client", certificatesv1.KubeAPIServerClientKubeletSignerName, client.CSRPEM,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, &hour)
	submit(t, s.Client, "serving", certificatesv1.KubeletServingSignerName, serving.CSRPEM,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth}, nil)

	cert := parseIssued(t, waitDone(t, s.Client, "client"), caPEM, x509.ExtKeyUsageClientAuth)
	if cert.Subject.CommonName != "system:node:n1" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("client certificate subject %v", cert.Subject)
	}
	if got := cert.NotAfter.Sub(time.Now()); got > time.Hour || got < 50*time.Minute {
		t.Errorf("client certificate valid for %v more, want the hour asked for", got)
	}
	cert = parseIssued(t, waitDone(t, s.Client, "serving"), caPEM, x509.ExtKeyUsageServerAuth)
	if cert.VerifyHostname("n1") != nil || cert.VerifyHostname("192.0.2.7") != nil {
		t.Errorf("serving certificate names %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if got := cert.NotAfter.Sub(time.Now()); got < 364*24*time.Hour {
		t.Errorf("serving certificate valid for %v more, want the default year", got)
	}
}

func TestSignerFailsRequestsThatAreNotAKubelets(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startSigner(t, s.Client)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A client certificate that would also serve kubernetes.default.
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}},
		DNSNames: []string{"kubernetes.default"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	submit(t, s.Client, "sneaky", certificatesv1.KubeAPIServerClientKubeletSignerName, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, nil)
	csr := waitDone(t, s.Client, "sneaky")
	if len(csr.Status.Certificate) > 0 {
		t.Fatal("issued a client certificate carrying a DNS name")
	}
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateFailed && (c.Reason != "SignerValidationFailure" || c.Message != "DNS subjectAltNames are not allowed") {
			t.Errorf("Failed condition %+v", c)
		}
	}
}
