// Command tinykube runs a small Kubernetes cluster from one binary.
//
//	tinykube server      control plane and a node on this host (package server)
//	tinykube agent       join this host to a cluster as a node (package agent)
//	tinykube kubectl     kubectl, using the server's kubeconfig by default
//	tinykube images      load image tarballs into the node's containerd
//	tinykube service     print the URLs of NodePort and LoadBalancer Services
//	tinykube token       manage join tokens
//	tinykube uninstall   remove the network state a node leaves behind
//
// This package holds flags and wiring only: it parses flags into the
// server's and agent's configurations, builds the process's one log
// (logging.go: one slog handler, klog and the standard logger routed into
// it) and runs the command. Logic belongs in the packages it calls.
package main
