package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJoinTokenCarriesTheCAHash(t *testing.T) {
	b, err := Ensure(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	full := FormatJoinToken(b.CACertPEM, "abcdef.0123456789abcdef")
	if !strings.HasPrefix(full, "K10") || !strings.HasSuffix(full, "::abcdef.0123456789abcdef") {
		t.Fatalf("token %q is not K10<hash>::<credential>", full)
	}
	tok, err := ParseJoinToken(full)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Credential != "abcdef.0123456789abcdef" || tok.VerifyCA(b.CACertPEM) != nil {
		t.Errorf("parsed %+v does not verify its own CA", tok)
	}
	other, err := Ensure(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.VerifyCA(other.CACertPEM); !errors.Is(err, ErrCAHashMismatch) {
		t.Errorf("another CA: %v, want %v", err, ErrCAHashMismatch)
	}
	bare, err := ParseJoinToken("abcdef.0123456789abcdef")
	if err != nil || bare.CAHash != "" || bare.VerifyCA(b.CACertPEM) == nil {
		t.Errorf("bare credential: %+v, %v; it must not verify any CA", bare, err)
	}
	if _, err := ParseJoinToken("K10nothex::abcdef.0123456789abcdef"); err == nil {
		t.Error("a token with a malformed hash was accepted")
	}
}

func TestJoinedNodeCertificatesThroughASigner(t *testing.T) {
	cfg := testConfig(t)
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := LoadSigner(CACertPath(cfg.Dir), CAKeyPath(cfg.Dir))
	if err != nil {
		t.Fatal(err)
	}
	node := JoinedNode{Dir: filepath.Join(t.TempDir(), "agent", "tls"), NodeName: "node-2",
		IPs: []netip.Addr{netip.MustParseAddr("192.0.2.20")}, CACertPEM: b.CACertPEM}
	if _, _, ok := node.Stored(NodeServing); ok {
		t.Fatal("a certificate is stored before any was issued")
	}
	for _, kind := range []NodeCert{NodeClient, NodeServing} {
		req, err := node.NewRequest(kind)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(req.CSRPEM)
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		lifetime := 30 * time.Minute
		if kind == NodeServing {
			lifetime = leafLifetime
		}
		certPEM, err := signer.Sign(SignRequest{Request: csr, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{kind.usage()}, Lifetime: lifetime, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := parseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "system:node:node-2" || cert.Subject.Organization[0] != "system:nodes" {
			t.Errorf("subject %v", cert.Subject)
		}
		if d := cert.NotAfter.Sub(cert.NotBefore); kind == NodeClient && d > 36*time.Minute {
			t.Errorf("lifetime %v, want the 30 minutes asked for (plus backdating)", d)
		}
		if err := node.Store(kind, req, certPEM); err != nil {
			t.Fatal(err)
		}
	}
	// A certificate for 30 minutes is inside the renewal window: the
	// next start asks again rather than running into its expiry.
	if _, _, ok := node.Stored(NodeClient); ok {
		t.Error("a certificate about to expire was kept")
	}
	if _, _, ok := node.Current(NodeClient); !ok {
		t.Error("a certificate about to expire cannot ask for its successor")
	}
	if _, _, ok := node.Stored(NodeServing); !ok {
		t.Error("a valid serving certificate was not kept for the next start")
	}
	renamed := node
	renamed.NodeName = "node-3"
	if _, _, ok := renamed.Stored(NodeServing); ok {
		t.Error("another node's certificate was kept")
	}
	certFile, keyFile := NodeServing.files()
	fi, err := os.Stat(filepath.Join(node.Dir, keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("serving key: %v %v, want mode 0600", fi, err)
	}
	cert, err := os.ReadFile(filepath.Join(node.Dir, certFile))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseCert(cert)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.VerifyHostname("192.0.2.20") != nil || parsed.VerifyHostname("node-2") != nil {
		t.Errorf("serving certificate names %v %v", parsed.DNSNames, parsed.IPAddresses)
	}

	// Another CA's certificate is never stored.
	other, err := Ensure(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	foreign := node
	foreign.CACertPEM = other.CACertPEM
	req, err := foreign.NewRequest(NodeClient)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(req.CSRPEM)
	csr, _ := x509.ParseCertificateRequest(block.Bytes)
	certPEM, err := signer.Sign(SignRequest{Request: csr, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Lifetime: time.Hour * 24 * 365, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := foreign.Store(NodeClient, req, certPEM); err == nil {
		t.Error("stored a certificate of another CA")
	}
	if bytes.Equal(b.CACertPEM, other.CACertPEM) {
		t.Fatal("two CAs are the same")
	}
}
