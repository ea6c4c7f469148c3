package csrapproving

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/tinykube/tinykube/pki"
)

var (
	clientUsages  = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	servingUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	bootstrapper  = []string{"system:bootstrappers", "system:authenticated"}
	node          = []string{"system:nodes", "system:authenticated"}
)

// request is a CSR as the API server stores it: the requestor recorded.
func request(t *testing.T, name string, kind pki.NodeCert, nodeName string, ips []string, signer string, usages []certificatesv1.KeyUsage, user string, groups []string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	n := pki.JoinedNode{NodeName: nodeName}
	for _, ip := range ips {
		n.IPs = append(n.IPs, netip.MustParseAddr(ip))
	}
	r, err := n.NewRequest(kind)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: r.CSRPEM, SignerName: signer, Usages: usages,
			Username: user, Groups: groups},
	}
}

func TestApprover(t *testing.T) {
	clientSigner, servingSigner := certificatesv1.KubeAPIServerClientKubeletSignerName, certificatesv1.KubeletServingSignerName
	tests := []struct {
		name    string
		csr     *certificatesv1.CertificateSigningRequest
		approve bool
	}{
		{"joining host asks for a node client certificate", request(t, "a", pki.NodeClient, "n1", nil, clientSigner, clientUsages, "system:bootstrap:abcdef", bootstrapper), true},
		{"node renews its own client certificate", request(t, "b", pki.NodeClient, "n1", nil, clientSigner, clientUsages, "system:node:n1", node), true},
		{"node asks for another node's client certificate", request(t, "c", pki.NodeClient, "n2", nil, clientSigner, clientUsages, "system:node:n1", node), false},
		{"a node's name without the nodes group", request(t, "c2", pki.NodeClient, "n1", nil, clientSigner, clientUsages, "system:node:n1", []string{"system:authenticated"}), false},
		{"anyone else asks", request(t, "d", pki.NodeClient, "n1", nil, clientSigner, clientUsages, "alice", []string{"system:authenticated"}), false},
		{"client certificate with server usages", request(t, "e", pki.NodeClient, "n1", nil, clientSigner, servingUsages, "system:bootstrap:abcdef", bootstrapper), false},
		{"client request sent to the serving signer", request(t, "f", pki.NodeClient, "n1", nil, servingSigner, servingUsages, "system:bootstrap:abcdef", bootstrapper), false},
		{"node's serving certificate for its name and address", request(t, "g", pki.NodeServing, "n1", []string{"192.0.2.7"}, servingSigner, servingUsages, "system:node:n1", node), true},
		{"serving certificate for loopback", request(t, "h", pki.NodeServing, "n1", []string{"127.0.0.1"}, servingSigner, servingUsages, "system:node:n1", node), false},
		{"serving certificate asked by someone else", request(t, "i", pki.NodeServing, "n1", []string{"192.0.2.7"}, servingSigner, servingUsages, "alice", []string{"system:authenticated"}), false},
	}
	var objs []*certificatesv1.CertificateSigningRequest
	for _, tt := range tests {
		objs = append(objs, tt.csr)
	}
	client := fake.NewClientset()
	// RBAC as the default policy binds it: nodeclient for
	// system:bootstrappers, selfnodeclient for system:nodes.
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		sar := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		if ra.Group != "certificates.k8s.io" || ra.Resource != "certificatesigningrequests" || ra.Verb != "create" {
			return true, nil, fmt.Errorf("unexpected review %+v", ra)
		}
		switch ra.Subresource {
		case "nodeclient":
			sar.Status.Allowed = slices.Contains(sar.Spec.Groups, "system:bootstrappers")
		case "selfnodeclient":
			sar.Status.Allowed = slices.Contains(sar.Spec.Groups, "system:nodes")
		}
		return true, sar, nil
	})
	for _, o := range objs {
		if _, err := client.CertificatesV1().CertificateSigningRequests().Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		t.Fatal("cache did not sync")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.sync(ctx, tt.csr.Name); err != nil {
				t.Fatal(err)
			}
			got, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, tt.csr.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			approved := len(got.Status.Conditions) == 1 && got.Status.Conditions[0].Type == certificatesv1.CertificateApproved &&
				got.Status.Conditions[0].Reason == "AutoApproved"
			if approved != tt.approve || (!tt.approve && len(got.Status.Conditions) > 0) {
				t.Errorf("conditions %+v, want approved=%v", got.Status.Conditions, tt.approve)
			}
		})
	}
}
