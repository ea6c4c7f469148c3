package authz

import (
	"context"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// BenchmarkRBACAuthorize decides one request of a user whose binding is
// the last of 50 ClusterRoleBindings, as a controller's requests are
// decided on every call.
func BenchmarkRBACAuthorize(b *testing.B) {
	var objs []runtime.Object
	for i := range 50 {
		role := fmt.Sprintf("role-%02d", i)
		objs = append(objs,
			clusterRole(role, nil, rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods", "services"}},
				rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{"apps"}, Resources: []string{"replicasets"}}),
			clusterBinding(role, role, rbacv1.Subject{Kind: rbacv1.UserKind, Name: fmt.Sprintf("user-%02d", i)}))
	}
	rbac := RBAC{Policy: NewPolicySet(objs...)}
	a := resourceAttrs("create", "apps", "replicasets", "", "default", "")
	a.User = authn.User{Name: "user-49", Groups: []string{authn.GroupAuthenticated}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, _, _ := rbac.Authorize(ctx, a); d != Allow {
			b.Fatal("not allowed")
		}
	}
}
