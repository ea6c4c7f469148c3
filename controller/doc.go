// Package controller holds the reconcilers that upstream's
// kube-controller-manager runs (deployment, replicaset, endpointslice,
// garbage collector, namespace, node IPAM and lifecycle), each in its own
// subpackage, all as client-go clients of the API.
package controller
