// Package rbac serves rbac.authorization.k8s.io/v1: Roles, ClusterRoles,
// RoleBindings and ClusterRoleBindings, with upstream's validation and
// table columns. Evaluating them (package authz) and refusing escalation
// (the generic server) are not its business.
package rbac
