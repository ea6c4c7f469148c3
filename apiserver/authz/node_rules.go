package authz

import rbacv1 "k8s.io/api/rbac/v1"

// NodeRules are the rules of upstream's system:node ClusterRole: what
// every kubelet may do on resources the Node authorizer does not
// subdivide by node. (The Node authorizer takes over secrets,
// configmaps, claims, leases, nodes and pods before these are asked.)
func NodeRules() []rbacv1.PolicyRule {
	core := func(verbs []string, resources ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{""}, Resources: resources}
	}
	group := func(g string, verbs []string, resources ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{g}, Resources: resources}
	}
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		// Checking API access; these creates change nothing.
		group("authentication.k8s.io", []string{"create"}, "tokenreviews"),
		group("authorization.k8s.io", []string{"create"}, "subjectaccessreviews", "localsubjectaccessreviews"),
		// Service environment variables.
		core(read, "services"),
		// Registering and reporting on its Node (NodeRestriction limits
		// a node to its own).
		core([]string{"create", "get", "list", "watch"}, "nodes"),
		core([]string{"update", "patch"}, "nodes/status"),
		core([]string{"update", "patch"}, "nodes"),
		core([]string{"create", "update", "patch"}, "events"),
		core(read, "pods"),
		// Mirror pods, pod status, evictions (NodeRestriction limits
		// them to pods bound to the node).
		core([]string{"create", "delete"}, "pods"),
		core([]string{"update", "patch"}, "pods/status"),
		core([]string{"create"}, "pods/eviction"),
		// The Node authorizer limits these to objects its pods use.
		core(read, "secrets", "configmaps"),
		core([]string{"get"}, "persistentvolumeclaims", "persistentvolumes"),
		core([]string{"get"}, "endpoints"),
		group("certificates.k8s.io", []string{"create", "get", "list", "watch"}, "certificatesigningrequests"),
		group("coordination.k8s.io", []string{"get", "create", "update", "patch", "delete"}, "leases"),
		group("storage.k8s.io", []string{"get"}, "volumeattachments"),
		core([]string{"get", "update", "patch"}, "persistentvolumeclaims/status"),
		core([]string{"create"}, "serviceaccounts/token"),
		group("storage.k8s.io", read, "csidrivers"),
		group("storage.k8s.io", []string{"get", "create", "update", "patch", "delete"}, "csinodes"),
		group("node.k8s.io", read, "runtimeclasses"),
	}
}
