// Package namespace owns the namespace controller: once a Namespace is
// being deleted (phase Terminating, "kubernetes" in spec.finalizers) it
// deletes every namespaced object in it, for every resource discovery
// lists, reports progress in the Namespace's status conditions as
// upstream, and when nothing is left removes its finalizer through the
// finalize subresource so the API server can remove the Namespace.
package namespace
