package pki

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"time"
)

// CACertPath and CAKeyPath are where Ensure keeps the cluster CA in dir:
// the files a signer (upstream's --cluster-signing-cert-file and
// --cluster-signing-key-file) is loaded from.
func CACertPath(dir string) string { return filepath.Join(dir, caCertFile) }

// CAKeyPath: see CACertPath.
func CAKeyPath(dir string) string { return filepath.Join(dir, caKeyFile) }

// Signer issues certificates for certificate signing requests with a CA
// whose key it holds.
type Signer struct {
	ca *keyPair
}

// LoadSigner reads the CA certificate and key (PEM) from their files.
func LoadSigner(certFile, keyFile string) (*Signer, error) {
	ca, err := readKeyPair("", certFile, keyFile)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("pki: no CA at %s", certFile)
	}
	if err != nil {
		return nil, err
	}
	if !ca.Cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certFile)
	}
	return &Signer{ca: ca}, nil
}

// CACertPEM is the signing CA's certificate.
func (s *Signer) CACertPEM() []byte { return s.ca.CertPEM }

// SignRequest is one certificate to issue for a request whose signature
// has been checked.
type SignRequest struct {
	Request     *x509.CertificateRequest
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	// Lifetime is how long the certificate is valid from now; the CA's own
	// end caps it.
	Lifetime time.Duration
	Now      time.Time
}

// Sign issues a certificate for r.Request's key with its subject and its
// DNS and IP names, and returns it as PEM.
func (s *Signer) Sign(r SignRequest) ([]byte, error) {
	if err := r.Request.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: request signature: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	notAfter := r.Now.Add(r.Lifetime)
	if notAfter.After(s.ca.Cert.NotAfter) {
		notAfter = s.ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               r.Request.Subject,
		NotBefore:             r.Now.Add(-backdate).UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              r.KeyUsage,
		ExtKeyUsage:           r.ExtKeyUsage,
		BasicConstraintsValid: true,
		DNSNames:              r.Request.DNSNames,
		IPAddresses:           r.Request.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca.Cert, r.Request.PublicKey, s.ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign %q: %w", r.Request.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return encodeCert(cert), nil
}
