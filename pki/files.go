package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside the TLS directory. They are part of the on-disk format:
// a data dir written by one version must be readable by the next.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
	adminCertFile   = "admin.crt"
	adminKeyFile    = "admin.key"
	// The API server's client certificate for kubelets (logs, exec).
	kubeletClientCertFile = "apiserver-kubelet-client.crt"
	kubeletClientKeyFile  = "apiserver-kubelet-client.key"
	// A node's certificates, in the node's own directory.
	nodeServingCertFile = "kubelet-serving.crt"
	nodeServingKeyFile  = "kubelet-serving.key"
	nodeClientCertFile  = "kubelet-client.crt"
	nodeClientKeyFile   = "kubelet-client.key"
)

// writeFileAtomic writes data to path with the given mode through a
// temporary file and a rename, so a crash never leaves a half-written key or
// certificate behind, and the mode is right from the first byte: a key file
// is never readable by others, not even for an instant.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}

func encodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// keyPair is a certificate with its private key, as parsed objects and as
// the PEM that was read or written.
type keyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// errNotFound says a key pair is absent (either file), as opposed to present
// but unreadable, which must not be silently replaced.
var errNotFound = errors.New("pki: key pair not found")

// readKeyPair loads certFile and keyFile from dir. It returns errNotFound when
// neither exists; any other problem (one file missing, bad PEM, a key that
// does not match the certificate) is an error the caller reports.
func readKeyPair(dir, certFile, keyFile string) (*keyPair, error) {
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		return nil, errNotFound
	}
	if certErr != nil {
		return nil, fmt.Errorf("pki: %w", certErr)
	}
	if keyErr != nil {
		return nil, fmt.Errorf("pki: %w", keyErr)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not belong to %s", keyPath, certPath)
	}
	return &keyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// writeKeyPair stores kp in dir. The key is written first: a certificate on
// disk then always has its key beside it.
func writeKeyPair(dir, certFile, keyFile string, kp *keyPair) error {
	if err := writeFileAtomic(filepath.Join(dir, keyFile), kp.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("pki: write key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, certFile), kp.CertPEM, 0o644); err != nil {
		return fmt.Errorf("pki: write certificate: %w", err)
	}
	return nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return ec, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}
