package apiservertest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/authn"
)

func TestUsersAreAuthenticatedAndAuthorized(t *testing.T) {
	s := Start(t, Options{Users: map[string]authn.User{"alice-token": {Name: "alice"}}})
	ctx := context.Background()
	alice, err := kubernetes.NewForConfig(s.ConfigFor("alice-token"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || err.Error() != `secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "default"` {
		t.Fatalf("alice without a binding: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}
	if _, err := s.Client.RbacV1().RoleBindings("default").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the admin client: %v", err)
	}
	if _, err := alice.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("alice as admin of default: %v", err)
	}
	stranger, err := kubernetes.NewForConfig(s.ConfigFor("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("unknown token: %v", err)
	}
}
