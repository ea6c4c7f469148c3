// Package authz owns authorization decisions, as kube-apiserver makes them
// with --authorization-mode=Node,RBAC: the request Attributes an
// authorizer judges, the chain of authorizers (members of system:masters
// first, then the Node authorizer, then RBAC), RBAC evaluation of
// rbac.authorization.k8s.io/v1 roles and bindings (aggregated ClusterRoles
// included), and the Node authorizer that limits a kubelet to its own Node,
// Lease and the objects its pods use.
//
// It does not read storage or HTTP: the API server builds Attributes from
// a request and feeds a PolicySet from its store.
package authz
