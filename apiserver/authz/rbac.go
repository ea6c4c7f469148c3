package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// serviceAccountUserPrefix starts the user name of every service account
// token: system:serviceaccount:<namespace>:<name>.
const serviceAccountUserPrefix = "system:serviceaccount:"

// RBAC authorizes with the roles and bindings of a PolicySet, as
// upstream's RBAC authorizer: a request is allowed when a binding that
// names the user, one of its groups or its service account refers to a
// role with a rule that grants it. RBAC never denies; it has no opinion.
type RBAC struct {
	Policy *PolicySet
}

// Authorize implements Authorizer.
func (r RBAC) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	var allowedBy *bindingSource
	var errs []error
	r.Policy.visitRules(a.User, a.Namespace, func(source bindingSource, rules []rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if RulesAllow(a, rules...) {
			allowedBy = &source
			return false
		}
		return true
	})
	if allowedBy != nil {
		return Allow, "RBAC: allowed by " + allowedBy.String(), nil
	}
	if len(errs) > 0 {
		return NoOpinion, "RBAC: " + joinErrors(errs), nil
	}
	return NoOpinion, "", nil
}

// RulesFor returns every rule granted to user in namespace (the
// ClusterRoleBindings' rules included), for SelfSubjectRulesReview, and
// the reasons some bindings could not be resolved.
func (r RBAC) RulesFor(user authn.User, namespace string) ([]rbacv1.PolicyRule, error) {
	var all []rbacv1.PolicyRule
	var errs []error
	r.Policy.visitRules(user, namespace, func(_ bindingSource, rules []rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
		}
		all = append(all, rules...)
		return true
	})
	return all, errors.Join(errs...)
}

// appliesTo returns the first subject that names user; namespace is the
// RoleBinding's, the default namespace of its ServiceAccount subjects.
func appliesTo(user authn.User, subjects []rbacv1.Subject, namespace string) (rbacv1.Subject, bool) {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if user.Name == s.Name {
				return s, true
			}
		case rbacv1.GroupKind:
			if slices.Contains(user.Groups, s.Name) {
				return s, true
			}
		case rbacv1.ServiceAccountKind:
			ns := namespace
			if s.Namespace != "" {
				ns = s.Namespace
			}
			if ns != "" && user.Name == serviceAccountUserPrefix+ns+":"+s.Name {
				return s, true
			}
		}
	}
	return rbacv1.Subject{}, false
}

// bindingSource names the binding that granted a request, for the
// reason of an allowed access review.
type bindingSource struct {
	kind      string // ClusterRoleBinding or RoleBinding
	name      string // RoleBindings: name/namespace
	roleRef   rbacv1.RoleRef
	subject   rbacv1.Subject
	namespace string
}

// String words the source as upstream does, e.g.
// `ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"`.
func (b bindingSource) String() string {
	subject := fmt.Sprintf("%s %q", b.subject.Kind, b.subject.Name)
	if b.subject.Kind == rbacv1.ServiceAccountKind {
		ns := b.subject.Namespace
		if ns == "" {
			ns = b.namespace
		}
		subject = fmt.Sprintf("%s %q", b.subject.Kind, b.subject.Name+"/"+ns)
	}
	return fmt.Sprintf("%s %q of %s %q to %s", b.kind, b.name, b.roleRef.Kind, b.roleRef.Name, subject)
}

// joinErrors words several errors as upstream's aggregate does: one
// alone, or "[a, b]".
func joinErrors(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return "[" + strings.Join(msgs, ", ") + "]"
}
