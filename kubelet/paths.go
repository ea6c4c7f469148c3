package kubelet

import "path/filepath"

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
