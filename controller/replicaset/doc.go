// Package replicaset is the ReplicaSet controller: it keeps the number of
// Pods that each ReplicaSet selects and controls equal to spec.replicas,
// as upstream's replicaset-controller does.
//
// It owns: creating Pods from the template (generateName "<rs-name>-",
// a controller ownerReference), adopting orphan Pods that match the
// selector and releasing owned Pods that no longer match, deleting the
// least valuable Pods first when scaling down, slow-start batches of
// creations, expectations that keep informer lag from causing extra
// creations or deletions, and the ReplicaSet status subresource.
//
// It does not own garbage collection of Pods whose ReplicaSet is gone (the
// garbage collector does) nor scheduling or running them.
package replicaset
