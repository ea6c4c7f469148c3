package pki

import (
	"bytes"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEnsureNodeIssuesKubeletCertificates(t *testing.T) {
	cfg := testConfig(t)
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	node := NodeConfig{
		CADir:    cfg.Dir,
		Dir:      filepath.Join(t.TempDir(), "agent", "tls"),
		NodeName: "node-1",
		IPs:      []netip.Addr{netip.MustParseAddr("192.0.2.10")},
	}
	nb, err := EnsureNode(node)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(nb.CACertPEM, b.CACertPEM) {
		t.Error("node bundle carries another CA")
	}
	// The API server dials the kubelet by address and checks it against
	// the cluster CA.
	if _, err := nb.Serving.Leaf.Verify(x509.VerifyOptions{Roots: b.ClientCAs}); err != nil {
		t.Errorf("kubelet serving certificate: %v", err)
	}
	for _, host := range []string{"node-1", "192.0.2.10"} {
		if err := nb.Serving.Leaf.VerifyHostname(host); err != nil {
			t.Errorf("kubelet serving certificate: %v", err)
		}
	}
	client, err := parseCert(nb.ClientCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != "system:node:node-1" || !slices.Equal(client.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("kubelet client subject %v", client.Subject)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: b.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kubelet client certificate: %v", err)
	}

	// The API server's side of that connection.
	kc := b.KubeletClient.Leaf
	if kc.Subject.CommonName != KubeletClientUser {
		t.Errorf("API server's kubelet client subject %v", kc.Subject)
	}
	if _, err := kc.Verify(x509.VerifyOptions{Roots: nb.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("API server's kubelet client certificate does not verify at the kubelet: %v", err)
	}

	again, err := EnsureNode(node)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ClientCertPEM, nb.ClientCertPEM) || !bytes.Equal(again.Serving.Certificate[0], nb.Serving.Certificate[0]) {
		t.Error("node certificates changed on restart")
	}

	node.NodeName = "node-2"
	renamed, err := EnsureNode(node)
	if err != nil {
		t.Fatal(err)
	}
	client, err = parseCert(renamed.ClientCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != "system:node:node-2" {
		t.Errorf("renamed node's client certificate is for %s", client.Subject.CommonName)
	}
	if err := renamed.Serving.Leaf.VerifyHostname("node-2"); err != nil {
		t.Errorf("renamed node's serving certificate: %v", err)
	}
}

func TestEnsureNodeNeedsTheCA(t *testing.T) {
	_, err := EnsureNode(NodeConfig{CADir: t.TempDir(), Dir: t.TempDir(), NodeName: "n"})
	if err == nil {
		t.Fatal("EnsureNode issued certificates without a CA")
	}
}

func TestEnsureServiceAccountKeyIsStableAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	first, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(second) {
		t.Error("service account key changed on restart")
	}
	fi, err := os.Stat(filepath.Join(dir, serviceAccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("service account key mode %v", fi.Mode().Perm())
	}
}
