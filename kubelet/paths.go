package kubelet

import (
	"log/slog"
	"path/filepath"

	"github.com/tinykube/tinykube/kubelet/supervisor"
)

// The node's directories under the data dir.

// ContainerdDir holds tinykube's own containerd: config, root, state, socket.
func ContainerdDir(dataDir string) string { return filepath.Join(dataDir, "agent", "containerd") }

// ContainerdAddress is the socket of tinykube's own containerd.
func ContainerdAddress(dataDir string) string {
	return filepath.Join(ContainerdDir(dataDir), "containerd.sock")
}

// ImagesDir holds tarballs imported at start.
func ImagesDir(dataDir string) string { return filepath.Join(dataDir, "agent", "images") }

// cniDir holds the CNI config and host-local IP allocations.
func cniDir(dataDir string) string { return filepath.Join(dataDir, "agent", "cni") }

// podsDir holds per-pod state: volumes, /etc/hosts, resolv.conf.
func podsDir(dataDir string) string { return filepath.Join(dataDir, "agent", "pods") }

// NewContainerd is tinykube's own containerd for a node with dataDir, as
// a supervised process: its caller runs it (Run, Ready) before the
// kubelet, whose ContainerRuntimeEndpoint is its Address. It fails when
// the host lacks the binaries.
func NewContainerd(dataDir string, logger *slog.Logger) (*supervisor.Supervisor, error) {
	if err := supervisor.CheckHost(true); err != nil {
		return nil, err
	}
	return supervisor.New(supervisor.Config{Dir: ContainerdDir(dataDir), Logger: logger})
}
