// Package nodelifecycle owns the node lifecycle controller (upstream's
// node-lifecycle-controller). Every NodeMonitorPeriod it makes one pass
// over the nodes (the work loop's single key, requeued after the period):
//
//   - health: a node whose kubelet has renewed neither its Lease (in
//     kube-node-lease) nor its Ready heartbeat for NodeMonitorGracePeriod
//     gets its conditions set to Unknown ("NodeStatusUnknown", "Kubelet
//     stopped posting node status."), time measured on the controller's
//     own clock from when it last saw a renewal, as upstream;
//   - taints: Ready=False gives node.kubernetes.io/not-ready and
//     Ready=Unknown node.kubernetes.io/unreachable, each NoSchedule and
//     NoExecute; Ready=True removes them;
//   - pods on a node that is not Ready are marked Ready=False, so
//     endpoints drop them;
//   - taint-based eviction: a pod on a node with a NoExecute taint is
//     deleted at once when it does not tolerate it, else when its
//     toleration's tolerationSeconds have passed since the taint was
//     added.
//
// Upstream's zone-aware eviction rate limits are not implemented: every
// eviction that is due happens on the next pass.
package nodelifecycle
