package agent

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/tinykube/tinykube/internal/lifecycle"
)

// Config is what `tinykube agent` runs with.
type Config struct {
	Node Settings
	// Server is the API server's URL, https://HOST:6443.
	Server string
	// Token is the join token, K10<CA hash>::<id>.<secret>.
	Token   string
	DataDir string
	Logger  *slog.Logger
	// Ready, when set, is called once the node's components are ready.
	Ready func()
}

// Run joins the cluster and runs the node until ctx ends; the node's
// certificates are renewed while it runs. The first component that fails
// stops the others and is returned, named.
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := lifecycle.New(ctx, logger)
	defer g.Stop(NodeStopTimeout)

	jc := JoinConfig{Server: cfg.Server, Token: cfg.Token, Dir: filepath.Join(cfg.DataDir, "agent", "tls"),
		NodeName: cfg.Node.NodeName, NodeIP: cfg.Node.NodeIP, Logger: g.Logger("join")}
	j, err := Join(ctx, jc)
	if err != nil && ctx.Err() != nil {
		// Stopped while waiting for the certificates: not a failure.
		return nil
	}
	if err != nil {
		return err
	}
	if err := StartNode(ctx, g, NodeConfig{Settings: cfg.Node, DataDir: cfg.DataDir, API: j.API,
		ServingCert: &j.ServingCert, ClientCAs: j.ClientCAs}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := g.Start(ctx, lifecycle.Component{Name: "certificates", Run: func(ctx context.Context) error {
		return keepCertificates(ctx, jc)
	}}); err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	if err := g.Wait(ctx); err != nil {
		return err
	}
	g.Logger("agent").Info("shutting down")
	return nil
}
