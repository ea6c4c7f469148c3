package apiserver

import (
	"context"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/pki"
)

// The default policy's well-known subjects, as upstream names them.
const (
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	groupServiceAccounts = "system:serviceaccounts"
	groupMonitoring      = "system:monitoring"
	groupBootstrappers   = "system:bootstrappers"
	userKubeProxy        = "system:kube-proxy"
	userControllers      = "system:kube-controller-manager"
	userScheduler        = "system:kube-scheduler"
)

// bootstrapPolicyLabel and the autoupdate annotation mark the default
// policy, as upstream marks it.
var bootstrapPolicyLabel = map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}

// ensureRBACPolicy creates the default ClusterRoles and
// ClusterRoleBindings that are missing, and adds to the existing ones
// the rules, subjects, labels and aggregation selectors they lack unless
// their rbac.authorization.kubernetes.io/autoupdate annotation is
// "false" (upstream's reconciliation: user additions stay).
func (s *Server) ensureRBACPolicy(ctx context.Context) error {
	for _, role := range bootstrapClusterRoles() {
		if err := s.reconcileBootstrapObject(ctx, "clusterroles", role); err != nil {
			return err
		}
	}
	for _, b := range bootstrapClusterRoleBindings() {
		if err := s.reconcileBootstrapObject(ctx, "clusterrolebindings", b); err != nil {
			return err
		}
	}
	roles, bindings := bootstrapNamespacedPolicy()
	for _, r := range roles {
		if err := s.reconcileBootstrapObject(ctx, "roles", r); err != nil {
			return err
		}
	}
	for _, b := range bindings {
		if err := s.reconcileBootstrapObject(ctx, "rolebindings", b); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) reconcileBootstrapObject(ctx context.Context, resourceName string, want runtime.Object) error {
	res := s.bootstrapResource(resourceName)
	m := accessor(want)
	kv, err := s.store.Get(ctx, storageKey(res, m.GetNamespace(), m.GetName()), 0)
	if err != nil {
		return s.ensure(ctx, resourceName, want)
	}
	// Most starts find the policy as they left it: no write then (an
	// update that changes nothing would still record a field manager).
	if current, err := s.fromKV(res, kv); err == nil {
		reconciled := current.DeepCopyObject()
		reconcileBootstrap(reconciled, want)
		if equality.Semantic.DeepEqual(current, reconciled) || accessor(current).GetAnnotations()[rbacv1.AutoUpdateAnnotationKey] == "false" {
			return nil
		}
	}
	_, _, err = s.updateObject(ctx, updateRequest{res: res, namespace: m.GetNamespace(), name: m.GetName(),
		mutate: func(current runtime.Object) (runtime.Object, error) {
			if accessor(current).GetAnnotations()[rbacv1.AutoUpdateAnnotationKey] == "false" {
				return current, nil
			}
			reconcileBootstrap(current, want)
			return current, nil
		}})
	if err != nil {
		return fmt.Errorf("apiserver: reconciling %s %s: %w", resourceName, m.GetName(), err)
	}
	return nil
}

// reconcileBootstrap adds to current what want has and current lacks.
func reconcileBootstrap(current, want runtime.Object) {
	cm, wm := accessor(current), accessor(want)
	cm.SetLabels(mergeMissing(cm.GetLabels(), wm.GetLabels()))
	cm.SetAnnotations(mergeMissing(cm.GetAnnotations(), wm.GetAnnotations()))
	switch c := current.(type) {
	case *rbacv1.Role:
		c.Rules = addMissingRules(c.Rules, want.(*rbacv1.Role).Rules)
	case *rbacv1.RoleBinding:
		c.Subjects = addMissingSubjects(c.Subjects, want.(*rbacv1.RoleBinding).Subjects)
	case *rbacv1.ClusterRole:
		w := want.(*rbacv1.ClusterRole)
		c.Rules = addMissingRules(c.Rules, w.Rules)
		if w.AggregationRule != nil {
			if c.AggregationRule == nil {
				c.AggregationRule = &rbacv1.AggregationRule{}
			}
			for _, sel := range w.AggregationRule.ClusterRoleSelectors {
				if !slices.ContainsFunc(c.AggregationRule.ClusterRoleSelectors, func(have metav1.LabelSelector) bool { return equality.Semantic.DeepEqual(have, sel) }) {
					c.AggregationRule.ClusterRoleSelectors = append(c.AggregationRule.ClusterRoleSelectors, sel)
				}
			}
		}
	case *rbacv1.ClusterRoleBinding:
		c.Subjects = addMissingSubjects(c.Subjects, want.(*rbacv1.ClusterRoleBinding).Subjects)
	}
}

func addMissingRules(have, want []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	for _, rule := range want {
		if !slices.ContainsFunc(have, func(h rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(h, rule) }) {
			have = append(have, rule)
		}
	}
	return have
}

func addMissingSubjects(have, want []rbacv1.Subject) []rbacv1.Subject {
	for _, sub := range want {
		if !slices.Contains(have, sub) {
			have = append(have, sub)
		}
	}
	return have
}

func mergeMissing(have, want map[string]string) map[string]string {
	if len(want) == 0 {
		return have
	}
	if have == nil {
		have = map[string]string{}
	}
	for k, v := range want {
		if _, ok := have[k]; !ok {
			have[k] = v
		}
	}
	return have
}

// rule builds one PolicyRule.
func rule(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func urlRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func named(r rbacv1.PolicyRule, names ...string) rbacv1.PolicyRule {
	r.ResourceNames = names
	return r
}

var (
	verbsRead      = []string{"get", "list", "watch"}
	verbsWrite     = []string{"create", "update", "patch", "delete", "deletecollection"}
	verbsReadWrite = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	verbsReadPatch = []string{"get", "list", "watch", "update", "patch"}
	verbsAll       = []string{rbacv1.VerbAll}
	verbGet        = []string{"get"}
	verbCreate     = []string{"create"}

	apiCore         = []string{""}
	apiApps         = []string{"apps"}
	apiAuthn        = []string{"authentication.k8s.io"}
	apiAuthz        = []string{"authorization.k8s.io"}
	apiAutoscaling  = []string{"autoscaling"}
	apiBatch        = []string{"batch"}
	apiCertificates = []string{"certificates.k8s.io"}
	apiCoordination = []string{"coordination.k8s.io"}
	apiDiscovery    = []string{"discovery.k8s.io"}
	apiExtensions   = []string{"extensions"}
	apiNetworking   = []string{"networking.k8s.io"}
	apiPolicy       = []string{"policy"}
	apiRBAC         = []string{"rbac.authorization.k8s.io"}
	apiStorage      = []string{"storage.k8s.io"}
	apiEvents       = []string{"", "events.k8s.io"}
	apiAny          = []string{rbacv1.APIGroupAll}
	eventsWriting   = rule([]string{"create", "update", "patch"}, apiEvents, "events")
)

func aggregateLabel(to string) map[string]string {
	return map[string]string{"rbac.authorization.k8s.io/aggregate-to-" + to: "true"}
}

func aggregating(to string) *rbacv1.AggregationRule {
	return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: aggregateLabel(to)}}}
}

