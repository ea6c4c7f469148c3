package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certcsr "k8s.io/client-go/util/certificate/csr"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// JoinConfig is what a host needs to join a cluster as a node.
type JoinConfig struct {
	// Server is the API server's URL, https://HOST:6443.
	Server string
	// Token is the join token, K10<CA hash>::<id>.<secret>.
	Token string
	// Dir keeps the node's keys and certificates (DATA_DIR/agent/tls).
	Dir      string
	NodeName string
	NodeIP   netip.Addr
	Logger   *slog.Logger
	// Now is the clock for the certificates' validity; time.Now when nil.
	Now func() time.Time
}

// Joined is what a node gets from joining.
type Joined struct {
	// API reaches the API server as system:node:NAME.
	API         *rest.Config
	CAPEM       []byte
	ServingCert tls.Certificate
	ClientCAs   *x509.CertPool
}

// ErrTokenRefused: the server does not accept the join token's credential.
var ErrTokenRefused = errors.New("the server refused the join token: it is wrong, expired or deleted (create a new one with `tinykube token create` on the server)")

// Join gets the node's certificates, as upstream's TLS bootstrapping with
// k3s's token: it fetches the cluster CA without trusting it, checks it
// against the hash the token carries, then, trusting only that CA, asks
// for a client certificate for system:node:NAME with the token's bootstrap
// credential and for a serving certificate as the node. Certificates still
// valid from an earlier join are reused. Nothing is registered here: a
// refused token leaves no trace but a log line on the server.
func Join(ctx context.Context, c JoinConfig) (*Joined, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := pki.CheckNodeAddress(c.NodeIP); err != nil {
		// The serving certificate would never be approved.
		return nil, fmt.Errorf("--node-ip: %w", err)
	}
	t, err := pki.ParseJoinToken(c.Token)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	if _, _, ok := authn.ParseBootstrapToken(t.Credential); !ok {
		return nil, errors.New("--token: the credential after :: must be a bootstrap token, [a-z0-9]{6}.[a-z0-9]{16}")
	}
	if t.CAHash == "" {
		return nil, t.VerifyCA(nil)
	}
	caPEM, err := fetchCACerts(ctx, c.Server)
	if err != nil {
		return nil, err
	}
	if err := t.VerifyCA(caPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Server, err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s%s holds no certificate", c.Server, apiserver.CACertsPath)
	}
	node := pki.JoinedNode{Dir: c.Dir, NodeName: c.NodeName, IPs: []netip.Addr{c.NodeIP}, CACertPEM: caPEM, Now: c.Now}

	// The node's next client certificate is asked for as the node while
	// its current one is valid, else with the token.
	requestor := &rest.Config{Host: c.Server, BearerToken: t.Credential,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, UserAgent: "tinykube/kubelet-bootstrap"}
	if certPEM, keyPEM, ok := node.Current(pki.NodeClient); ok {
		requestor = &rest.Config{Host: c.Server, UserAgent: "tinykube/kubelet",
			TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: certPEM, KeyData: keyPEM}}
	}
	if _, _, err := ensureNodeCert(ctx, c.Logger, node, pki.NodeClient, requestor); err != nil {
		return nil, err
	}
	// The node's clients read the certificate from its files, and read
	// them again when they change (client-go looks every few minutes), so
	// a certificate renewed while the node runs is used without a restart.
	certFile, keyFile := node.Paths(pki.NodeClient)
	api := &rest.Config{Host: c.Server, UserAgent: "tinykube/kubelet", QPS: 50, Burst: 100,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertFile: certFile, KeyFile: keyFile}}
	certPEM, keyPEM, err := ensureNodeCert(ctx, c.Logger, node, pki.NodeServing, api)
	if err != nil {
		return nil, err
	}
	serving, err := tls.X509KeyPair(append(certPEM, caPEM...), keyPEM)
	if err != nil {
		return nil, err
	}
	return &Joined{API: api, CAPEM: caPEM, ServingCert: serving, ClientCAs: clientCAs}, nil
}

// fetchCACerts reads the server's CA bundle from /cacerts without
// verifying the connection: nothing secret is sent, and the caller checks
// what comes back against the token before trusting it.
func fetchCACerts(ctx context.Context, server string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+apiserver.CACertsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{
		// #nosec G402: the answer is checked against the token's hash.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		Proxy:           nil,
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the cluster CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching the cluster CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the cluster CA: %s%s answered %s", server, apiserver.CACertsPath, resp.Status)
	}
	return body, nil
}

// nodeCertRequest is how each of a node's certificates is asked for.
var nodeCertRequest = map[pki.NodeCert]struct {
	signer string
	usages []certificatesv1.KeyUsage
}{
	pki.NodeClient:  {certificatesv1.KubeAPIServerClientKubeletSignerName, []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}},
	pki.NodeServing: {certificatesv1.KubeletServingSignerName, []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}},
}

// certificateCheckInterval is how often a running agent joins again to
// keep its certificates: join renews whatever is within the renewal
// window (90 days before expiry), as the node, so it never needs a token
// again. The client certificate is picked up from its files at once; the
// kubelet's serving certificate at the next start.
const certificateCheckInterval = time.Hour

// pendingHintAfter is how long a certificate request may stay pending
// before the agent says how to approve it by hand.
const pendingHintAfter = 30 * time.Second

// keepCertificates joins again every certificateCheckInterval until ctx
// ends.
func keepCertificates(ctx context.Context, c JoinConfig) error {
	t := time.NewTicker(certificateCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := Join(ctx, c); err != nil && ctx.Err() == nil {
			c.Logger.Warn("renewing the node's certificates failed; will retry", "err", err, "in", certificateCheckInterval)
		}
	}
}

// ensureNodeCert returns the node's certificate of kind, from disk when
// still good, else through a certificate signing request made as cfg's
// user, waiting until it is issued.
func ensureNodeCert(ctx context.Context, logger *slog.Logger, node pki.JoinedNode, kind pki.NodeCert, cfg *rest.Config) (certPEM, keyPEM []byte, err error) {
	if certPEM, keyPEM, ok := node.Stored(kind); ok {
		return certPEM, keyPEM, nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	req, err := node.NewRequest(kind)
	if err != nil {
		return nil, nil, err
	}
	how := nodeCertRequest[kind]
	name, uid, err := certcsr.RequestCertificate(client, req.CSRPEM, "", how.signer, nil, how.usages, req.Key)
	if apierrors.IsUnauthorized(err) {
		return nil, nil, ErrTokenRefused
	}
	if err != nil {
		return nil, nil, fmt.Errorf("requesting the node's certificate: %w", err)
	}
	logger.Info("waiting for the certificate signing request to be approved and issued", "csr", name, "signer", how.signer)
	// The server approves a node's requests within moments; one still
	// pending is waiting for a person.
	hint := time.AfterFunc(pendingHintAfter, func() {
		logger.Warn("certificate signing request still pending; on the server: tinykube kubectl certificate approve "+name, "csr", name)
	})
	certPEM, err = certcsr.WaitForCertificate(ctx, client, name, uid)
	hint.Stop()
	if err != nil {
		return nil, nil, fmt.Errorf("certificate signing request %s: %w", name, err)
	}
	if err := node.Store(kind, req, certPEM); err != nil {
		return nil, nil, err
	}
	return certPEM, req.KeyPEM, nil
}
