// Package controller holds the reconcilers that upstream's
// kube-controller-manager runs, and k3s's ServiceLB, each in its own
// subpackage as a client-go client of the API (informers, rate-limited work
// queues, typed or metadata clients; never the store):
//
//   - deployment, replicaset: Deployments roll out through ReplicaSets
//     to Pods;
//   - job, cronjob: Jobs run their Pods to completion (and finished Jobs
//     go after their TTL); CronJobs create Jobs on schedule;
//   - disruption: PodDisruptionBudget status, which evictions consult;
//   - endpointslice: EndpointSlices and the legacy Endpoints of selector
//     Services;
//   - endpointslicemirroring: EndpointSlices mirroring the user-written
//     Endpoints of Services without a selector;
//   - garbagecollector: ownerReferences, with background, foreground and
//     orphan propagation;
//   - namespace: a deleted Namespace is emptied, then finalized;
//   - nodeipam: pod CIDRs for Nodes;
//   - nodelifecycle: node health from Leases, taints, pod eviction;
//   - serviceaccount: a default ServiceAccount per namespace;
//   - rootcacertpublisher: the kube-root-ca.crt ConfigMap per namespace;
//   - clusterroleaggregation: the rules of aggregated ClusterRoles;
//   - csrapproving, csrsigning: kubelet certificate requests approved and
//     signed with the cluster CA;
//   - clusterdns: the kube-system/kube-dns Service and its per-node
//     EndpointSlices (tinykube's own);
//   - servicelb: addresses for LoadBalancer Services (k3s's ServiceLB).
//
// Every one of them runs on internal/workloop, the one work loop, and
// exports its name (upstream's "*-controller" name) as Name. README.md
// lists what each writes and how it differs from upstream.
//
// This package itself owns the Manager, which `tinykube server` runs: one
// shared informer factory (started in one place, Manager.Run), one event
// broadcaster writing Events through the API (each controller recording
// as upstream's event source), every controller with upstream's default
// worker count, and one logger, handed to each controller with its name
// as the "component" attribute.
package controller
