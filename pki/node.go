package pki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Node identities, as upstream's Node authorizer expects them.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// NodeConfig describes the certificates of one node's kubelet, issued by
// the cluster CA that lives in CADir. This is for a node on the server's
// own host, which can read the CA key; a node elsewhere will get its
// certificates through a join, not by reading the CA.
type NodeConfig struct {
	// CADir is the server's TLS directory (Config.Dir), holding the CA.
	CADir string
	// Dir holds the node's certificates, e.g. DATA_DIR/agent/tls.
	Dir string
	// NodeName is the Node's name: the client certificate's user is
	// system:node:NodeName and the serving certificate names it.
	NodeName string
	// IPs are the node's addresses, for the serving certificate.
	IPs []netip.Addr
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NodeBundle is what a kubelet needs.
type NodeBundle struct {
	// CACertPEM verifies the API server, and the API server's client
	// certificate on calls to the kubelet.
	CACertPEM []byte
	// ClientCAs is the cluster CA as a pool, for the kubelet's own
	// authentication of the API server.
	ClientCAs *x509.CertPool
	// Serving is the kubelet's HTTPS certificate (port 10250).
	Serving tls.Certificate
	// ClientCertPEM and ClientKeyPEM authenticate the kubelet to the API
	// server as system:node:NodeName in group system:nodes.
	ClientCertPEM []byte
	ClientKeyPEM  []byte
}

// EnsureNode loads or issues the node's certificates, with the same reuse
// rules as Ensure: a leaf is kept while it chains to the CA, is not about
// to expire and, for the serving certificate, names every address asked
// for. The CA must exist already (Ensure creates it).
func EnsureNode(cfg NodeConfig) (*NodeBundle, error) {
	if cfg.CADir == "" || cfg.Dir == "" || cfg.NodeName == "" {
		return nil, errors.New("pki: NodeConfig needs CADir, Dir and NodeName")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	t := now()
	ca, err := readKeyPair(cfg.CADir, caCertFile, caKeyFile)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("pki: no cluster CA in %s", cfg.CADir)
	}
	if err != nil {
		return nil, err
	}

	dnsNames := []string{cfg.NodeName}
	var ips []netip.Addr
	for _, ip := range cfg.IPs {
		if ip.IsValid() {
			ips = append(ips, ip.Unmap())
		}
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	ips = slices.Compact(ips)
	serving, _, err := ensureLeaf(cfg.Dir, nodeServingCertFile, nodeServingKeyFile, ca, template{
		Subject:  pkix.Name{CommonName: cfg.NodeName},
		Lifetime: leafLifetime,
		ExtUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dnsNames,
		IPs:      ips,
	}, t, func(kp *keyPair) bool { return coversSANs(kp.Cert, dnsNames, ips) })
	if err != nil {
		return nil, err
	}
	client, _, err := ensureLeaf(cfg.Dir, nodeClientCertFile, nodeClientKeyFile, ca, template{
		Subject:  pkix.Name{CommonName: NodeUserPrefix + cfg.NodeName, Organization: []string{NodesGroup}},
		Lifetime: leafLifetime,
		ExtUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, t, func(kp *keyPair) bool {
		// A renamed node needs a certificate with its new name.
		return kp.Cert.Subject.CommonName == NodeUserPrefix+cfg.NodeName
	})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(append(slices.Clone(serving.CertPEM), ca.CertPEM...), serving.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: kubelet serving key pair: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &NodeBundle{
		CACertPEM:     ca.CertPEM,
		ClientCAs:     pool,
		Serving:       pair,
		ClientCertPEM: client.CertPEM,
		ClientKeyPEM:  client.KeyPEM,
	}, nil
}
