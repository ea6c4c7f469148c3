package clusterroleaggregation

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

const aggregateToView = "rbac.authorization.k8s.io/aggregate-to-view"

func start(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
}

// aggregating is a role collecting the roles labelled label=true.
func aggregating(name, label string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}}
}

// labelled is a role carrying label=true and rules.
func labelled(name, label string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{label: "true"}}, Rules: rules}
}

func read(resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: resources}
}

// waitRules waits until the role's rules are want (in order) and returns
// the role.
func waitRules(t *testing.T, client kubernetes.Interface, name string, want ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	t.Helper()
	var role *rbacv1.ClusterRole
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		role, err = client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return equality.Semantic.DeepEqual(role.Rules, want), nil
	})
	if err != nil {
		t.Fatalf("rules of %s: got %+v, want %+v (%v)", name, role.Rules, want, err)
	}
	return role
}

func TestAggregatedRulesAreTheUnionInNameOrderWithoutRepeats(t *testing.T) {
	client := fake.NewClientset(
		aggregating("view", aggregateToView),
		labelled("b-role", aggregateToView, read("services"), read("pods")),
		labelled("a-role", aggregateToView, read("pods"), read("configmaps")),
		labelled("unlabelled", "other", read("secrets")),
	)
	start(t, client)
	waitRules(t, client, "view", read("pods"), read("configmaps"), read("services"))
}

func TestAggregatedRulesFollowTheMatchedRoles(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(aggregating("view", aggregateToView), labelled("a-role", aggregateToView, read("pods")))
	start(t, client)
	roles := client.RbacV1().ClusterRoles()
	waitRules(t, client, "view", read("pods"))

	// A new labelled role adds its rules.
	if _, err := roles.Create(ctx, labelled("c-role", aggregateToView, read("endpoints")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules(t, client, "view", read("pods"), read("endpoints"))

	// A changed rule is changed in the union.
	a, err := roles.Get(ctx, "a-role", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Rules = []rbacv1.PolicyRule{read("pods", "pods/log")}
	if _, err := roles.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules(t, client, "view", read("pods", "pods/log"), read("endpoints"))

	// A role that loses its label, or is deleted, takes its rules along.
	a.Labels = nil
	if _, err := roles.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules(t, client, "view", read("endpoints"))
	if err := roles.Delete(ctx, "c-role", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules(t, client, "view")
}

func TestRulesWrittenByHandAreReplacedByTheUnion(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(aggregating("view", aggregateToView), labelled("a-role", aggregateToView, read("pods")))
	start(t, client)
	view := waitRules(t, client, "view", read("pods"))
	view.Rules = append(view.Rules, read("secrets"))
	if _, err := client.RbacV1().ClusterRoles().Update(ctx, view, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	view = waitRules(t, client, "view", read("pods"))
	if !ownsRules(view) {
		t.Errorf("managedFields %+v: want the rules managed by %s", view.ManagedFields, FieldManager)
	}
}

func TestAggregationChainsAndSkipsTheRoleItself(t *testing.T) {
	// admin <- edit <- view, as the default roles: edit's aggregated
	// rules reach admin once edit has them.
	admin := aggregating("admin", "aggregate-to-admin")
	edit := aggregating("edit", "aggregate-to-edit")
	edit.Labels = map[string]string{"aggregate-to-admin": "true", "aggregate-to-edit": "true"}
	client := fake.NewClientset(admin, edit,
		labelled("edit-rules", "aggregate-to-edit", read("secrets")),
		labelled("admin-rules", "aggregate-to-admin", read("roles")))
	start(t, client)
	waitRules(t, client, "edit", read("secrets"))
	waitRules(t, client, "admin", read("roles"), read("secrets"))
}

func ownsRules(role *rbacv1.ClusterRole) bool {
	for _, m := range role.ManagedFields {
		if m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}
