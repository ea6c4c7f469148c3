package pki

import (
	"bytes"
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		Dir:       filepath.Join(t.TempDir(), "server", "tls"),
		ServiceIP: netip.MustParseAddr("10.43.0.1"),
		DNSNames:  []string{"node-1"},
		IPs:       []netip.Addr{netip.MustParseAddr("192.0.2.10")},
	}
}

func TestEnsureFirstStartCreatesVerifiableMaterial(t *testing.T) {
	cfg := testConfig(t)
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serving := b.Serving.Leaf
	if serving == nil {
		t.Fatal("serving certificate not parsed")
	}
	for _, name := range []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "node-1"} {
		if _, err := serving.Verify(x509.VerifyOptions{DNSName: name, Roots: b.ClientCAs}); err != nil {
			t.Errorf("serving certificate not valid for %q: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.43.0.1", "192.0.2.10"} {
		if err := serving.VerifyHostname(ip); err != nil {
			t.Errorf("serving certificate not valid for %s: %v", ip, err)
		}
	}

	admin, err := parseCert(b.AdminCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Subject.CommonName != AdminUser || !slices.Equal(admin.Subject.Organization, []string{AdminGroup}) {
		t.Errorf("admin subject = %v, want CN=%s O=%s", admin.Subject, AdminUser, AdminGroup)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: b.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify as a client: %v", err)
	}
	if _, err := parseKey(b.AdminKeyPEM); err != nil {
		t.Errorf("admin key: %v", err)
	}
}

func TestEnsureKeysArePrivate(t *testing.T) {
	cfg := testConfig(t)
	if _, err := Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{caKeyFile, servingKeyFile, adminKeyFile} {
		fi, err := os.Stat(filepath.Join(cfg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("tls dir mode = %v, want 0700", fi.Mode().Perm())
	}
}

func TestEnsureRestartReusesEverything(t *testing.T) {
	cfg := testConfig(t)
	first, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.CAFingerprint() != second.CAFingerprint() {
		t.Error("CA changed on restart")
	}
	if !bytes.Equal(first.Serving.Certificate[0], second.Serving.Certificate[0]) || second.ServingRenewed {
		t.Error("serving certificate changed on restart with the same SANs")
	}
	if !bytes.Equal(first.AdminCertPEM, second.AdminCertPEM) {
		t.Error("admin certificate changed on restart")
	}
}

func TestEnsureNewAddressReissuesOnlyServing(t *testing.T) {
	cfg := testConfig(t)
	first, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.IPs = append(cfg.IPs, netip.MustParseAddr("198.51.100.7"))
	second, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.ServingRenewed {
		t.Fatal("serving certificate not reissued for a new address")
	}
	if err := second.Serving.Leaf.VerifyHostname("198.51.100.7"); err != nil {
		t.Errorf("new serving certificate: %v", err)
	}
	if first.CAFingerprint() != second.CAFingerprint() || !bytes.Equal(first.AdminCertPEM, second.AdminCertPEM) {
		t.Error("CA or admin certificate changed although only SANs grew")
	}

	// An address going away is no reason to reissue.
	cfg.IPs = cfg.IPs[:1]
	third, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if third.ServingRenewed {
		t.Error("serving certificate reissued when an address went away")
	}
}

func TestEnsureRenewsLeavesNearExpiry(t *testing.T) {
	cfg := testConfig(t)
	first, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(leafLifetime - renewBefore + time.Hour)
	cfg.Now = func() time.Time { return later }
	second, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.ServingRenewed || bytes.Equal(first.AdminCertPEM, second.AdminCertPEM) {
		t.Error("leaves near expiry were not reissued")
	}
	if first.CAFingerprint() != second.CAFingerprint() {
		t.Error("CA replaced while still valid")
	}
}

func TestEnsureRefusesToReplaceBrokenCA(t *testing.T) {
	cfg := testConfig(t)
	if _, err := Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, caKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(cfg); err == nil {
		t.Fatal("Ensure accepted a corrupt CA key")
	}
}

func TestEnsureReplacesForeignLeaf(t *testing.T) {
	// A serving certificate from another CA (say, a data dir restored
	// from a different cluster's backup) must not be served.
	cfg := testConfig(t)
	if _, err := Ensure(cfg); err != nil {
		t.Fatal(err)
	}
	other := testConfig(t)
	if _, err := Ensure(other); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{servingCertFile, servingKeyFile} {
		data, err := os.ReadFile(filepath.Join(other.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Serving.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: b.ClientCAs}); err != nil {
		t.Errorf("serving certificate does not chain to this cluster's CA: %v", err)
	}
}
