//go:build !nokubectl

package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

func newKubectlCommand(streams genericiooptions.IOStreams, kubeconfig string) *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl",
		Short: "Run kubectl against this cluster",
		Long: `Run kubectl against this cluster.

It uses ` + kubeconfig + ` unless KUBECONFIG or --kubeconfig
says otherwise. Every kubectl flag and command works; see
'tinykube kubectl --help'.`,
		// Everything after `kubectl` belongs to kubectl, --help included.
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			runKubectl(args, streams, kubeconfig)
			return nil
		},
	}
}

// runKubectl runs kubectl with args, exactly as the kubectl binary's main
// does, and exits the process on failure with kubectl's own message and
// code: scripts that check `kubectl`'s exit status work unchanged.
// kubeconfig is used when the user names none, as `k3s kubectl` does.
func runKubectl(args []string, streams genericiooptions.IOStreams, kubeconfig string) {
	// A binary built without the Makefile's -ldflags carries
	// component-base's placeholder version, on which `kubectl version`
	// fails to parse; a plain development version keeps it working.
	if _, err := utilversion.ParseSemantic(version.Get().GitVersion); err != nil {
		_ = version.SetDynamicVersion("v0.0.0-master")
	}
	if os.Getenv("KUBECONFIG") == "" {
		defaultKubeconfigEnv(kubeconfig, streams.ErrOut)
	}
	flags := genericclioptions.NewConfigFlags(true).
		WithDeprecatedPasswordFlag().
		WithDiscoveryBurst(300).
		WithDiscoveryQPS(50.0).
		WithWarningPrinter(streams)
	cmd := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   flags,
		IOStreams:     streams,
	})
	cmd.SetArgs(args)
	// What the kubectl binary's main gets from component-base/cli, minus
	// its metrics and tracing dependencies: flag spelling normalised
	// (--dry_run means --dry-run) and klog's -v and --vmodule, so
	// `kubectl -v=9` works.
	cmd.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		cmd.PersistentFlags().AddGoFlag(klogFlags.Lookup(name))
	}
	defer klog.Flush()
	cmd.SilenceErrors = true
	if err := cmd.Execute(); err != nil {
		klog.Flush()
		cmdutil.CheckErr(err)
	}
}

// defaultKubeconfigEnv points KUBECONFIG at path when the file can be
// read, as `k3s kubectl` does. The environment rather than a flag default,
// because `kubectl config` has its own --kubeconfig flag; an explicit
// --kubeconfig still wins over KUBECONFIG everywhere.
func defaultKubeconfigEnv(path string, errOut io.Writer) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) {
		// The file is root's (mode 0600). kubectl falls back to
		// ~/.kube/config; say why the cluster's own is not used.
		fmt.Fprintf(errOut, "tinykube: cannot read %s: run as root, copy it to ~/.kube/config, or set KUBECONFIG\n", path)
		return
	}
	if err != nil {
		return
	}
	f.Close()
	_ = os.Setenv("KUBECONFIG", path)
}
