package main

import (
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/images"
)

// newImagesCommand is `tinykube images import FILE...`.
func newImagesCommand(stdout io.Writer) *cobra.Command {
	images := &cobra.Command{
		Use:   "images",
		Short: "Manage the node's container images",
	}
	commandGroup(images)
	var dataDir, endpoint string
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load OCI or docker-archive image tarballs into the node's containerd",
		Long: `Load OCI or docker-archive image tarballs (optionally gzip or zstd
compressed) into the node's containerd. When tinykube is not running, the files
are copied to DATA_DIR/agent/images/, whose tarballs are imported at start.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := endpoint
			if addr == "" {
				addr = kubelet.ContainerdAddress(dataDir)
			}
			return importImages(cmd, addr, filepath.Join(dataDir, "agent", "images"), args, stdout)
		},
	}
	imp.Flags().StringVar(&dataDir, "data-dir", "/var/lib/tinykube", "directory for the cluster's state")
	imp.Flags().StringVar(&endpoint, "container-runtime-endpoint", "", "containerd socket to import into (default: tinykube's own containerd)")
	images.AddCommand(imp)
	return images
}

func importImages(cmd *cobra.Command, address, queueDir string, files []string, out io.Writer) error {
	return images.ImportFiles(cmd.Context(), address, queueDir, files, out)
}
