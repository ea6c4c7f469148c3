//go:build nokubectl

package main

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// A server-only build (go build -tags nokubectl) leaves kubectl out: the
// kubectl packages' initialisation alone costs the server process about
// 50 MiB of resident memory, which matters on small edge hosts.
func newKubectlCommand(_ genericiooptions.IOStreams, kubeconfig string) *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Not in this build: use any kubectl with KUBECONFIG=" + kubeconfig,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("this tinykube was built without kubectl (-tags nokubectl); run any kubectl with KUBECONFIG=" + kubeconfig)
		},
	}
}
