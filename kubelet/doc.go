// Package kubelet is the node agent: node registration and lease, pod
// workers, the containerd runtime, CNI pod networking, images, probes, logs
// and the exec/attach/port-forward server. It is a client-go client of the API.
package kubelet
