package apiserver

import (
	"bytes"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/cmd/auth"
)

func TestAuthWhoamiAndCanIWithoutAuthentication(t *testing.T) {
	ts := newTestServer(t)
	review, err := ts.client.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "system:anonymous" {
		t.Fatalf("whoami without authenticator: %v %+v", err, review)
	}
	// Nobody was authenticated, so nothing is authorized: everything goes.
	access, err := ts.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods"}},
	}, metav1.CreateOptions{})
	if err != nil || !access.Status.Allowed {
		t.Fatalf("can-i: %v %+v", err, access)
	}
	if resp := ts.do("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "", ""); resp.code != 405 {
		t.Fatalf("list of a create-only resource: %d", resp.code)
	}
}

// canI runs what `kubectl auth can-i VERB RESOURCE [-n NS]` runs.
func canI(t *testing.T, c kubernetes.Interface, verb string, gvr schema.GroupVersionResource, subresource, namespace string) bool {
	t.Helper()
	o := &auth.CanIOptions{AuthClient: c.AuthorizationV1(), Verb: verb, Resource: gvr, Subresource: subresource, Namespace: namespace,
		IOStreams: genericiooptions.NewTestIOStreamsDiscard()}
	allowed, err := o.RunAccessCheck()
	if err != nil {
		t.Fatalf("can-i %s %s: %v", verb, gvr.Resource, err)
	}
	return allowed
}

// canIList runs `kubectl auth can-i --list -n namespace` and returns its
// table.
func canIList(t *testing.T, c kubernetes.Interface, namespace string) string {
	t.Helper()
	var out bytes.Buffer
	o := &auth.CanIOptions{AuthClient: c.AuthorizationV1(), List: true, Namespace: namespace,
		IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: &out}}
	if err := o.RunAccessList(); err != nil {
		t.Fatalf("can-i --list: %v", err)
	}
	return out.String()
}

func TestKubectlAuthCanI(t *testing.T) {
	s := newAuthServer(t)
	admin, alice, n1 := s.as(t, "admin"), s.as(t, "alice"), s.as(t, "node-n1")
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

	if !canI(t, admin, "delete", pods, "", "default") || !canI(t, admin, "*", schema.GroupVersionResource{Group: "*", Resource: "*"}, "", "") {
		t.Fatal("system:masters may do everything")
	}
	if canI(t, alice, "create", deployments, "", "default") || canI(t, alice, "get", pods, "log", "default") {
		t.Fatal("alice has no bindings yet")
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx(t), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !canI(t, alice, "create", deployments, "", "default") || !canI(t, alice, "get", pods, "log", "default") {
		t.Fatal("edit in default")
	}
	if canI(t, alice, "create", deployments, "", "kube-system") {
		t.Fatal("edit is only for default")
	}

	// The reason names the binding, as upstream's does.
	r, err := alice.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}}}, metav1.CreateOptions{})
	if err != nil || r.Status.Reason != `RBAC: allowed by RoleBinding "alice-edit/default" of ClusterRole "edit" to User "alice"` {
		t.Fatalf("reason: %v %+v", err, r.Status)
	}

	list := canIList(t, alice, "default")
	for _, want := range []string{"selfsubjectaccessreviews.authorization.k8s.io", "deployments.apps", "[/api/*]"} {
		if !strings.Contains(list, want) {
			t.Errorf("can-i --list lacks %s:\n%s", want, list)
		}
	}
	if list := canIList(t, alice, "kube-system"); strings.Contains(list, "deployments.apps") {
		t.Errorf("can-i --list in kube-system shows edit's rules:\n%s", list)
	}
	rules, err := n1.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx(t), &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil || !rules.Status.Incomplete {
		t.Fatalf("a node's rules cannot be listed in full: %v %+v", err, rules)
	}

	// Another user's access, as admins and webhooks ask it.
	sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "alice", NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/metrics"}}}, metav1.CreateOptions{})
	if err != nil || sar.Status.Allowed {
		t.Fatalf("alice and /metrics: %v %+v", err, sar)
	}
	_, err = alice.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "bob", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods"}}}, metav1.CreateOptions{})
	wantForbidden(t, err, `subjectaccessreviews.authorization.k8s.io is forbidden: User "alice" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope`)
	_, err = admin.AuthorizationV1().LocalSubjectAccessReviews("default").Create(ctx(t), &authorizationv1.LocalSubjectAccessReview{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default"},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice",
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "other"}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.resourceAttributes.namespace: Invalid value: \"other\": must match metadata.namespace") {
		t.Fatalf("local review in another namespace: %v", err)
	}
}
