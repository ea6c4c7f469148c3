package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteKubeconfigLoadsAsClientConfig(t *testing.T) {
	b, err := Ensure(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "etc", "tinykube", "kubeconfig.yaml")
	// An existing, world-readable file must end up private as well.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = WriteKubeconfig(path, Kubeconfig{
		Server:    "https://127.0.0.1:6443",
		CACertPEM: b.CACertPEM,
		CertPEM:   b.AdminCertPEM,
		KeyPEM:    b.AdminKeyPEM,
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", fi.Mode().Perm())
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://127.0.0.1:6443" {
		t.Errorf("server = %q", rc.Host)
	}
	if !bytes.Equal(rc.CAData, b.CACertPEM) || !bytes.Equal(rc.CertData, b.AdminCertPEM) || !bytes.Equal(rc.KeyData, b.AdminKeyPEM) {
		t.Error("kubeconfig does not embed the CA and admin credential")
	}
}
