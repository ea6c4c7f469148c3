package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"
)

// NodeCert names one of a node's two certificates.
type NodeCert int

const (
	// NodeClient authenticates the kubelet to the API server as
	// system:node:NAME in system:nodes.
	NodeClient NodeCert = iota
	// NodeServing is the kubelet's HTTPS certificate.
	NodeServing
)

func (k NodeCert) files() (cert, key string) {
	if k == NodeServing {
		return nodeServingCertFile, nodeServingKeyFile
	}
	return nodeClientCertFile, nodeClientKeyFile
}

func (k NodeCert) usage() x509.ExtKeyUsage {
	if k == NodeServing {
		return x509.ExtKeyUsageServerAuth
	}
	return x509.ExtKeyUsageClientAuth
}

// JoinedNode describes the certificates of a node that got them from the
// cluster through certificate signing requests: its keys are made here and
// never leave the host; the cluster CA signs.
type JoinedNode struct {
	// Dir holds the keys (0600) and certificates, e.g. DATA_DIR/agent/tls.
	Dir string
	// NodeName is the Node's name.
	NodeName string
	// IPs are the node's addresses, for the serving certificate.
	IPs []netip.Addr
	// CACertPEM is the cluster CA the certificates must chain to.
	CACertPEM []byte
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (n JoinedNode) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// subject is who the certificate names: the node's user for both, as
// upstream's kubelet asks for them.
func (n JoinedNode) subject() pkix.Name {
	return pkix.Name{CommonName: NodeUserPrefix + n.NodeName, Organization: []string{NodesGroup}}
}

func (n JoinedNode) sans(kind NodeCert) ([]string, []netip.Addr) {
	if kind != NodeServing {
		return nil, nil
	}
	var ips []netip.Addr
	for _, ip := range n.IPs {
		if ip.IsValid() {
			ips = append(ips, ip.Unmap())
		}
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	return []string{n.NodeName}, slices.Compact(ips)
}

// Stored returns the certificate and key of kind kept in Dir when they
// can be used as they are: they chain to the cluster CA, name this node
// (and, serving, each of its addresses), and do not expire within the
// renewal window. ok is false when a new certificate must be requested.
func (n JoinedNode) Stored(kind NodeCert) (certPEM, keyPEM []byte, ok bool) {
	return n.stored(kind, renewBefore)
}

// Current is Stored without the renewal window: the certificate is
// valid now. A node asks for its next client certificate with the one it
// has, as upstream's kubelet does, rather than with a join token that may
// have expired since.
func (n JoinedNode) Current(kind NodeCert) (certPEM, keyPEM []byte, ok bool) {
	return n.stored(kind, 0)
}

func (n JoinedNode) stored(kind NodeCert, window time.Duration) (certPEM, keyPEM []byte, ok bool) {
	certFile, keyFile := kind.files()
	kp, err := readKeyPair(n.Dir, certFile, keyFile)
	if err != nil {
		return nil, nil, false
	}
	ca, err := parseCert(n.CACertPEM)
	if err != nil {
		return nil, nil, false
	}
	now := n.now()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{kind.usage()}}); err != nil {
		return nil, nil, false
	}
	dns, ips := n.sans(kind)
	if !now.Add(window).Before(kp.Cert.NotAfter) ||
		kp.Cert.Subject.CommonName != n.subject().CommonName || !coversSANs(kp.Cert, dns, ips) {
		return nil, nil, false
	}
	return kp.CertPEM, kp.KeyPEM, true
}

// Paths are the files kind's certificate and key are kept in.
func (n JoinedNode) Paths(kind NodeCert) (certFile, keyFile string) {
	c, k := kind.files()
	return filepath.Join(n.Dir, c), filepath.Join(n.Dir, k)
}

// Request is a new key for kind and a PEM certificate signing request
// for it, naming this node and, for serving, its name and addresses.
type Request struct {
	Key    *ecdsa.PrivateKey
	KeyPEM []byte
	CSRPEM []byte
}

// NewRequest makes a fresh key and a request for it. Nothing is written:
// Store keeps the key once its certificate has been issued.
func (n JoinedNode) NewRequest(kind NodeCert) (*Request, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	dns, ips := n.sans(kind)
	tmpl := &x509.CertificateRequest{Subject: n.subject(), DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate request: %w", err)
	}
	return &Request{Key: key, KeyPEM: keyPEM, CSRPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}, nil
}

// Store checks that certPEM, as issued for r, is for r's key and chains
// to the cluster CA, and keeps both in Dir (key 0600).
func (n JoinedNode) Store(kind NodeCert, r *Request, certPEM []byte) error {
	cert, err := parseCert(certPEM)
	if err != nil {
		return fmt.Errorf("pki: issued certificate: %w", err)
	}
	if !r.Key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("pki: the issued certificate is for another key")
	}
	ca, err := parseCert(n.CACertPEM)
	if err != nil {
		return fmt.Errorf("pki: cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: n.now(), KeyUsages: []x509.ExtKeyUsage{kind.usage()}}); err != nil {
		return fmt.Errorf("pki: the issued certificate does not verify against the cluster CA: %w", err)
	}
	certFile, keyFile := kind.files()
	return writeKeyPair(n.Dir, certFile, keyFile, &keyPair{Cert: cert, Key: r.Key, CertPEM: encodeCert(cert), KeyPEM: r.KeyPEM})
}
