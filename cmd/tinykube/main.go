package main

import (
	"context"
	"fmt"
	"io"
	"os"

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
		fmt.Fprintf(stderr, "tinykube: %v\n", err)
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
		// A bare `tinykube` shows the help rather than doing something.
		Args: cobra.NoArgs,
	}
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
