package clusterroleaggregation

import (
	"context"
	"slices"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/apiserver/authn"
)

// TestDefaultRolesGetTheirAggregatedRules runs the controller as the
// controller manager (system:kube-controller-manager, authorized by the
// default policy) against the real API server.
func TestDefaultRolesGetTheirAggregatedRules(t *testing.T) {
	const token = "controller-manager-token"
	s := apiservertest.Start(t, apiservertest.Options{Users: map[string]authn.User{
		token: {Name: "system:kube-controller-manager", Groups: []string{"system:authenticated"}},
	}})
	asControllers, err := kubernetes.NewForConfig(s.ConfigFor(token))
	if err != nil {
		t.Fatal(err)
	}
	start(t, asControllers)
	ctx := context.Background()

	podsRead := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	waitHolds(t, s.Client, "view", podsRead)
	waitHolds(t, s.Client, "edit", podsRead,
		rbacv1.PolicyRule{Verbs: []string{"create", "update", "patch", "delete", "deletecollection"}, APIGroups: []string{"apps"},
			Resources: []string{"statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
				"deployments/rollback", "replicasets", "replicasets/scale"}})
	waitHolds(t, s.Client, "admin", podsRead,
		rbacv1.PolicyRule{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"localsubjectaccessreviews"}})

	// kubectl create clusterrole widgets-reader ... with the label: view,
	// and through it edit and admin, get its rule.
	widgets := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}
	if _, err := s.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets-reader", Labels: map[string]string{aggregateToView: "true"}},
		Rules:      []rbacv1.PolicyRule{widgets},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"view", "edit", "admin"} {
		waitHolds(t, s.Client, name, widgets)
	}
	view, err := s.Client.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ownsRules(view) {
		t.Errorf("view's managedFields %+v: want its rules applied by %s", view.ManagedFields, FieldManager)
	}
}

// waitHolds waits until, for every rule of want, one of the role's rules
// names all its verbs, groups and resources.
func waitHolds(t *testing.T, client kubernetes.Interface, name string, want ...rbacv1.PolicyRule) {
	t.Helper()
	var role *rbacv1.ClusterRole
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		role, err = client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, w := range want {
			if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
				return holdsAll(r.Verbs, w.Verbs) && holdsAll(r.APIGroups, w.APIGroups) && holdsAll(r.Resources, w.Resources)
			}) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("rules of %s: got %+v, want them to include %+v (%v)", name, role.Rules, want, err)
	}
}

func holdsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
