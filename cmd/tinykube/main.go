package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errLogged) {
			fmt.Fprintf(stderr, "tinykube: %v\n", err)
		}
		return 1
	}
	return 0
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tinykube",
		Short: "A small, real Kubernetes cluster in one binary",
		Long: `tinykube runs a small, real Kubernetes cluster in one binary.

Start a cluster on this host (as root):

  tinykube server

then use it with the built-in kubectl:

  tinykube kubectl get nodes`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	commandGroup(root)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	kubectlStreams := genericiooptions.IOStreams{In: os.Stdin, Out: stdout, ErrOut: stderr}
	root.AddCommand(newServerCommand(stdout, stderr), newKubectlCommand(kubectlStreams, defaultKubeconfig))
	root.AddCommand(newImagesCommand(stdout))
	root.AddCommand(newServiceCommand(stdout))
	root.AddCommand(newUninstallCommand(stdout))
	root.AddCommand(newTokenCommand(stdout))
	root.AddCommand(newAgentCommand(stdout, stderr))
	return root
}

// commandGroup makes cmd, a command that only holds subcommands, show its
// help when called bare and fail on anything else, with cobra's own
// message (`unknown command "bogus" for "tinykube"`), as kubectl and k3s
// do. Without a Run of its own, cobra shows the help and exits 0 for any
// argument.
func commandGroup(cmd *cobra.Command) {
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}
