package apiserver

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/storage"
)

// authServer is a test server behind the real authenticator, with one
// bearer token per user of testUsers.
type authServer struct {
	*testServer
	url string
}

// testUsers are the identities the authorization tests act as; the
// token of each is its key.
var testUsers = map[string]authn.User{
	"admin":      {Name: "kubernetes-admin", Groups: []string{"system:masters"}},
	"alice":      {Name: "alice"},
	"node-n1":    {Name: "system:node:n1", Groups: []string{"system:nodes"}},
	"node-n2":    {Name: "system:node:n2", Groups: []string{"system:nodes"}},
	"controller": {Name: "system:kube-controller-manager"},
	"scheduler":  {Name: "system:kube-scheduler"},
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	ts := newTestServer(t)
	tokens, err := authn.NewTokens(testUsers)
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{Tokens: []*authn.Tokens{tokens}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Wrap(ts.api.Handler()))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return &authServer{testServer: ts, url: srv.URL}
}

// as is a clientset authenticated with user's token.
func (s *authServer) as(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: s.url, BearerToken: token, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantForbidden fails unless err is a 403 with exactly message.
func wantForbidden(t *testing.T, err error, message string) {
	t.Helper()
	var status apierrors.APIStatus
	if !apierrors.IsForbidden(err) {
		t.Fatalf("want 403 %q, got %v", message, err)
	}
	if ok := asStatus(err, &status); !ok || status.Status().Message != message {
		t.Fatalf("message:\n got %s\nwant %s", err, message)
	}
}

func asStatus(err error, target *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*target = s
	}
	return ok
}

func TestDeniedRequestsGetUpstreamsForbiddenStatus(t *testing.T) {
	s := newAuthServer(t)
	alice := s.as(t, "alice")
	_, err := alice.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`)
	_, err = alice.CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope`)
	_, err = alice.AppsV1().Deployments("default").Get(ctx(t), "web", metav1.GetOptions{})
	wantForbidden(t, err, `deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "default"`)
	err = alice.CoreV1().Pods("default").GetLogs("p", &corev1.PodLogOptions{}).Do(ctx(t)).Error()
	wantForbidden(t, err, `pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "default"`)

	// The body is upstream's Status, with details.
	req, _ := http.NewRequest(http.MethodDelete, s.url+"/api/v1/namespaces/default/configmaps/c", nil)
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := readAll(t, resp)
	st := raw.status(t)
	if resp.StatusCode != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || st.Details == nil ||
		st.Details.Name != "c" || st.Details.Kind != "configmaps" {
		t.Fatalf("status %d %+v", resp.StatusCode, st)
	}

	// Every authenticated user may discover the API and ask about itself.
	if _, err := alice.Discovery().ServerGroups(); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if _, err := alice.Discovery().ServerVersion(); err != nil {
		t.Fatalf("version: %v", err)
	}
	err = alice.CoreV1().RESTClient().Get().AbsPath("/metrics").Do(ctx(t)).Error()
	wantForbidden(t, err, `forbidden: User "alice" cannot get path "/metrics"`)
}

func TestRoleBindingGrants(t *testing.T) {
	s := newAuthServer(t)
	admin, alice := s.as(t, "admin"), s.as(t, "alice")
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx(t), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// view is an aggregated role: its rules come from system:aggregate-to-view.
	if _, err := alice.CoreV1().ConfigMaps("default").Get(ctx(t), "c", metav1.GetOptions{}); err != nil {
		t.Fatalf("reading after the binding: %v", err)
	}
	_, err := alice.CoreV1().ConfigMaps("kube-system").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "kube-system"`)
	err = alice.CoreV1().ConfigMaps("default").Delete(ctx(t), "c", metav1.DeleteOptions{})
	wantForbidden(t, err, `configmaps "c" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "default"`)
	_, err = alice.CoreV1().Secrets("default").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "default"`)

	// Removing the binding takes the access away again.
	if err := admin.RbacV1().RoleBindings("default").Delete(ctx(t), "alice-view", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "access to end with the binding", func() bool {
		_, err := alice.CoreV1().ConfigMaps("default").Get(ctx(t), "c", metav1.GetOptions{})
		return apierrors.IsForbidden(err)
	})
}

