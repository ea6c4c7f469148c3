package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// ClusterDomain is the DNS domain of Services, as upstream's default.
const ClusterDomain = "cluster.local"

// The admin identity, as kubeadm names it: the group system:masters is what
// grants full access once authorization exists.
const (
	AdminUser  = "kubernetes-admin"
	AdminGroup = "system:masters"
	// KubeletClientUser is the API server when it calls a kubelet (logs,
	// exec, port-forward), as kubeadm names it.
	KubeletClientUser = "kube-apiserver-kubelet-client"
)

// Config says where the material lives and what the serving certificate
// must cover.
type Config struct {
	// Dir holds the keys and certificates; created with mode 0700.
	Dir string
	// ServiceIP is the first address of the service CIDR: the ClusterIP of
	// the `kubernetes` Service, through which pods reach the API server.
	ServiceIP netip.Addr
	// DNSNames and IPs are extra SANs for the serving certificate: the
	// host name, the node's addresses, the advertise address. localhost,
	// 127.0.0.1, ::1 and the in-cluster names of the `kubernetes` Service
	// are always added.
	DNSNames []string
	IPs      []netip.Addr
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Bundle is the material the server and its clients need.
type Bundle struct {
	// CA is the cluster CA certificate; CACertPEM its PEM, for kubeconfigs.
	CA        *x509.Certificate
	CACertPEM []byte
	// ClientCAs verifies client certificates: the cluster CA.
	ClientCAs *x509.CertPool
	// Serving is the API server's certificate and key.
	Serving tls.Certificate
	// ServingRenewed says this call issued a new serving certificate.
	ServingRenewed bool
	// AdminCertPEM and AdminKeyPEM are the admin client credential.
	AdminCertPEM []byte
	AdminKeyPEM  []byte
	// KubeletClient is the API server's client certificate for calls to
	// kubelets; kubelets verify it against the cluster CA.
	KubeletClient tls.Certificate
}

// CAFingerprint is the SHA-256 of the CA certificate, in hex: what a user
// compares to make sure two kubeconfigs trust the same cluster.
func (b *Bundle) CAFingerprint() string {
	sum := sha256.Sum256(b.CA.Raw)
	return hex.EncodeToString(sum[:])
}

// Ensure loads the material from cfg.Dir, creating whatever is missing and
// reissuing a leaf that is about to expire or, for the serving certificate,
// does not cover the SANs asked for. A CA that is present but unreadable is
// an error: replacing it would silently lock every client out.
func Ensure(cfg Config) (*Bundle, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: Config.Dir is required")
	}
	if !cfg.ServiceIP.IsValid() {
		return nil, errors.New("pki: Config.ServiceIP is required")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	t := now()

	ca, err := ensureCA(cfg.Dir, t)
	if err != nil {
		return nil, err
	}

	dnsNames, ips := servingSANs(cfg)
	serving, renewed, err := ensureLeaf(cfg.Dir, servingCertFile, servingKeyFile, ca, template{
		Subject:  pkix.Name{CommonName: "kube-apiserver"},
		Lifetime: leafLifetime,
		ExtUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dnsNames,
		IPs:      ips,
	}, t, func(kp *keyPair) bool { return coversSANs(kp.Cert, dnsNames, ips) })
	if err != nil {
		return nil, err
	}

	admin, _, err := ensureLeaf(cfg.Dir, adminCertFile, adminKeyFile, ca, template{
		Subject:  pkix.Name{CommonName: AdminUser, Organization: []string{AdminGroup}},
		Lifetime: leafLifetime,
		ExtUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, t, nil)
	if err != nil {
		return nil, err
	}

	kubeletClient, _, err := ensureLeaf(cfg.Dir, kubeletClientCertFile, kubeletClientKeyFile, ca, template{
		Subject:  pkix.Name{CommonName: KubeletClientUser, Organization: []string{AdminGroup}},
		Lifetime: leafLifetime,
		ExtUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, t, nil)
	if err != nil {
		return nil, err
	}

	pair, err := tls.X509KeyPair(append(slices.Clone(serving.CertPEM), ca.CertPEM...), serving.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: serving key pair: %w", err)
	}
	kubeletPair, err := tls.X509KeyPair(kubeletClient.CertPEM, kubeletClient.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: kubelet client key pair: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &Bundle{
		CA:             ca.Cert,
		CACertPEM:      ca.CertPEM,
		ClientCAs:      pool,
		Serving:        pair,
		ServingRenewed: renewed,
		AdminCertPEM:   admin.CertPEM,
		AdminKeyPEM:    admin.KeyPEM,
		KubeletClient:  kubeletPair,
	}, nil
}

func ensureCA(dir string, now time.Time) (*keyPair, error) {
	ca, err := readKeyPair(dir, caCertFile, caKeyFile)
	if err == nil {
		if !ca.Cert.IsCA {
			return nil, fmt.Errorf("pki: %s/%s is not a CA certificate", dir, caCertFile)
		}
		return ca, nil
	}
	if !errors.Is(err, errNotFound) {
		return nil, err
	}
	ca, err = issue(template{
		Subject:  pkix.Name{CommonName: fmt.Sprintf("tinykube-ca@%d", now.Unix())},
		IsCA:     true,
		Lifetime: caLifetime,
	}, nil, now)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(dir, caCertFile, caKeyFile, ca); err != nil {
		return nil, err
	}
	return ca, nil
}

// ensureLeaf returns the leaf stored under certFile/keyFile when it is
// still usable and fits (fits may be nil), or issues and stores a new one.
// A leaf that cannot be read is replaced: unlike the CA, nothing outside
// this directory depends on a particular leaf.
func ensureLeaf(dir, certFile, keyFile string, ca *keyPair, t template, now time.Time, fits func(*keyPair) bool) (*keyPair, bool, error) {
	usage := t.ExtUsage[0]
	if kp, err := readKeyPair(dir, certFile, keyFile); err == nil &&
		usable(kp, ca, usage, now) && (fits == nil || fits(kp)) {
		return kp, false, nil
	}
	kp, err := issue(t, ca, now)
	if err != nil {
		return nil, false, err
	}
	if err := writeKeyPair(dir, certFile, keyFile, kp); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}

// servingSANs is every name the serving certificate must carry, sorted and
// without duplicates so the comparison with a stored certificate is stable.
func servingSANs(cfg Config) ([]string, []netip.Addr) {
	dns := []string{
		"localhost",
		"kubernetes",
		"kubernetes.default",
		"kubernetes.default.svc",
		"kubernetes.default.svc." + ClusterDomain,
	}
	dns = append(dns, cfg.DNSNames...)
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), cfg.ServiceIP}
	for _, ip := range cfg.IPs {
		if ip.IsValid() {
			ips = append(ips, ip.Unmap())
		}
	}
	dns = slices.DeleteFunc(dns, func(s string) bool { return s == "" })
	slices.Sort(dns)
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(dns), slices.Compact(ips)
}
