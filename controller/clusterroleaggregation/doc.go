// Package clusterroleaggregation owns the ClusterRole aggregation
// controller, as upstream's clusterrole-aggregation-controller: every
// ClusterRole with an aggregationRule gets, in its rules, the union of the
// rules of the ClusterRoles its clusterRoleSelectors match (admin, edit and
// view collect the roles labelled rbac.authorization.k8s.io/aggregate-to-*),
// kept up to date as those roles come, change and go.
//
// As upstream, the rules are gathered selector by selector, the matched
// roles in name order, each rule once (the first time it is seen); the
// role is written only when the union differs from its rules, by a forced
// server-side apply of rules with the field manager
// clusterrole-aggregation-controller.
package clusterroleaggregation
