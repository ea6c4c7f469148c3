package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tinykube/tinykube/agent"
)

// agentOptions are the `tinykube agent` flags, named as k3s names them.
type agentOptions struct {
	server      string
	token       string
	tokenFile   string
	dataDir     string
	withNodeID  bool
	serviceCIDR string
	clusterCIDR string
	node        nodeFlags
	log         logOptions
}

func newAgentCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Join this host to a cluster as a node",
		Long: `Join this host to a cluster as a node: a kubelet, a proxy and cluster DNS.

The join token (DATA_DIR/server/token on the server, or one from
` + "`tinykube token create`" + `) carries the hash of the cluster CA: the agent
checks the server against it before it trusts it, then gets its node
certificates through certificate signing requests, which the server
approves and signs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.parse()
			if err != nil {
				return err
			}
			return runLogged(cmd.Context(), o.log, stderr, func(ctx context.Context, logger *slog.Logger) error {
				return agent.Run(ctx, agent.Config{Node: cfg.node, Server: cfg.server, Token: cfg.token, DataDir: cfg.dataDir,
					Logger: logger, Ready: func() {
						fmt.Fprintf(stdout, "tinykube: node %s joined %s\n", cfg.node.NodeName, cfg.server)
					}})
			})
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	addLogFlags(f, &o.log)
	f.StringVar(&o.server, "server", os.Getenv("TINYKUBE_URL"), "URL of the API server to join, https://HOST:6443 ($TINYKUBE_URL)")
	f.StringVar(&o.token, "token", os.Getenv("TINYKUBE_TOKEN"), "join token, K10<CA hash>::<id>.<secret> ($TINYKUBE_TOKEN)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the join token, such as a copy of DATA_DIR/server/token (keeps it out of the process list)")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/tinykube", "directory for the node's state, keys and certificates")
	f.BoolVar(&o.withNodeID, "with-node-id", false, "append a random id, kept in DATA_DIR/agent/node-id, to the node name (for hosts that share a host name)")
	f.StringVar(&o.serviceCIDR, "service-cidr", "10.43.0.0/16", "range of Service ClusterIPs; must be the server's")
	f.StringVar(&o.clusterCIDR, "cluster-cidr", "10.42.0.0/16", "range of pod IPs; must be the server's")
	addNodeFlags(f, &o.node)
	return cmd
}

// agentConfig is agentOptions parsed and checked.
type agentConfig struct {
	server  string
	token   string
	dataDir string
	node    agent.Settings
}

func (o *agentOptions) parse() (*agentConfig, error) {
	u, err := url.Parse(o.server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q must be https://HOST:PORT", o.server)
	}
	if o.tokenFile != "" {
		if o.token != "" {
			return nil, errors.New("--token and --token-file exclude each other")
		}
		data, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		o.token = string(data)
	}
	if strings.TrimSpace(o.token) == "" {
		return nil, errors.New("--token is required (DATA_DIR/server/token on the server, or `tinykube token create`)")
	}
	if o.dataDir == "" {
		return nil, errors.New("--data-dir must not be empty")
	}
	c := &agentConfig{server: strings.TrimSuffix(o.server, "/"), token: strings.TrimSpace(o.token)}
	if c.dataDir, err = filepath.Abs(o.dataDir); err != nil {
		return nil, err
	}
	serviceCIDR, err := netip.ParsePrefix(o.serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("--service-cidr: %w", err)
	}
	clusterCIDR, err := netip.ParsePrefix(o.clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	if c.node, err = o.node.parse(defaultAdvertiseAddress(netip.IPv4Unspecified()), serviceCIDR.Masked(), clusterCIDR.Masked()); err != nil {
		return nil, err
	}
	if o.withNodeID {
		id, err := ensureNodeID(filepath.Join(c.dataDir, "agent", "node-id"))
		if err != nil {
			return nil, err
		}
		c.node.NodeName += "-" + id
	}
	return c, nil
}

// ensureNodeID returns the node id kept at path, creating it on first use
// so the node keeps its name across restarts.
func ensureNodeID(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(data)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return id, os.WriteFile(path, []byte(id+"\n"), 0o644)
}
