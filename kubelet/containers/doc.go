// Package containers runs a pod's containers in containerd: it builds each
// container's OCI spec (command and args over the image's entrypoint and cmd,
// env, working dir, the pod's shared net/UTS/IPC namespaces, mounts), starts
// it with its output copied into a CRI-format log file, stops it gracefully
// (SIGTERM, grace period, SIGKILL), removes it with its snapshot, reports
// exits, and lists what runs so a restarted kubelet re-adopts it.
//
// Containers carry upstream CRI's io.kubernetes.* labels, so `ctr -n k8s.io
// containers ls` shows which pod each belongs to.
package containers