// bootstrapClusterRoles are upstream's default ClusterRoles that matter
// to tinykube, and system:tinykube:controllers.
func bootstrapClusterRoles() []*rbacv1.ClusterRole {
	roles := []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"}, Rules: []rbacv1.PolicyRule{
			rule(verbsAll, apiAny, rbacv1.ResourceAll), urlRule(verbsAll, rbacv1.NonResourceAll)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:discovery"}, Rules: []rbacv1.PolicyRule{
			urlRule(verbGet, "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:monitoring"}, Rules: []rbacv1.PolicyRule{
			urlRule(verbGet, "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:basic-user"}, Rules: []rbacv1.PolicyRule{
			rule(verbCreate, apiAuthz, "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			rule(verbCreate, apiAuthn, "selfsubjectreviews")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:public-info-viewer"}, Rules: []rbacv1.PolicyRule{
			urlRule(verbGet, "/livez", "/readyz", "/healthz", "/version", "/version/")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "admin"}, AggregationRule: aggregating("admin")},
		{ObjectMeta: metav1.ObjectMeta{Name: "edit", Labels: aggregateLabel("admin")}, AggregationRule: aggregating("edit")},
		{ObjectMeta: metav1.ObjectMeta{Name: "view", Labels: aggregateLabel("edit")}, AggregationRule: aggregating("view")},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-admin", Labels: aggregateLabel("admin")}, Rules: []rbacv1.PolicyRule{
			rule(verbCreate, apiAuthz, "localsubjectaccessreviews"),
			rule(verbsReadWrite, apiRBAC, "roles", "rolebindings")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-edit", Labels: aggregateLabel("edit")}, Rules: []rbacv1.PolicyRule{
			rule(verbsRead, apiCore, "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
			rule([]string{"impersonate"}, apiCore, "serviceaccounts"),
			rule(verbsWrite, apiCore, "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
			rule(verbCreate, apiCore, "pods/eviction"),
			rule(verbsWrite, apiCore, "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
				"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
			rule(verbCreate, apiCore, "serviceaccounts/token"),
			rule(verbsWrite, apiApps, "statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
				"deployments/rollback", "replicasets", "replicasets/scale"),
			rule(verbsWrite, apiAutoscaling, "horizontalpodautoscalers"),
			rule(verbsWrite, apiBatch, "jobs", "cronjobs"),
			rule(verbsWrite, apiExtensions, "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses",
				"replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"),
			rule(verbsWrite, apiPolicy, "poddisruptionbudgets"),
			rule(verbsWrite, apiNetworking, "networkpolicies", "ingresses"),
			rule(verbsWrite, apiCoordination, "leases")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregate-to-view", Labels: aggregateLabel("view")}, Rules: []rbacv1.PolicyRule{
			rule(verbsRead, apiCore, "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
				"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
			rule(verbsRead, apiCore, "limitranges", "resourcequotas", "bindings", "events", "pods/status", "resourcequotas/status",
				"namespaces/status", "replicationcontrollers/status", "pods/log"),
			rule(verbsRead, apiCore, "namespaces"),
			rule(verbsRead, apiDiscovery, "endpointslices"),
			rule(verbsRead, apiApps, "controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
				"daemonsets", "daemonsets/status", "deployments", "deployments/status", "deployments/scale",
				"replicasets", "replicasets/status", "replicasets/scale"),
			rule(verbsRead, apiAutoscaling, "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
			rule(verbsRead, apiBatch, "jobs", "jobs/status", "cronjobs", "cronjobs/status"),
			rule(verbsRead, apiExtensions, "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
				"ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status",
				"replicationcontrollers/scale", "networkpolicies"),
			rule(verbsRead, apiPolicy, "poddisruptionbudgets", "poddisruptionbudgets/status"),
			rule(verbsRead, apiNetworking, "networkpolicies", "ingresses", "ingresses/status"),
			rule(verbsRead, apiCoordination, "leases")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:node"}, Rules: authz.NodeRules()},
		// Full use of the kubelet API (logs, exec, attach, port-forward,
		// health, stats): what the API server's kubelet client needs.
		{ObjectMeta: metav1.ObjectMeta{Name: "system:kubelet-api-admin"}, Rules: []rbacv1.PolicyRule{
			rule(verbsRead, apiCore, "nodes"),
			rule([]string{"proxy"}, apiCore, "nodes"),
			rule(verbsAll, apiCore, "nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"),
			rule(verbsAll, apiCore, "nodes/pods", "nodes/healthz", "nodes/configz")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:node-proxier"}, Rules: []rbacv1.PolicyRule{
			rule([]string{"list", "watch"}, apiCore, "services", "endpoints"),
			rule(verbsRead, apiCore, "nodes"),
			eventsWriting,
			rule([]string{"list", "watch"}, apiDiscovery, "endpointslices")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:node-bootstrapper"}, Rules: []rbacv1.PolicyRule{
			rule([]string{"create", "get", "list", "watch"}, apiCertificates, "certificatesigningrequests")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"}, Rules: []rbacv1.PolicyRule{
			rule(verbCreate, apiCertificates, "certificatesigningrequests/nodeclient")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"}, Rules: []rbacv1.PolicyRule{
			rule(verbCreate, apiCertificates, "certificatesigningrequests/selfnodeclient")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:auth-delegator"}, Rules: []rbacv1.PolicyRule{
			rule(verbCreate, apiAuthn, "tokenreviews"),
			rule(verbCreate, apiAuthz, "subjectaccessreviews")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:service-account-issuer-discovery"}, Rules: []rbacv1.PolicyRule{
			urlRule(verbGet, "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks", "/openid/v1/jwks/")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:kube-controller-manager"}, Rules: []rbacv1.PolicyRule{
			eventsWriting,
			rule(verbCreate, apiCoordination, "leases"),
			named(rule([]string{"get", "update"}, apiCoordination, "leases"), "kube-controller-manager"),
			rule(verbCreate, apiCore, "secrets", "serviceaccounts"),
			rule([]string{"delete"}, apiCore, "secrets"),
			rule(verbGet, apiCore, "namespaces", "secrets", "serviceaccounts", "configmaps"),
			rule([]string{"update"}, apiCore, "secrets", "serviceaccounts"),
			rule(verbCreate, apiAuthn, "tokenreviews"),
			rule(verbCreate, apiAuthz, "subjectaccessreviews"),
			rule([]string{"list", "watch"}, apiAny, rbacv1.ResourceAll),
			rule(verbCreate, apiCore, "serviceaccounts/token")}},
		tinykubeControllersRole(),
		{ObjectMeta: metav1.ObjectMeta{Name: "system:kube-scheduler"}, Rules: []rbacv1.PolicyRule{
			eventsWriting,
			rule(verbCreate, apiCoordination, "leases"),
			named(rule([]string{"get", "update"}, apiCoordination, "leases"), "kube-scheduler"),
			rule(verbsRead, apiCore, "nodes"),
			rule([]string{"get", "list", "watch", "delete"}, apiCore, "pods"),
			rule(verbCreate, apiCore, "pods/binding", "bindings"),
			rule([]string{"patch", "update"}, apiCore, "pods/status"),
			rule(verbsRead, apiCore, "services", "replicationcontrollers"),
			rule(verbsRead, []string{"apps", "extensions"}, "replicasets"),
			rule(verbsRead, apiApps, "statefulsets"),
			rule(verbsRead, apiPolicy, "poddisruptionbudgets"),
			rule(verbsRead, apiCore, "persistentvolumeclaims", "persistentvolumes"),
			rule(verbCreate, apiAuthn, "tokenreviews"),
			rule(verbCreate, apiAuthz, "subjectaccessreviews"),
			rule(verbsRead, apiStorage, "csinodes"),
			rule(verbsRead, apiCore, "namespaces"),
			rule(verbsRead, apiStorage, "csidrivers", "csistoragecapacities")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system:volume-scheduler"}, Rules: []rbacv1.PolicyRule{
			rule(verbsReadPatch, apiCore, "persistentvolumes"),
			rule(verbsRead, apiStorage, "storageclasses"),
			rule(verbsReadPatch, apiCore, "persistentvolumeclaims")}},
	}
	for _, signer := range []string{"legacy-unknown", "kubelet-serving", "kube-apiserver-client", "kube-apiserver-client-kubelet"} {
		roles = append(roles, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:certificates.k8s.io:" + signer + "-approver"},
			Rules: []rbacv1.PolicyRule{named(rule([]string{"approve"}, apiCertificates, "signers"), "kubernetes.io/"+signer)}})
	}
	for _, r := range roles {
		markBootstrap(&r.ObjectMeta)
	}
	return roles
}

// tinykubeControllersRole is what every controller tinykube runs may do.
// Upstream runs each controller with its own service account and role;
// tinykube runs them all as system:kube-controller-manager, which gets
// the union of those roles: the garbage collector's and namespace
// controller's reading, updating and deleting of everything, and the
// creates of the controllers that make objects.
func tinykubeControllersRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:tinykube:controllers"}, Rules: []rbacv1.PolicyRule{
		rule([]string{"get", "list", "watch", "update", "patch", "delete", "deletecollection"}, apiAny, rbacv1.ResourceAll),
		rule(verbCreate, apiCore, "pods", "pods/eviction", "pods/binding", "endpoints", "events", "serviceaccounts", "serviceaccounts/token",
			"secrets", "configmaps", "services", "persistentvolumes", "persistentvolumeclaims"),
		rule(verbCreate, apiApps, "replicasets", "controllerrevisions", "pods"),
		rule(verbCreate, apiDiscovery, "endpointslices"),
		rule(verbCreate, apiBatch, "jobs"),
		rule(verbCreate, []string{"events.k8s.io"}, "events"),
		rule(verbCreate, apiCoordination, "leases"),
		rule(verbCreate, apiAuthn, "tokenreviews"),
		rule(verbCreate, apiAuthz, "subjectaccessreviews"),
		rule([]string{"approve", "sign"}, apiCertificates, "signers"),
		// The ClusterRole aggregation controller writes rules it does not
		// hold, as upstream's clusterrole-aggregation-controller may.
		rule([]string{"escalate"}, apiRBAC, "clusterroles"),
	}}
}

func clusterBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}
	markBootstrap(&b.ObjectMeta)
	return b
}

func groupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// bootstrapClusterRoleBindings bind the default roles as upstream (and,
// for node joining, as kubeadm) does, plus tinykube's own two.
func bootstrapClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	return []*rbacv1.ClusterRoleBinding{
		clusterBinding("cluster-admin", "cluster-admin", groupSubject(privilegedGroup)),
		clusterBinding("system:discovery", "system:discovery", groupSubject(groupAuthenticated)),
		clusterBinding("system:basic-user", "system:basic-user", groupSubject(groupAuthenticated)),
		clusterBinding("system:public-info-viewer", "system:public-info-viewer", groupSubject(groupAuthenticated), groupSubject(groupUnauthenticated)),
		clusterBinding("system:monitoring", "system:monitoring", groupSubject(groupMonitoring)),
		clusterBinding("system:node-proxier", "system:node-proxier", userSubject(userKubeProxy)),
		// Every tinykube node runs the service proxy and cluster DNS with
		// the node's own credentials (there is no kube-proxy or CoreDNS
		// identity on a node), so nodes get the proxy's role.
		clusterBinding("system:tinykube:node-proxier", "system:node-proxier", groupSubject(authz.NodesGroup)),
		clusterBinding("system:kube-controller-manager", "system:kube-controller-manager", userSubject(userControllers)),
		clusterBinding("system:tinykube:controllers", "system:tinykube:controllers", userSubject(userControllers)),
		clusterBinding("system:kube-scheduler", "system:kube-scheduler", userSubject(userScheduler)),
		// The API server calls kubelets (logs, exec, attach, port-forward)
		// as kube-apiserver-kubelet-client, which kubelets authorize
		// through SubjectAccessReviews.
		clusterBinding("system:tinykube:kube-apiserver-kubelet-client", "system:kubelet-api-admin", userSubject(pki.KubeletClientUser)),
		clusterBinding("system:volume-scheduler", "system:volume-scheduler", userSubject(userScheduler)),
		// Bound to nobody: the Node authorizer decides for nodes.
		clusterBinding("system:node", "system:node"),
		clusterBinding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery", groupSubject(groupServiceAccounts)),
		// Node joining with bootstrap tokens, as kubeadm binds it.
		clusterBinding("tinykube:kubelet-bootstrap", "system:node-bootstrapper", groupSubject(groupBootstrappers)),
		clusterBinding("tinykube:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", groupSubject(groupBootstrappers)),
		clusterBinding("tinykube:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", groupSubject(authz.NodesGroup)),
	}
}

