// Package disruption is the disruption controller: it keeps the status of
// every policy/v1 PodDisruptionBudget, as upstream's
// disruption-controller does, so that the API server's eviction subresource can
// decide whether a pod may go.
//
// It owns, per budget: finding its pods (its selector in its namespace),
// expectedPods (from the scale of the pods' controllers, Deployments,
// ReplicaSets and StatefulSets, for percentages and maxUnavailable; the
// number of pods for an integer minAvailable), currentHealthy (ready pods
// not being deleted nor recently evicted), desiredHealthy,
// disruptionsAllowed, observedGeneration, the DisruptionAllowed condition
// (SufficientPods, InsufficientPods, SyncFailed), and dropping entries of
// disruptedPods once the pod is gone or has not gone within two minutes.
// It also resets a pod's DisruptionTarget condition that an eviction set
// but no deletion followed within two minutes.
//
// It does not own evictions (the API server takes a disruption from the
// budget when it evicts) nor deleting pods.
package disruption
