package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// csrClient talks to ts as user, as the authenticator would have put it on
// every request.
func csrClient(t *testing.T, ts *testServer, user authn.User) kubernetes.Interface {
	t.Helper()
	h := ts.api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), user)))
	}))
	t.Cleanup(srv.Close)
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func csrRequestPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func makeCSR(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrRequestPEM(t, "system:node:n1"),
			SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
}

func TestCSRCreateRecordsTheRequestorNotTheBody(t *testing.T) {
	ts := newTestServer(t)
	c := csrClient(t, ts, authn.User{Name: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers", "system:authenticated"}})
	csr := makeCSR(t, "node-csr-1")
	csr.Spec.Username = "system:admin"
	csr.Spec.Groups = []string{"system:masters"}
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
	got, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx(t), csr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Username != "system:bootstrap:abcdef" || strings.Join(got.Spec.Groups, ",") != "system:bootstrappers,system:authenticated" {
		t.Errorf("requestor = %q %v, want the authenticated user", got.Spec.Username, got.Spec.Groups)
	}
	if len(got.Status.Conditions) != 0 {
		t.Errorf("created pre-approved: %v", got.Status.Conditions)
	}
}

func TestCSRValidation(t *testing.T) {
	ts := newTestServer(t)
	short := int32(599)
	tests := []struct {
		name   string
		mutate func(*certificatesv1.CertificateSigningRequest)
		want   string
	}{
		{"request not PEM", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("nope") },
			"spec.request: Invalid value"},
		{"request of another PEM type", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = selfSignedPEM(t) },
			"PEM block type must be CERTIFICATE REQUEST"},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" },
			"spec.signerName: Required value"},
		{"signer without path", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com" },
			"must be a fully qualified domain and path of the form 'example.com/signer-name'"},
		{"no usages", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil },
			"spec.usages: Required value"},
		{"unknown usage", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = []certificatesv1.KeyUsage{"fly"} },
			`spec.usages[0]: Unsupported value: "fly"`},
		{"duplicate usage", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageClientAuth}
		}, `spec.usages[1]: Duplicate value: "client auth"`},
		{"duration under ten minutes", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = &short },
			"spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := makeCSR(t, "bad")
			tt.mutate(csr)
			_, err := ts.client.CertificatesV1().CertificateSigningRequests().Create(ctx(t), csr, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want 422 with %q", err, tt.want)
			}
		})
	}
}

func TestCSRApprovalStatusAndSpecAreSeparate(t *testing.T) {
	ts := newTestServer(t)
	csrs := ts.client.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx(t), makeCSR(t, "n1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "ok"}

	// /status may not approve.
	viaStatus := csr.DeepCopy()
	viaStatus.Status.Conditions = append(viaStatus.Status.Conditions, approved)
	if _, err := csrs.UpdateStatus(ctx(t), viaStatus, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `updates may not add a condition of type "Approved"`) {
		t.Fatalf("approve through /status: %v", err)
	}
	// /approval may not issue.
	viaApproval := csr.DeepCopy()
	viaApproval.Status.Conditions = append(viaApproval.Status.Conditions, approved)
	viaApproval.Status.Certificate = selfSignedPEM(t)
	csr, err = csrs.UpdateApproval(ctx(t), csr.Name, viaApproval, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.Status.Certificate) != 0 {
		t.Error("/approval set the certificate")
	}
	if len(csr.Status.Conditions) != 1 || csr.Status.Conditions[0].LastUpdateTime.IsZero() || csr.Status.Conditions[0].LastTransitionTime.IsZero() {
		t.Errorf("approved conditions %+v, want one with its times filled", csr.Status.Conditions)
	}

	// The main resource changes neither spec nor status.
	edited := csr.DeepCopy()
	edited.Spec.SignerName = "example.com/other"
	edited.Status.Conditions = nil
	edited.Labels = map[string]string{"a": "b"}
	csr, err = csrs.Update(ctx(t), edited, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || len(csr.Status.Conditions) != 1 || csr.Labels["a"] != "b" {
		t.Errorf("main update: signer %q, conditions %v, labels %v", csr.Spec.SignerName, csr.Status.Conditions, csr.Labels)
	}

	// The signer issues once; the certificate then never changes.
	issued := csr.DeepCopy()
	issued.Status.Certificate = selfSignedPEM(t)
	csr, err = csrs.UpdateStatus(ctx(t), issued, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.Status.Certificate) == 0 {
		t.Fatal("certificate not stored")
	}
	again := csr.DeepCopy()
	again.Status.Certificate = selfSignedPEM(t)
	if _, err := csrs.UpdateStatus(ctx(t), again, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "updates may not modify existing certificate content") {
		t.Fatalf("second certificate: %v", err)
	}
	garbage := csr.DeepCopy()
	garbage.Status.Conditions = nil
	if _, err := csrs.UpdateApproval(ctx(t), csr.Name, garbage, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `updates may not remove a condition of type "Approved"`) {
		t.Fatalf("removing the approval: %v", err)
	}
}

func TestCSRTableAsKubectlShowsIt(t *testing.T) {
	ts := newTestServer(t)
	c := csrClient(t, ts, authn.User{Name: "system:node:n1", Groups: []string{"system:nodes", "system:authenticated"}})
	csr := makeCSR(t, "n1")
	d := int32(3600)
	csr.Spec.ExpirationSeconds = &d
	if _, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx(t), csr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(http.MethodGet, "/apis/certificates.k8s.io/v1/certificatesigningrequests", "", "", "Accept", kubectlTableAccept)
	var table metav1.Table
	if err := json.Unmarshal(resp.body, &table); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "Name,Age,SignerName,Requestor,RequestedDuration,Condition" {
		t.Errorf("columns %s", got)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows %v", table.Rows)
	}
	cells := table.Rows[0].Cells
	if cells[2] != "kubernetes.io/kube-apiserver-client-kubelet" || cells[3] != "system:node:n1" || cells[4] != "60m" || cells[5] != "Pending" {
		t.Errorf("row %v", cells)
	}
}
