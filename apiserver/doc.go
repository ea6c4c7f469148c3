// Package apiserver is tinykube's Kubernetes API server core: everything
// between an authenticated HTTP request and storage.Interface.
//
// It owns the resource table, built from one list of API groups (groups in
// resources.go; each group is a package under registry/ that describes its
// resources as registry.Resource values), the generic REST verbs (get, list,
// watch, create, update, patch, delete, deletecollection), content
// negotiation (JSON, YAML and protobuf bodies; JSON, YAML, protobuf, Table
// and PartialObjectMetadata answers), discovery, /version, health and
// OpenAPI endpoints, the order of the admission chain (package admission),
// and the steps that need storage (Service ClusterIP and NodePort
// allocation, bindings, evictions, tokens). No resource's own rules live
// here. Authentication, TLS and flags live elsewhere.
//
// Storage layout: every object is stored as the JSON of its versioned type
// under
//
//	/registry/<group>/<resource>/<namespace>/<name>   namespaced
//	/registry/<group>/<resource>/<name>               cluster-scoped
//
// where <group> is "core" for the legacy group. The stored resourceVersion is
// always empty: on every read metadata.resourceVersion is set from the key's
// ModRevision, so it can never disagree with the store.
//
// Errors travel as Go errors (apierrors.StatusError or storage sentinels) and
// become a metav1.Status once, in writeError, at the HTTP edge.
//
// README.md beside this file records the decisions that are not obvious
// from the code (watch semantics, allocation keys, why WebSocket streams are
// refused, what the OpenAPI documents leave out). Subpackage apiservertest
// runs the real server on a temp store for client components' tests.
package apiserver
