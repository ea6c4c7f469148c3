// Package controller holds the reconcilers that upstream's
// kube-controller-manager runs, each in its own subpackage as a client-go
// client of the API (informers, rate-limited work queues, typed or
// metadata clients; never the store):
//
//   - deployment, replicaset: Deployments roll out through ReplicaSets
//     to Pods;
//   - endpointslice: EndpointSlices and the legacy Endpoints of selector
//     Services;
//   - garbagecollector: ownerReferences, with background, foreground and
//     orphan propagation;
//   - namespace: a deleted Namespace is emptied, then finalized;
//   - nodeipam: pod CIDRs for Nodes;
//   - nodelifecycle: node health from Leases, taints, pod eviction;
//   - serviceaccount: a default ServiceAccount per namespace.
//
// This package itself owns the Manager, which `tinykube server` runs: one
// shared informer factory, one event broadcaster writing Events through
// the API (each controller recording as upstream's component name), and
// every controller with upstream's default worker counts.
package controller
