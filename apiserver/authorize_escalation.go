package apiserver

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/rbac"
)

// fullAuthority is what setting an aggregationRule may gather: anything.
var fullAuthority = []rbacv1.PolicyRule{
	{Verbs: []string{rbacv1.VerbAll}, APIGroups: []string{rbacv1.APIGroupAll}, Resources: []string{rbacv1.ResourceAll}},
	{Verbs: []string{rbacv1.VerbAll}, NonResourceURLs: []string{rbacv1.NonResourceAll}},
}

// preventEscalation is upstream's RBAC escalation prevention for a write
// of a role, cluster role, role binding or cluster role binding: a user
// may write a role only with rules it holds itself (or with the escalate
// verb on it), and bind a role only when it holds the role's rules (or
// the bind verb on it). Members of system:masters, and writes without a
// user (the server's own bootstrap), are not checked.
func (s *Server) preventEscalation(ctx context.Context, res *registry.Resource, obj, old runtime.Object) error {
	a, ok := attributesFrom(ctx)
	if !ok || slices.Contains(a.User.Groups, privilegedGroup) || onlyGCFieldsChange(obj, old) {
		return nil
	}
	m := accessor(obj)
	namespace, name := m.GetNamespace(), m.GetName()
	// The verb that lets a user skip the check: escalate on the role
	// written, bind on the role referenced.
	verbAttrs := authz.Attributes{User: a.User, ResourceRequest: true, APIGroup: rbacv1.GroupName, APIVersion: "v1",
		Resource: res.GVR.Resource, Namespace: namespace, Name: name, Verb: "escalate"}
	rules := rbac.Rules(obj)
	switch o := obj.(type) {
	case *rbacv1.Role:
	case *rbacv1.ClusterRole:
		if oldRole, _ := old.(*rbacv1.ClusterRole); o.AggregationRule != nil || (oldRole != nil && oldRole.AggregationRule != nil) {
			rules = fullAuthority
		}
	case *rbacv1.RoleBinding:
		verbAttrs = bindAttributes(a.User, o.RoleRef, namespace)
	case *rbacv1.ClusterRoleBinding:
		verbAttrs = bindAttributes(a.User, o.RoleRef, "")
	default:
		return nil
	}
	if d, _, err := s.authz.authorize(ctx, verbAttrs); d == authz.Allow && err == nil {
		return nil
	}
	// The policy must know roles written a moment ago (a manifest with a
	// Role and its RoleBinding) and the user's own bindings.
	z := s.authz
	if err := z.cache.start(ctx); err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, authorizeTimeout)
	defer cancel()
	z.cache.catchUp(wait)
	switch o := obj.(type) {
	case *rbacv1.RoleBinding:
		r, err := z.cache.policy.RoleRefRules(o.RoleRef, namespace)
		if err != nil {
			return roleNotFound(o.RoleRef)
		}
		rules = r
	case *rbacv1.ClusterRoleBinding:
		r, err := z.cache.policy.RoleRefRules(o.RoleRef, "")
		if err != nil {
			return roleNotFound(o.RoleRef)
		}
		rules = r
	}
	owner, resolveErr := z.rbac.RulesFor(a.User, namespace)
	covered, missing := authz.Covers(owner, rules)
	if covered {
		return nil
	}
	lines := make([]string, len(missing))
	for i, r := range missing {
		lines[i] = authz.CompactString(r)
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s", a.User.Name, a.User.Groups, strings.Join(lines, "\n"))
	if resolveErr != nil {
		msg += fmt.Sprintf("; resolution errors: [%v]", resolveErr)
	}
	return apierrors.NewForbidden(res.GroupResource(), name, fmt.Errorf("%s", msg))
}

// onlyGCFieldsChange reports whether an update changes nothing but the
// owner references and finalizers, which the garbage collector and the
// namespace controller change on roles they may not have written, as
// upstream exempts them.
func onlyGCFieldsChange(obj, old runtime.Object) bool {
	if old == nil {
		return false
	}
	a, b := obj.DeepCopyObject(), old.DeepCopyObject()
	for _, o := range []runtime.Object{a, b} {
		m := accessor(o)
		m.SetOwnerReferences(nil)
		m.SetFinalizers(nil)
		m.SetManagedFields(nil)
		m.SetResourceVersion("")
	}
	return equality.Semantic.DeepEqual(a, b)
}

func bindAttributes(user authn.User, ref rbacv1.RoleRef, namespace string) authz.Attributes {
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	return authz.Attributes{User: user, ResourceRequest: true, Verb: "bind", APIGroup: rbacv1.GroupName, APIVersion: "v1",
		Resource: resource, Namespace: namespace, Name: ref.Name}
}

// roleNotFound is the 404 upstream answers a binding to a role that
// does not exist with (when the binder may not bind it regardless).
func roleNotFound(ref rbacv1.RoleRef) error {
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	return apierrors.NewNotFound(rbacV1.WithResource(resource).GroupResource(), ref.Name)
}