func TestNodeWritesOnlyItsOwnNode(t *testing.T) {
	s := newAuthServer(t)
	n1, admin := s.as(t, "node-n1"), s.as(t, "admin")
	own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelHostname: "n1"}}}
	created, err := n1.CoreV1().Nodes().Create(ctx(t), own, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("registering itself: %v", err)
	}
	created.Labels["node.kubernetes.io/instance-type"] = "small"
	if created, err = n1.CoreV1().Nodes().Update(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating itself: %v", err)
	}
	created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if created, err = n1.CoreV1().Nodes().UpdateStatus(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating its status: %v", err)
	}

	_, err = n1.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{})
	wantForbidden(t, err, `nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`)
	if _, err := admin.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = n1.CoreV1().Nodes().Patch(ctx(t), "n2", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	wantForbidden(t, err, `nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`)
	_, err = n1.CoreV1().Nodes().Patch(ctx(t), "n2", types.MergePatchType, []byte(`{"status":{"phase":"Running"}}`), metav1.PatchOptions{}, "status")
	wantForbidden(t, err, `nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`)
	err = n1.CoreV1().Nodes().Delete(ctx(t), "n2", metav1.DeleteOptions{})
	wantForbidden(t, err, `nodes "n2" is forbidden: User "system:node:n1" cannot delete resource "nodes" in API group "" at the cluster scope`)
	_, err = n1.CoreV1().Nodes().Get(ctx(t), "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("nodes read every Node (they run the service proxy): %v", err)
	}

	// Its taints and the labels that steer workloads are not its to change.
	created.Spec.Taints = nil
	withTaint := created.DeepCopy()
	withTaint.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
	_, err = n1.CoreV1().Nodes().Update(ctx(t), withTaint, metav1.UpdateOptions{})
	wantForbidden(t, err, `nodes "n1" is forbidden: node "n1" is not allowed to modify taints`)
	_, err = n1.CoreV1().Nodes().Patch(ctx(t), "n1", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"","node-restriction.kubernetes.io/pool":"a"}}}`), metav1.PatchOptions{})
	wantForbidden(t, err, `nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane`)
	_, err = n1.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1",
		Labels: map[string]string{"kubernetes.io/role": "master"}}}, metav1.CreateOptions{})
	wantForbidden(t, err, `nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: kubernetes.io/role`)

	// Its Lease, and no other.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if _, err := n1.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx(t), lease, metav1.CreateOptions{}); err != nil {
		t.Fatalf("its lease: %v", err)
	}
	_, err = n1.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx(t), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{})
	wantForbidden(t, err, `leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node`)
}

func TestNodeCannotModifyAnotherNodesPod(t *testing.T) {
	s := newAuthServer(t)
	n1, admin := s.as(t, "node-n1"), s.as(t, "admin")
	for _, p := range []struct{ name, node, secret string }{{"mine", "n1", "mine-secret"}, {"theirs", "n2", "their-secret"}} {
		pod := makePod(p.name)
		pod.Spec.NodeName = p.node
		pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: p.secret}}}}
		if _, err := admin.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Secrets("default").Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: p.secret}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	theirs, err := admin.CoreV1().Pods("default").Get(ctx(t), "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	theirs.Status.Message = "hijacked"
	_, err = n1.CoreV1().Pods("default").UpdateStatus(ctx(t), theirs, metav1.UpdateOptions{})
	wantForbidden(t, err, `pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself`)
	err = n1.CoreV1().Pods("default").Delete(ctx(t), "theirs", metav1.DeleteOptions{})
	wantForbidden(t, err, `pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself`)
	_, err = n1.CoreV1().Pods("default").Update(ctx(t), theirs, metav1.UpdateOptions{})
	wantForbidden(t, err, `pods "theirs" is forbidden: User "system:node:n1" cannot update resource "pods" in API group "" in the namespace "default"`)
	_, err = n1.CoreV1().Pods("default").Create(ctx(t), makePod("new"), metav1.CreateOptions{})
	wantForbidden(t, err, `pods "new" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods`)

	mine, err := n1.CoreV1().Pods("default").Get(ctx(t), "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading its pod: %v", err)
	}
	mine.Status.Message = "running"
	if _, err := n1.CoreV1().Pods("default").UpdateStatus(ctx(t), mine, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("its pod's status: %v", err)
	}
	if _, err := n1.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=n1"}); err != nil {
		t.Fatalf("listing its pods: %v", err)
	}
	_, err = n1.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector`)

	// Secrets: only those of its own pods.
	if _, err := n1.CoreV1().Secrets("default").Get(ctx(t), "mine-secret", metav1.GetOptions{}); err != nil {
		t.Fatalf("its pod's secret: %v", err)
	}
	_, err = n1.CoreV1().Secrets("default").Get(ctx(t), "their-secret", metav1.GetOptions{})
	wantForbidden(t, err, `secrets "their-secret" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object`)

	if err := n1.CoreV1().Pods("default").Delete(ctx(t), "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting its pod: %v", err)
	}
}

