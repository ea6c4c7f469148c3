// Command tinykube runs a small Kubernetes cluster from one binary.
//
//	tinykube server     the API server (and, later, a node) on this host
//	tinykube kubectl    kubectl, using the server's kubeconfig by default
//
// This package holds flags and wiring only: it parses flags, starts the
// components from their packages in order and stops them in reverse. Logic
// belongs in those packages.
package main
