package apiserver

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRBACObjectsAreStoredAndValidated(t *testing.T) {
	ts := newTestServer(t)
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}
	if _, err := ts.client.RbacV1().ClusterRoles().Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("cluster role with a colon in its name: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Widget", Name: "system:reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "default"}},
	}
	_, err := ts.client.RbacV1().RoleBindings("default").Create(ctx(t), binding, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `roleRef.kind: Unsupported value: "Widget"`) {
		t.Fatalf("bad roleRef kind: %v", err)
	}
}

func TestConfigMapKeysAreValidated(t *testing.T) {
	ts := newTestServer(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"bad key": "x"}}
	_, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx(t), cm, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters`) {
		t.Fatalf("bad key: %v", err)
	}
}
