package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/pki"
)

// agentStopTimeout bounds how long shutdown waits for the kubelet.
const agentStopTimeout = 15 * time.Second

// agentConfig is what the node agent on the server's own host needs.
type agentConfig struct {
	dataDir string
	// caDir is the server's TLS directory, holding the cluster CA that
	// issues the node's certificates.
	caDir  string
	url    string
	caPEM  []byte
	nodeIP netip.Addr
	logger *slog.Logger
}

// agent is a running kubelet.
type agent struct {
	cancel context.CancelFunc
	done   chan error
	logger *slog.Logger
}

// startAgent starts the kubelet for this host: it registers the Node named
// after the host name, takes its pod CIDR from the API (node IPAM) and runs
// pods through tinykube's own containerd. It authenticates as
// system:node:NAME with a certificate from the cluster CA. Missing
// packages fail here, in one line; the kubelet then runs in the
// background.
func startAgent(ctx context.Context, c agentConfig) (*agent, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	nodeName := strings.ToLower(host)
	nb, err := pki.EnsureNode(pki.NodeConfig{
		CADir:    c.caDir,
		Dir:      filepath.Join(c.dataDir, "agent", "tls"),
		NodeName: nodeName,
		IPs:      []netip.Addr{c.nodeIP},
	})
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host: c.url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.caPEM,
			CertData: nb.ClientCertPEM,
			KeyData:  nb.ClientKeyPEM,
		},
		UserAgent: "tinykube/kubelet",
		QPS:       50,
		Burst:     100,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k, err := kubelet.New(kubelet.Config{
		Client:      client,
		NodeName:    nodeName,
		NodeIP:      c.nodeIP,
		DataDir:     c.dataDir,
		IPMasq:      true,
		ServingCert: &nb.Serving,
		ClientCAs:   nb.ClientCAs,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &agent{cancel: cancel, done: make(chan error, 1), logger: c.logger}
	go func() {
		err := k.Run(ctx)
		if err != nil && ctx.Err() == nil {
			c.logger.Error("kubelet stopped", "err", err)
		}
		a.done <- err
	}()
	go func() {
		select {
		case <-k.Ready():
			c.logger.Info("kubelet ready", "node", nodeName)
		case <-ctx.Done():
		}
	}()
	return a, nil
}

// stop ends the kubelet; running containers keep running.
func (a *agent) stop() {
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(agentStopTimeout):
		a.logger.Warn("kubelet still stopping; not waiting for it", "after", agentStopTimeout)
	}
}
