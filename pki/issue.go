package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"
)

// Lifetimes follow what kubeadm and k3s hand out: a long-lived CA, leaves
// for a year, replaced on a start that finds them within renewBefore of the
// end, so a cluster restarted now and then never meets an expired leaf.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	renewBefore  = 90 * 24 * time.Hour
	// backdate covers clocks that are a little behind ours.
	backdate = 5 * time.Minute
)

// template describes one certificate to issue.
type template struct {
	Subject  pkix.Name
	IsCA     bool
	Lifetime time.Duration
	ExtUsage []x509.ExtKeyUsage
	DNSNames []string
	IPs      []netip.Addr
}

// issue creates a fresh P-256 key and a certificate for it, signed by
// signer, or self-signed when signer is nil.
func issue(t template, signer *keyPair, now time.Time) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               t.Subject,
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(t.Lifetime).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           t.ExtUsage,
		BasicConstraintsValid: true,
		IsCA:                  t.IsCA,
		DNSNames:              t.DNSNames,
	}
	for _, ip := range t.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	if t.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		// A subject key id lets clients chain leaves to this CA by id,
		// which matters once a second CA is ever introduced for rotation.
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		id := sha1.Sum(pub)
		tmpl.SubjectKeyId = id[:]
	}
	parent, signKey := tmpl, key
	if signer != nil {
		parent, signKey = signer.Cert, signer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign %q: %w", t.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{Cert: cert, Key: key, CertPEM: encodeCert(cert), KeyPEM: keyPEM}, nil
}

// usable reports whether a leaf kp, found on disk, can be kept: it chains
// to ca for the given usage and does not expire within renewBefore.
func usable(kp *keyPair, ca *keyPair, usage x509.ExtKeyUsage, now time.Time) bool {
	if now.Add(renewBefore).After(kp.Cert.NotAfter) || now.Before(kp.Cert.NotBefore) {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err := kp.Cert.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{usage},
	})
	return err == nil
}

// coversSANs reports whether cert names every DNS name and IP asked for.
// Extra names on the certificate are fine: an address the node lost does
// not warrant a new certificate.
func coversSANs(cert *x509.Certificate, dnsNames []string, ips []netip.Addr) bool {
	have := make(map[string]bool, len(cert.DNSNames))
	for _, n := range cert.DNSNames {
		have[n] = true
	}
	for _, n := range dnsNames {
		if !have[n] {
			return false
		}
	}
	haveIP := make(map[netip.Addr]bool, len(cert.IPAddresses))
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			haveIP[a.Unmap()] = true
		}
	}
	for _, ip := range ips {
		if !haveIP[ip.Unmap()] {
			return false
		}
	}
	return true
}
