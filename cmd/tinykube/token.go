package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
	"github.com/tinykube/tinykube/server"
)

// newTokenCommand is `tinykube token create|list|delete`, as `kubeadm
// token` and `k3s token`: bootstrap tokens, printed as join tokens.
func newTokenCommand(stdout io.Writer) *cobra.Command {
	token := &cobra.Command{Use: "token", Short: "Manage join tokens"}
	commandGroup(token)
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
			t, err := server.CreateJoinToken(cmd.Context(), cfg, server.TokenOptions{TTL: o.ttl, Description: o.description, Groups: o.groups}, time.Now())
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
	f.StringSliceVar(&o.groups, "groups", nil, "extra groups the token authenticates in, each system:bootstrappers:...")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", kubeconfigFlagHelp)
	token.AddCommand(create, newTokenListCommand(stdout), newTokenDeleteCommand(stdout))
	return token
}

const kubeconfigFlagHelp = "kubeconfig to use (default: $KUBECONFIG, else " + defaultKubeconfig + ")"

type tokenCreateOptions struct {
	ttl         time.Duration
	description string
	groups      []string
	kubeconfig  string
}

// tokenClient is a clientset from the --kubeconfig flag.
func tokenClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := restConfigFrom(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// newTokenListCommand is `tinykube token list`, kubeadm's columns with
// the token's id rather than its secret.
func newTokenListCommand(stdout io.Writer) *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bootstrap tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := tokenClient(kubeconfig)
			if err != nil {
				return err
			}
			list, err := client.CoreV1().Secrets(authn.BootstrapTokenNamespace).List(cmd.Context(),
				metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "ID\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS")
			now := time.Now()
			for _, s := range list.Items {
				id := string(s.Data[authn.BootstrapTokenIDKey])
				if id == "" {
					continue
				}
				ttl, expires := "<forever>", "<never>"
				if e, err := time.Parse(time.RFC3339, string(s.Data[authn.BootstrapTokenExpirationKey])); err == nil {
					ttl, expires = "<expired>", e.Format(time.RFC3339)
					if e.After(now) {
						ttl = duration.ShortHumanDuration(e.Sub(now))
					}
				}
				var usages []string
				for _, u := range []string{authn.BootstrapTokenUsageAuthKey, authn.BootstrapTokenUsageSignKey} {
					if string(s.Data[u]) == "true" {
						usages = append(usages, strings.TrimPrefix(u, "usage-bootstrap-"))
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, ttl, expires, orNone(strings.Join(usages, ",")),
					orNone(string(s.Data[authn.BootstrapTokenDescriptionKey])), orNone(string(s.Data[authn.BootstrapTokenExtraGroupsKey])))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", kubeconfigFlagHelp)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// newTokenDeleteCommand is `tinykube token delete ID|TOKEN...`: the
// tokens stop working at once.
func newTokenDeleteCommand(stdout io.Writer) *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "delete ID|TOKEN...",
		Short: "Delete bootstrap tokens, given by id, as <id>.<secret> or as a join token",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := tokenClient(kubeconfig)
			if err != nil {
				return err
			}
			for _, a := range args {
				id := a
				if t, err := pki.ParseJoinToken(a); err == nil {
					if i, _, ok := authn.ParseBootstrapToken(t.Credential); ok {
						id = i
					}
				}
				name := authn.BootstrapTokenSecretPrefix + id
				if err := client.CoreV1().Secrets(authn.BootstrapTokenNamespace).Delete(cmd.Context(), name, metav1.DeleteOptions{}); err != nil {
					return fmt.Errorf("bootstrap token %q: %w", id, err)
				}
				fmt.Fprintf(stdout, "bootstrap token %q deleted\n", id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", kubeconfigFlagHelp)
	return cmd
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
