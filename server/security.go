package server

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// security is the server's key material and the authentication built on
// it.
type security struct {
	bundle   *pki.Bundle
	loopback *loopback
	// serviceAccounts issues service account tokens (the REST core's
	// TokenRequest) and verifies them (the authenticator).
	serviceAccounts *authn.ServiceAccountTokens
	// lookup checks that a token's objects still exist; it needs the
	// REST core's handler before the server serves.
	lookup        *objectLookup
	authenticator *authn.Authenticator
}

// setUpSecurity loads or creates the certificates and the token file, and
// builds the authenticator: client certificates of the cluster CA, the
// token file's tokens, this run's in-memory component tokens, and service
// account tokens signed with the data dir's service account key.
func setUpSecurity(cfg Config, serverDir string, logger *slog.Logger) (*security, error) {
	names, ips := nodeAddresses()
	ips = append(ips, cfg.Advertise)
	if !cfg.Bind.IsUnspecified() {
		ips = append(ips, cfg.Bind)
	}
	bundle, err := pki.Ensure(pki.Config{
		Dir:       filepath.Join(serverDir, "tls"),
		ServiceIP: FirstServiceIP(cfg.ServiceCIDR),
		DNSNames:  names,
		IPs:       ips,
	})
	if err != nil {
		return nil, err
	}
	if bundle.ServingRenewed {
		logger.Info("issued a new serving certificate", "dnsNames", bundle.Serving.Leaf.DNSNames, "ips", bundle.Serving.Leaf.IPAddresses)
	}
	tokens, err := authn.EnsureTokenFile(filepath.Join(serverDir, "token.csv"), authn.User{
		Name:   pki.AdminUser,
		UID:    pki.AdminUser,
		Groups: []string{pki.AdminGroup},
	})
	if err != nil {
		return nil, err
	}
	loopback, err := newLoopback(userControllerManager, userScheduler)
	if err != nil {
		return nil, err
	}
	saKey, err := pki.EnsureServiceAccountKey(filepath.Join(serverDir, "tls"))
	if err != nil {
		return nil, err
	}
	lookup := newObjectLookup()
	serviceAccounts, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{Key: saKey, Lookup: lookup.lookup})
	if err != nil {
		return nil, err
	}
	authenticator, err := authn.New(authn.Config{
		ClientCAs:       bundle.ClientCAs,
		Tokens:          []*authn.Tokens{tokens, loopback.set},
		ServiceAccounts: serviceAccounts,
	})
	if err != nil {
		return nil, err
	}
	return &security{bundle: bundle, loopback: loopback, serviceAccounts: serviceAccounts, lookup: lookup, authenticator: authenticator}, nil
}

// kubeletTransport reaches kubelets for logs, exec, attach and
// port-forward: it checks each kubelet's serving certificate against the
// cluster CA and presents the API server's kubelet client certificate.
// HTTP/1.1 only (no ForceAttemptHTTP2), because those streams upgrade the
// connection; no proxy from the environment, because node traffic never
// goes through one.
func kubeletTransport(b *pki.Bundle) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:      b.ClientCAs,
			Certificates: []tls.Certificate{b.KubeletClient},
			MinVersion:   tls.VersionTLS12,
		},
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
}

// kubeconfigHost is the address local clients use: loopback when the
// server listens on every address, else the one address it binds.
func kubeconfigHost(bind netip.Addr) netip.Addr {
	switch {
	case bind.IsUnspecified() && bind.Is6():
		return netip.IPv6Loopback()
	case bind.IsUnspecified():
		return netip.MustParseAddr("127.0.0.1")
	}
	return bind
}

// nodeAddresses are the host name and the host's global unicast addresses:
// the names a client on the network may use for this server.
func nodeAddresses() ([]string, []netip.Addr) {
	var names []string
	// A host name that is not a DNS name cannot go into a certificate.
	if h, err := os.Hostname(); err == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(h))) == 0 {
		names = append(names, strings.ToLower(h))
	}
	var ips []netip.Addr
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return names, nil
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && ip.Unmap().IsGlobalUnicast() {
			ips = append(ips, ip.Unmap())
		}
	}
	return names, ips
}

// restConfig reaches url as the holder of a client certificate of the
// cluster CA.
func restConfig(url string, caPEM, certPEM, keyPEM []byte) *rest.Config {
	return &rest.Config{
		Host:            url,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: certPEM, KeyData: keyPEM},
	}
}
