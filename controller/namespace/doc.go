// Package namespace owns the namespace controller (upstream's
// namespace-controller): once a Namespace is
// being deleted (phase Terminating, "kubernetes" in spec.finalizers) it
// deletes every namespaced object in it, for every resource discovery
// lists, reports progress in the Namespace's status conditions as
// upstream, and when nothing is left removes its finalizer through the
// finalize subresource so the API server can remove the Namespace. While content is still going
// away (pods in their grace period, finalizers) the namespace is looked at
// again every RecheckInterval, without counting as a failure.
package namespace
