package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// newTokenCommand is `tinykube token create`, as `kubeadm token create`
// and `k3s token create`: a new bootstrap token, printed as a join token.
func newTokenCommand(stdout io.Writer) *cobra.Command {
	token := &cobra.Command{Use: "token", Short: "Manage join tokens", Args: cobra.NoArgs}
	var o tokenCreateOptions
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token for `tinykube agent --token`",
		Long: `Create a bootstrap token (a Secret bootstrap-token-<id> in kube-system)
and print it as a join token, K10<hash of the cluster CA>::<id>.<secret>,
which an agent uses to verify the server and to get its node certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfigFrom(o.kubeconfig)
			if err != nil {
				return err
			}
			t, err := createJoinToken(cmd.Context(), cfg, o.ttl, o.description, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, t)
			return nil
		},
	}
	f := create.Flags()
	f.DurationVar(&o.ttl, "ttl", 24*time.Hour, "how long the token is valid (0: it never expires)")
	f.StringVar(&o.description, "description", "", "a note on what the token is for")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig to use (default: $KUBECONFIG, else "+defaultKubeconfig+")")
	token.AddCommand(create)
	return token
}

type tokenCreateOptions struct {
	ttl         time.Duration
	description string
	kubeconfig  string
}

// restConfigFrom loads a kubeconfig as kubectl would, falling back to the
// server's own.
func restConfigFrom(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case kubeconfig != "":
		rules.ExplicitPath = kubeconfig
	case os.Getenv("KUBECONFIG") == "":
		rules.ExplicitPath = defaultKubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// createJoinToken creates a bootstrap token valid for ttl (forever when
// 0) and returns it as a join token carrying the hash of the CA that cfg
// trusts: the cluster CA.
func createJoinToken(ctx context.Context, cfg *rest.Config, ttl time.Duration, description string, now time.Time) (string, error) {
	if ttl < 0 {
		return "", errors.New("--ttl must not be negative")
	}
	caPEM := cfg.CAData
	if len(caPEM) == 0 && cfg.CAFile != "" {
		var err error
		if caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
			return "", err
		}
	}
	if len(caPEM) == 0 {
		return "", errors.New("the kubeconfig names no cluster CA, so the join token could not carry its hash")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	credential, err := authn.NewBootstrapToken()
	if err != nil {
		return "", err
	}
	var expires time.Time
	if ttl > 0 {
		expires = now.Add(ttl)
	}
	if description == "" {
		description = "Join token created by `tinykube token create`."
	}
	secret, err := authn.BootstrapTokenSecret(credential, expires, description, nil)
	if err != nil {
		return "", err
	}
	if _, err := client.CoreV1().Secrets(secret.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating the bootstrap token: %w", err)
	}
	return pki.FormatJoinToken(caPEM, credential), nil
}
