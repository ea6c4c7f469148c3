package authz

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
)

func TestRuleAllows(t *testing.T) {
	podsGet := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		a    Attributes
		want bool
	}{
		{"exact match", podsGet, resourceAttrs("get", "", "pods", "", "default", "p"), true},
		{"other verb", podsGet, resourceAttrs("list", "", "pods", "", "default", ""), false},
		{"other group", podsGet, resourceAttrs("get", "apps", "pods", "", "default", "p"), false},
		{"a resource does not grant its subresources", podsGet, resourceAttrs("get", "", "pods", "log", "default", "p"), false},
		{"subresource named", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}},
			resourceAttrs("get", "", "pods", "log", "default", "p"), true},
		{"*/status matches any status", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/status"}},
			resourceAttrs("update", "apps", "deployments", "status", "default", "d"), true},
		{"*/status is no main resource", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"*"}, Resources: []string{"*/status"}},
			resourceAttrs("update", "apps", "deployments", "", "default", "d"), false},
		{"* resource includes subresources", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
			resourceAttrs("create", "", "pods", "exec", "default", "p"), true},
		{"resourceNames limit", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
			resourceAttrs("get", "", "configmaps", "", "default", "b"), false},
		{"resourceNames do not grant lists", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
			resourceAttrs("list", "", "configmaps", "", "default", ""), false},
		{"URL exact", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, pathAttrs("get", "/healthz"), true},
		{"URL prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, pathAttrs("get", "/apis/apps/v1"), true},
		{"URL rules never grant resources", rbacv1.PolicyRule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
			resourceAttrs("get", "", "pods", "", "default", "p"), false},
		{"resource rules never grant URLs", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
			pathAttrs("get", "/healthz"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleAllows(tt.a, tt.rule); got != tt.want {
				t.Fatalf("RuleAllows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRBACAuthorize(t *testing.T) {
	policy := NewPolicySet(
		clusterRole("pod-reader", nil, rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}),
		// view aggregates pod-reader by label; admin aggregates view.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view", Labels: map[string]string{"agg-admin": "true"}},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg-view": "true"}}}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin"},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg-admin": "true"}}}}},
		clusterRole("secret-reader", map[string]string{"agg-view": "true"}, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm-writer", Namespace: "team"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}},
		clusterBinding("readers", "pod-reader", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "readers"}),
		roleBinding("team", "admins", "ClusterRole", "admin", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "carol"}),
		roleBinding("team", "writers", "Role", "cm-writer", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}),
		roleBinding("team", "broken", "Role", "missing", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "dave"}),
	)
	rbac := RBAC{Policy: policy}
	alice := authn.User{Name: "alice", Groups: []string{"readers"}}
	carol := authn.User{Name: "carol"}
	builder := authn.User{Name: "system:serviceaccount:team:builder"}
	dave := authn.User{Name: "dave"}
	tests := []struct {
		name       string
		user       authn.User
		a          Attributes
		want       Decision
		wantReason string
	}{
		{"group binding grants everywhere", alice, resourceAttrs("list", "", "pods", "", "other", ""), Allow,
			`RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers"`},
		{"nothing granted", alice, resourceAttrs("delete", "", "pods", "", "other", "p"), NoOpinion, ""},
		{"role binding to an aggregated cluster role, two levels down", carol, resourceAttrs("get", "", "secrets", "", "team", "s"), Allow,
			`RBAC: allowed by RoleBinding "admins/team" of ClusterRole "admin" to User "carol"`},
		{"role binding only in its namespace", carol, resourceAttrs("get", "", "secrets", "", "other", "s"), NoOpinion, ""},
		{"service account subject defaults to the binding's namespace", builder, resourceAttrs("create", "", "configmaps", "", "team", ""), Allow,
			`RBAC: allowed by RoleBinding "writers/team" of Role "cm-writer" to ServiceAccount "builder/team"`},
		{"a binding to a missing role says so", dave, resourceAttrs("get", "", "pods", "", "team", "p"), NoOpinion,
			`RBAC: role.rbac.authorization.k8s.io "missing" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.User = tt.user
			d, reason, err := rbac.Authorize(context.Background(), tt.a)
			if err != nil || d != tt.want || reason != tt.wantReason {
				t.Fatalf("Authorize = %v, %q, %v; want %v, %q", d, reason, err, tt.want, tt.wantReason)
			}
		})
	}

	// A change to a role aggregated into another takes effect at once.
	policy.Set(clusterRole("secret-reader", map[string]string{"agg-view": "true"}))
	a := resourceAttrs("get", "", "secrets", "", "team", "s")
	a.User = carol
	if d, _, _ := rbac.Authorize(context.Background(), a); d != NoOpinion {
		t.Fatalf("after the aggregated rule went away: %v", d)
	}
}

func TestUnionFirstOpinionWins(t *testing.T) {
	masters := authn.User{Name: "admin", Groups: []string{"system:masters"}}
	chain := Union{PrivilegedGroups{"system:masters"}, RBAC{Policy: NewPolicySet(
		roleBinding("ns", "b", "Role", "gone", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "bob"}))}}
	a := resourceAttrs("delete", "", "nodes", "", "", "n1")
	a.User = masters
	if d, _, _ := chain.Authorize(context.Background(), a); d != Allow {
		t.Fatalf("system:masters: %v", d)
	}
	a = resourceAttrs("get", "", "pods", "", "ns", "p")
	a.User = authn.User{Name: "bob"}
	d, reason, _ := chain.Authorize(context.Background(), a)
	if d != NoOpinion || reason != `RBAC: role.rbac.authorization.k8s.io "gone" not found` {
		t.Fatalf("bob: %v %q", d, reason)
	}
}

func TestForbiddenMessage(t *testing.T) {
	alice := authn.User{Name: "alice"}
	tests := []struct {
		a    Attributes
		want string
	}{
		{resourceAttrs("list", "", "pods", "", "default", ""), `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`},
		{resourceAttrs("get", "", "pods", "log", "default", "p"), `User "alice" cannot get resource "pods/log" in API group "" in the namespace "default"`},
		{resourceAttrs("list", "", "nodes", "", "", ""), `User "alice" cannot list resource "nodes" in API group "" at the cluster scope`},
		{pathAttrs("get", "/metrics"), `User "alice" cannot get path "/metrics"`},
	}
	for _, tt := range tests {
		tt.a.User = alice
		if got := ForbiddenMessage(tt.a); got != tt.want {
			t.Errorf("ForbiddenMessage = %s\nwant %s", got, tt.want)
		}
	}
}

func resourceAttrs(verb, group, resource, subresource, namespace, name string) Attributes {
	return Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, APIVersion: "v1",
		Resource: resource, Subresource: subresource, Namespace: namespace, Name: name}
}

func pathAttrs(verb, path string) Attributes { return Attributes{Verb: verb, Path: path} }

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) runtime.Object {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
}

func clusterBinding(name, role string, subjects ...rbacv1.Subject) runtime.Object {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
}

func roleBinding(namespace, name, kind, role string, subjects ...rbacv1.Subject) runtime.Object {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}, Subjects: subjects}
}