func TestInProcessComponentsMayDoTheirWork(t *testing.T) {
	s := newAuthServer(t)
	admin := s.as(t, "admin")
	can := func(user string, groups []string, verb, group, resource, subresource, namespace string) bool {
		t.Helper()
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	authenticated := []string{"system:authenticated"}
	nodes := []string{"system:nodes", "system:authenticated"}
	for _, c := range []struct {
		user                                          string
		groups                                        []string
		verb, group, resource, subresource, namespace string
		want                                          bool
	}{
		{"system:kube-controller-manager", authenticated, "create", "", "pods", "", "default", true},
		{"system:kube-controller-manager", authenticated, "create", "apps", "replicasets", "", "default", true},
		{"system:kube-controller-manager", authenticated, "update", "apps", "deployments", "status", "default", true},
		{"system:kube-controller-manager", authenticated, "create", "discovery.k8s.io", "endpointslices", "", "default", true},
		{"system:kube-controller-manager", authenticated, "delete", "", "namespaces", "", "", true},
		{"system:kube-controller-manager", authenticated, "update", "", "namespaces", "finalize", "", true},
		{"system:kube-controller-manager", authenticated, "patch", "", "nodes", "", "", true},
		{"system:kube-controller-manager", authenticated, "create", "", "configmaps", "", "default", true},
		{"system:kube-controller-manager", authenticated, "create", "", "services", "", "kube-system", true},
		{"system:kube-controller-manager", authenticated, "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
		{"system:kube-scheduler", authenticated, "create", "", "pods", "binding", "default", true},
		{"system:kube-scheduler", authenticated, "patch", "", "pods", "status", "default", true},
		{"system:kube-scheduler", authenticated, "watch", "", "nodes", "", "", true},
		{"system:kube-scheduler", authenticated, "create", "", "events", "", "default", true},
		{"system:kube-scheduler", authenticated, "delete", "", "nodes", "", "", false},
		{"system:node:n1", nodes, "watch", "discovery.k8s.io", "endpointslices", "", "", true},
		{"system:node:n1", nodes, "list", "", "endpoints", "", "", true},
		{"system:node:n1", nodes, "watch", "", "services", "", "", true},
		{"system:node:n1", nodes, "list", "", "nodes", "", "", true},
		{"system:node:n1", nodes, "patch", "", "events", "", "default", true},
		{"system:node:n1", nodes, "list", "", "secrets", "", "", false},
		{"system:kube-proxy", authenticated, "list", "discovery.k8s.io", "endpointslices", "", "", true},
		{"system:bootstrap:abc", []string{"system:bootstrappers", "system:authenticated"}, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", true},
		{"system:bootstrap:abc", []string{"system:bootstrappers", "system:authenticated"}, "create", "certificates.k8s.io", "certificatesigningrequests", "nodeclient", "", true},
		{"system:node:n1", nodes, "create", "certificates.k8s.io", "certificatesigningrequests", "selfnodeclient", "", true},
	} {
		if got := can(c.user, c.groups, c.verb, c.group, c.resource, c.subresource, c.namespace); got != c.want {
			t.Errorf("%s %s %s.%s/%s in %q: allowed %v, want %v", c.user, c.verb, c.resource, c.group, c.subresource, c.namespace, got, c.want)
		}
	}
}

func TestBootstrapPolicyKeepsUserEdits(t *testing.T) {
	s := newAuthServer(t)
	admin := s.as(t, "admin")
	view, err := admin.RbacV1().ClusterRoles().Get(ctx(t), "system:aggregate-to-view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if view.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" || view.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
		t.Fatalf("bootstrap markers: %v %v", view.Labels, view.Annotations)
	}
	extra := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}
	view.Rules = append(view.Rules[1:], extra) // drop one, add one
	if _, err := admin.RbacV1().ClusterRoles().Update(ctx(t), view, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RbacV1().ClusterRoleBindings().Delete(ctx(t), "system:basic-user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.api.Bootstrap(ctx(t)); err != nil {
		t.Fatal(err)
	}
	view, err = admin.RbacV1().ClusterRoles().Get(ctx(t), "system:aggregate-to-view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := bootstrapClusterRoles()
	var wantRules []rbacv1.PolicyRule
	for _, r := range want {
		if r.Name == "system:aggregate-to-view" {
			wantRules = r.Rules
		}
	}
	if len(view.Rules) != len(wantRules)+1 {
		t.Fatalf("after reconciling: %d rules, want the %d defaults and the user's", len(view.Rules), len(wantRules))
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Get(ctx(t), "system:basic-user", metav1.GetOptions{}); err != nil {
		t.Fatalf("deleted default binding not recreated: %v", err)
	}
	if _, err := admin.RbacV1().RoleBindings("kube-system").Get(ctx(t), "system::extension-apiserver-authentication-reader", metav1.GetOptions{}); err != nil {
		t.Fatalf("namespaced default binding: %v", err)
	}
	// A restart on a reconciled policy writes nothing.
	before, err := s.store.Revision(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.api.Bootstrap(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.store.Revision(ctx(t)); after != before {
		res, _ := s.store.List(ctx(t), "/", storage.ListOptions{})
		for _, kv := range res.KVs {
			if kv.ModRevision > before {
				t.Logf("written: %s", kv.Key)
			}
		}
		t.Fatalf("bootstrap of an up-to-date policy wrote %d times", after-before)
	}
}

func readAll(t *testing.T, resp *http.Response) rawResponse {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}

func TestImpersonation(t *testing.T) {
	s := newAuthServer(t)
	impersonating := func(token, user string, groups ...string) kubernetes.Interface {
		t.Helper()
		c, err := kubernetes.NewForConfig(&rest.Config{Host: s.url, BearerToken: token,
			Impersonate: rest.ImpersonationConfig{UserName: user, Groups: groups}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// kubectl --as=alice: the admin acts as alice, with alice's rights.
	asAlice := impersonating("admin", "alice")
	_, err := asAlice.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`)
	who, err := asAlice.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "alice" || !slices.Equal(who.Status.UserInfo.Groups, []string{"system:authenticated"}) {
		t.Fatalf("whoami as alice: %v %+v", err, who)
	}
	// A node's view, as kubectl --as=system:node:n1 --as-group=system:nodes.
	asNode := impersonating("admin", "system:node:n1", "system:nodes")
	if _, err := asNode.CoreV1().Pods("").List(ctx(t), metav1.ListOptions{FieldSelector: "spec.nodeName=n1"}); err != nil {
		t.Fatalf("as a node: %v", err)
	}
	// alice may not impersonate anyone.
	_, err = impersonating("alice", "kubernetes-admin", "system:masters").CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `users "kubernetes-admin" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope`)
	// ... until a role lets her impersonate one service account.
	admin := s.as(t, "admin")
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "be-builder"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{"builder"}}}}
	if _, err := admin.RbacV1().Roles("default").Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-be-builder"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "be-builder"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx(t), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	who, err = impersonating("alice", "system:serviceaccount:default:builder").AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != "system:serviceaccount:default:builder" ||
		!slices.Equal(who.Status.UserInfo.Groups, []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}) {
		t.Fatalf("whoami as the service account: %v %+v", err, who)
	}
	_, err = impersonating("alice", "system:serviceaccount:default:other").CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
	wantForbidden(t, err, `serviceaccounts "other" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "default"`)
}

func TestRequestAttributesFromURL(t *testing.T) {
	tests := []struct {
		method, url string
		want        authz.Attributes
	}{
		{"GET", "/api/v1/namespaces/default/pods", authz.Attributes{ResourceRequest: true, Verb: "list", APIVersion: "v1", Resource: "pods", Namespace: "default"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=true", authz.Attributes{ResourceRequest: true, Verb: "watch", APIVersion: "v1", Resource: "pods", Namespace: "default"}},
		{"GET", "/api/v1/namespaces/default/pods/p/log", authz.Attributes{ResourceRequest: true, Verb: "get", APIVersion: "v1", Resource: "pods", Subresource: "log", Namespace: "default", Name: "p"}},
		{"POST", "/api/v1/namespaces/default/pods/p/exec", authz.Attributes{ResourceRequest: true, Verb: "create", APIVersion: "v1", Resource: "pods", Subresource: "exec", Namespace: "default", Name: "p"}},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments", authz.Attributes{ResourceRequest: true, Verb: "deletecollection", APIGroup: "apps", APIVersion: "v1", Resource: "deployments", Namespace: "ns"}},
		{"PATCH", "/api/v1/nodes/n1/status", authz.Attributes{ResourceRequest: true, Verb: "patch", APIVersion: "v1", Resource: "nodes", Subresource: "status", Name: "n1"}},
		{"GET", "/api/v1/namespaces/kube-system", authz.Attributes{ResourceRequest: true, Verb: "get", APIVersion: "v1", Resource: "namespaces", Namespace: "kube-system", Name: "kube-system"}},
		{"PUT", "/api/v1/namespaces/x/finalize", authz.Attributes{ResourceRequest: true, Verb: "update", APIVersion: "v1", Resource: "namespaces", Subresource: "finalize", Namespace: "x", Name: "x"}},
		{"GET", "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ds", authz.Attributes{ResourceRequest: true, Verb: "list", APIVersion: "v1", Resource: "secrets", Namespace: "default", Name: "s"}},
		{"GET", "/api/v1/watch/namespaces/default/configmaps/c", authz.Attributes{ResourceRequest: true, Verb: "watch", APIVersion: "v1", Resource: "configmaps", Namespace: "default", Name: "c"}},
		{"GET", "/apis/apps/v1", authz.Attributes{Verb: "get"}},
		{"GET", "/healthz", authz.Attributes{Verb: "get"}},
		{"POST", "/logs", authz.Attributes{Verb: "post"}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.url, nil)
		p, err := parsePath(r.URL)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		got := requestAttributes(r, p, authn.User{})
		got.FieldSelector = nil
		tt.want.Path = r.URL.Path
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s:\n got %+v\nwant %+v", tt.method, tt.url, got, tt.want)
		}
	}
}

func TestRBACEscalationIsPrevented(t *testing.T) {
	s := newAuthServer(t)
	admin, alice := s.as(t, "admin"), s.as(t, "alice")
	if _, err := admin.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(c kubernetes.Interface, name, kind, role, user string) error {
		_, err := c.RbacV1().RoleBindings("team").Create(ctx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}, metav1.CreateOptions{})
		return err
	}
	if err := bind(admin, "alice-admin", "ClusterRole", "admin", "alice"); err != nil {
		t.Fatal(err)
	}

	// A namespace admin grants what it holds: a role of its own, applied
	// with its binding in one go, and view.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}}}}
	if _, err := alice.RbacV1().Roles("team").Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a role within alice's rights: %v", err)
	}
	if err := bind(alice, "bob-reads", "Role", "pod-reader", "bob"); err != nil {
		t.Fatalf("binding it at once: %v", err)
	}
	if err := bind(alice, "bob-views", "ClusterRole", "view", "bob"); err != nil {
		t.Fatalf("binding view: %v", err)
	}

	// ... and not more.
	role = &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "too-much"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "delete"}, APIGroups: []string{"", "storage.k8s.io"}, Resources: []string{"pods", "csinodes"}}}}
	_, err := alice.RbacV1().Roles("team").Create(ctx(t), role, metav1.CreateOptions{})
	wantForbidden(t, err, `roles.rbac.authorization.k8s.io "too-much" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["csinodes"], Verbs:["get" "list" "delete"]}
{APIGroups:["storage.k8s.io"], Resources:["csinodes"], Verbs:["get" "list" "delete"]}
{APIGroups:["storage.k8s.io"], Resources:["pods"], Verbs:["get" "list" "delete"]}`)
	err = bind(alice, "bob-admin", "ClusterRole", "cluster-admin", "bob")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `rolebindings.rbac.authorization.k8s.io "bob-admin" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`) {
		t.Fatalf("binding cluster-admin: %v", err)
	}
	_, err = alice.RbacV1().ClusterRoles().Create(ctx(t), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	wantForbidden(t, err, `clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`)
	err = bind(alice, "ghost", "ClusterRole", "no-such-role", "bob")
	if !apierrors.IsNotFound(err) {
		t.Fatalf("binding a role that does not exist: %v", err)
	}

	// The bind verb on a role lets a user bind it without holding it.
	binder := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "binder"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"bind"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, ResourceNames: []string{"cluster-admin"}}}}
	if _, err := admin.RbacV1().Roles("team").Create(ctx(t), binder, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bind(admin, "alice-binds", "Role", "binder", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := bind(alice, "bob-admin", "ClusterRole", "cluster-admin", "bob"); err != nil {
		t.Fatalf("with bind on cluster-admin: %v", err)
	}
}

func TestGarbageCollectorMayDropOwnersOfRolesItCouldNotWrite(t *testing.T) {
	s := newAuthServer(t)
	admin, controllers, alice := s.as(t, "admin"), s.as(t, "controller"), s.as(t, "alice")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "impersonator", Finalizers: []string{"example.com/keep", "example.com/other"}},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"users"}}}}
	created, err := admin.RbacV1().ClusterRoles().Create(ctx(t), role, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Finalizers = created.Finalizers[1:]
	if created, err = controllers.RbacV1().ClusterRoles().Update(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("the controllers dropping a finalizer: %v", err)
	}

	// alice may update ClusterRoles but holds none of their rules: she
	// too may drop a finalizer, but not put the role's rules into admin.
	// (The controllers' one identity holds escalate on ClusterRoles, as
	// upstream's aggregation controller does, so it is not the example.)
	updater := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "clusterrole-updater"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "update"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}}}}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx(t), updater, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx(t), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-updates"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "clusterrole-updater"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created.Finalizers = nil
	if created, err = alice.RbacV1().ClusterRoles().Update(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("alice dropping a finalizer: %v", err)
	}
	created.Labels = map[string]string{"rbac.authorization.k8s.io/aggregate-to-admin": "true"}
	_, err = alice.RbacV1().ClusterRoles().Update(ctx(t), created, metav1.UpdateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["users"], Verbs:["impersonate"]}`) {
		t.Fatalf("aggregating it into admin: %v", err)
	}
}

func TestPodStreamWebSocketsNeedCreate(t *testing.T) {
	s := newAuthServer(t)
	admin := s.as(t, "admin")
	// alice may get pods/exec, as read-only roles used to grant it, but
	// not create it.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "exec-get"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/exec"}}}}
	if _, err := admin.RbacV1().Roles("default").Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-exec-get"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "exec-get"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
	if _, err := admin.RbacV1().RoleBindings("default").Create(ctx(t), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/namespaces/default/pods/p/exec?command=sh&stdout=true", nil)
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Protocol", "v5.channel.k8s.io")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st := readAll(t, resp).status(t)
	if resp.StatusCode != http.StatusForbidden || st.Message != `pods "p" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "default"` {
		t.Fatalf("WebSocket exec with get only: %d %s", resp.StatusCode, st.Message)
	}
}

// A kubelet may evict the pods bound to it, as upstream's NodeRestriction
// allows (the eviction's own status write is not a node's pod update),
// and no other pod.
func TestNodeEvictsOnlyItsOwnPods(t *testing.T) {
	s := newAuthServer(t)
	n1, admin := s.as(t, "node-n1"), s.as(t, "admin")
	for _, p := range []struct{ name, node string }{{"mine", "n1"}, {"theirs", "n2"}} {
		pod := makePod(p.name)
		pod.Spec.NodeName = p.node
		if _, err := admin.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evict := func(name string) error {
		return n1.CoreV1().Pods("default").EvictV1(ctx(t), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
	}
	wantForbidden(t, evict("theirs"), `pods "theirs" is forbidden: node n1 can only evict pods with spec.nodeName set to itself`)
	if err := evict("mine"); err != nil {
		t.Fatalf("evicting its own pod: %v", err)
	}
}
