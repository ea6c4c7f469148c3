// Package garbagecollector owns the garbage collector (upstream's
// garbage-collector-controller): it watches the metadata of every resource
// the API server lists at start (discovery plus
// metadata informers), keeps a graph of ownerReferences by UID, and
//
//   - deletes objects whose owners are all gone (background propagation),
//   - for an owner being deleted with the foregroundDeletion finalizer,
//     deletes its dependents first (foreground again for dependents that
//     have dependents of their own) and removes the finalizer once no
//     dependent with blockOwnerDeletion is left,
//   - for an owner being deleted with the orphan finalizer, removes the
//     owner's ownerReferences from its dependents, then the finalizer.
//
// The API server sets those finalizers and deletionTimestamp when a
// client deletes with propagationPolicy Foreground or Orphan; the
// collector only reacts to them, as upstream's. Unlike upstream, discovery
// runs once, when the collector starts: resources added later (a new
// CustomResourceDefinition) are not watched until the next start.
package garbagecollector