// bootstrapNamespacedPolicy are upstream's Roles and RoleBindings in
// kube-system: reading the extension-apiserver-authentication ConfigMap
// (charts of aggregated API servers bind it) and the scheduler's and
// controller manager's leader election locks.
func bootstrapNamespacedPolicy() ([]*rbacv1.Role, []*rbacv1.RoleBinding) {
	ns := metav1.NamespaceSystem
	lock := func(name string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{
			rule([]string{"watch"}, apiCore, "configmaps"),
			named(rule([]string{"get", "update"}, apiCore, "configmaps"), name),
		}
	}
	roles := []*rbacv1.Role{
		{ObjectMeta: metav1.ObjectMeta{Name: "extension-apiserver-authentication-reader", Namespace: ns}, Rules: []rbacv1.PolicyRule{
			named(rule(verbsRead, apiCore, "configmaps"), "extension-apiserver-authentication")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system::leader-locking-kube-controller-manager", Namespace: ns}, Rules: lock("kube-controller-manager")},
		{ObjectMeta: metav1.ObjectMeta{Name: "system::leader-locking-kube-scheduler", Namespace: ns}, Rules: lock("kube-scheduler")},
	}
	binding := func(name, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role}, Subjects: subjects}
	}
	sa := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
	}
	bindings := []*rbacv1.RoleBinding{
		binding("system::extension-apiserver-authentication-reader", "extension-apiserver-authentication-reader",
			userSubject(userControllers), userSubject(userScheduler)),
		binding("system::leader-locking-kube-controller-manager", "system::leader-locking-kube-controller-manager", sa("kube-controller-manager")),
		binding("system::leader-locking-kube-scheduler", "system::leader-locking-kube-scheduler", userSubject(userScheduler), sa("kube-scheduler")),
	}
	for _, r := range roles {
		markBootstrap(&r.ObjectMeta)
	}
	for _, b := range bindings {
		markBootstrap(&b.ObjectMeta)
	}
	return roles, bindings
}

func markBootstrap(m *metav1.ObjectMeta) {
	m.Labels = mergeMissing(m.Labels, bootstrapPolicyLabel)
	m.Annotations = mergeMissing(m.Annotations, map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"})
}
