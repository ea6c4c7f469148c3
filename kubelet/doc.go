// Package kubelet is the node agent: node registration and lease, pod
// workers, the containerd runtime, CNI pod networking, images, probes, logs
// and the exec/attach/port-forward server. It is a client-go client of the
// API.
//
// Subpackages own the pieces: supervisor runs tinykube's own containerd
// (the agent starts it before the kubelet, see NewContainerd), images
// imports and pulls images, sandbox owns a pod's namespaces and CNI
// attachment, containers runs containers in containerd. This package ties
// them to the API: it watches the pods bound to its node, reconciles each
// from full state in a pod worker and writes pod status.
//
// The runtime, image store and pod network are interfaces
// (ContainerRuntime, ImageService, PodNetwork) that Config may set; the
// internal/fake package implements them in memory, so pod sync is tested
// without root.
package kubelet
