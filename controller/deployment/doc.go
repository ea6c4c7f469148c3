// Package deployment is the Deployment controller: it rolls a Deployment's
// pod template out through ReplicaSets, as upstream's
// deployment-controller does.
//
// It owns: creating the ReplicaSet of the current template, named
// "<deployment>-<pod-template-hash>" with the pod-template-hash label and
// selector; scaling ReplicaSets for the RollingUpdate (maxSurge,
// maxUnavailable, minReadySeconds) and Recreate strategies and
// proportionally when a Deployment is scaled mid-rollout; the revision,
// revision-history, desired-replicas and max-replicas annotations;
// deleting ReplicaSets beyond revisionHistoryLimit; pausing; the status
// subresource with its Available and Progressing conditions
// (progressDeadlineSeconds); ScalingReplicaSet events.
//
// It does not own pods (package replicaset does) nor deleting a
// Deployment's ReplicaSets when the Deployment goes (the garbage collector
// does). `kubectl rollout undo` and `restart` are client-side edits of the
// template; this controller just rolls them out.
package deployment
