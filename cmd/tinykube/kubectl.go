package main

import (
	goflag "flag"
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

func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl",
		Short: "Run kubectl against this cluster",
		Long: `Run kubectl against this cluster.

It uses ` + defaultKubeconfig + ` unless KUBECONFIG or --kubeconfig
says otherwise. Every kubectl flag and command works; see
'tinykube kubectl --help'.`,
		// Everything after `kubectl` belongs to kubectl, --help included.
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			runKubectl(args)
			return nil
		},
	}
}

// runKubectl runs kubectl with args, exactly as the kubectl binary's main
// does, and exits the process on failure with kubectl's own message and
// code: scripts that check `kubectl`'s exit status work unchanged.
func runKubectl(args []string) {
	// A binary built without the Makefile's -ldflags carries
	// component-base's placeholder version, on which `kubectl version`
	// fails to parse; a plain development version keeps it working.
	if _, err := utilversion.ParseSemantic(version.Get().GitVersion); err != nil {
		_ = version.SetDynamicVersion("v0.0.0-master")
	}
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	flags := genericclioptions.NewConfigFlags(true).
		WithDeprecatedPasswordFlag().
		WithDiscoveryBurst(300).
		WithDiscoveryQPS(50.0).
		WithWarningPrinter(streams)
	// The default only when the user named no kubeconfig at all, as
	// `k3s kubectl` does; --kubeconfig on the command line still wins,
	// since flag parsing overwrites this value.
	if os.Getenv("KUBECONFIG") == "" {
		if _, err := os.Stat(defaultKubeconfig); err == nil {
			path := defaultKubeconfig
			flags.KubeConfig = &path
		}
	}
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
