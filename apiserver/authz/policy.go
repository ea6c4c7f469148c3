package authz

import (
	"fmt"
	"slices"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// PolicySet holds the RBAC objects RBAC evaluates: Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings. It is safe for
// concurrent use; the objects it holds are never modified, callers must
// not modify them either.
type PolicySet struct {
	mu                  sync.RWMutex
	clusterRoles        map[string]*rbacv1.ClusterRole
	roles               map[nsName]*rbacv1.Role
	clusterRoleBindings map[string]*rbacv1.ClusterRoleBinding
	roleBindings        map[string]map[string]*rbacv1.RoleBinding // namespace -> name

	// Derived on every change, so that decisions only read: each
	// ClusterRole's rules with its aggregated roles' rules, and the
	// bindings in the order they are visited.
	effective           map[string][]rbacv1.PolicyRule
	clusterBindingOrder []string
	roleBindingOrder    map[string][]string // namespace -> names
}

type nsName struct{ namespace, name string }

// NewPolicySet returns a set holding objs (Roles, ClusterRoles,
// RoleBindings, ClusterRoleBindings; anything else is ignored).
func NewPolicySet(objs ...runtime.Object) *PolicySet {
	p := &PolicySet{}
	p.Replace(objs)
	return p
}

// Replace drops everything and holds objs instead.
func (p *PolicySet) Replace(objs []runtime.Object) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clusterRoles = map[string]*rbacv1.ClusterRole{}
	p.roles = map[nsName]*rbacv1.Role{}
	p.clusterRoleBindings = map[string]*rbacv1.ClusterRoleBinding{}
	p.roleBindings = map[string]map[string]*rbacv1.RoleBinding{}
	for _, o := range objs {
		p.setLocked(o)
	}
	p.deriveLocked()
}

// Set adds or replaces obj.
func (p *PolicySet) Set(obj runtime.Object) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(obj)
	p.deriveLocked()
}

// Delete removes obj (only its kind, namespace and name matter).
func (p *PolicySet) Delete(obj runtime.Object) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch o := obj.(type) {
	case *rbacv1.ClusterRole:
		delete(p.clusterRoles, o.Name)
	case *rbacv1.Role:
		delete(p.roles, nsName{o.Namespace, o.Name})
	case *rbacv1.ClusterRoleBinding:
		delete(p.clusterRoleBindings, o.Name)
	case *rbacv1.RoleBinding:
		delete(p.roleBindings[o.Namespace], o.Name)
	}
	p.deriveLocked()
}

// deriveLocked recomputes what decisions read besides the objects.
func (p *PolicySet) deriveLocked() {
	p.effective = make(map[string][]rbacv1.PolicyRule, len(p.clusterRoles))
	for name := range p.clusterRoles {
		p.effective[name] = p.aggregatedRulesLocked(name)
	}
	p.clusterBindingOrder = sortedKeys(p.clusterRoleBindings)
	p.roleBindingOrder = make(map[string][]string, len(p.roleBindings))
	for ns, bindings := range p.roleBindings {
		p.roleBindingOrder[ns] = sortedKeys(bindings)
	}
}

func (p *PolicySet) setLocked(obj runtime.Object) {
	switch o := obj.(type) {
	case *rbacv1.ClusterRole:
		p.clusterRoles[o.Name] = o
	case *rbacv1.Role:
		p.roles[nsName{o.Namespace, o.Name}] = o
	case *rbacv1.ClusterRoleBinding:
		p.clusterRoleBindings[o.Name] = o
	case *rbacv1.RoleBinding:
		if p.roleBindings[o.Namespace] == nil {
			p.roleBindings[o.Namespace] = map[string]*rbacv1.RoleBinding{}
		}
		p.roleBindings[o.Namespace][o.Name] = o
	}
}

// visitRules calls visit with the rules every binding that applies to
// user grants in namespace ("" for cluster-scoped requests): first the
// ClusterRoleBindings, then the namespace's RoleBindings, as upstream
// visits them. It stops when visit returns false. A binding whose role
// does not exist contributes an error instead of rules.
func (p *PolicySet) visitRules(user authn.User, namespace string, visit func(source bindingSource, rules []rbacv1.PolicyRule, err error) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, name := range p.clusterBindingOrder {
		b := p.clusterRoleBindings[name]
		subject, ok := appliesTo(user, b.Subjects, "")
		if !ok {
			continue
		}
		rules, err := p.roleRulesLocked(b.RoleRef, "")
		if !visit(bindingSource{"ClusterRoleBinding", b.Name, b.RoleRef, subject, ""}, rules, err) {
			return
		}
	}
	if namespace == "" {
		return
	}
	bindings := p.roleBindings[namespace]
	for _, name := range p.roleBindingOrder[namespace] {
		b := bindings[name]
		subject, ok := appliesTo(user, b.Subjects, namespace)
		if !ok {
			continue
		}
		rules, err := p.roleRulesLocked(b.RoleRef, namespace)
		if !visit(bindingSource{"RoleBinding", b.Name + "/" + namespace, b.RoleRef, subject, namespace}, rules, err) {
			return
		}
	}
}

// roleRulesLocked resolves a binding's roleRef; namespace is the
// binding's ("" for a ClusterRoleBinding).
func (p *PolicySet) roleRulesLocked(ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "ClusterRole":
		if _, ok := p.clusterRoles[ref.Name]; !ok {
			return nil, fmt.Errorf("clusterrole.rbac.authorization.k8s.io %q not found", ref.Name)
		}
		return p.effective[ref.Name], nil
	case "Role":
		r, ok := p.roles[nsName{namespace, ref.Name}]
		if namespace == "" || !ok {
			return nil, fmt.Errorf("role.rbac.authorization.k8s.io %q not found", ref.Name)
		}
		return r.Rules, nil
	}
	return nil, fmt.Errorf("unsupported role reference kind: %q", ref.Kind)
}

// aggregatedRulesLocked is a ClusterRole's rules together with, when it
// has an aggregationRule, the rules of every ClusterRole its selectors
// match (recursively: admin aggregates edit, which aggregates view).
// Upstream's aggregation controller writes the same union into the
// role; computing it here makes it take effect at once.
func (p *PolicySet) aggregatedRulesLocked(name string) []rbacv1.PolicyRule {
	if p.clusterRoles[name].AggregationRule == nil {
		return p.clusterRoles[name].Rules
	}
	var rules []rbacv1.PolicyRule
	seen := map[string]bool{}
	var collect func(name string)
	collect = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		role, ok := p.clusterRoles[name]
		if !ok {
			return
		}
		for _, r := range role.Rules {
			if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return equalRules(have, r) }) {
				rules = append(rules, r)
			}
		}
		if role.AggregationRule == nil {
			return
		}
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			selector, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				continue
			}
			for _, other := range sortedKeys(p.clusterRoles) {
				if other != name && selector.Matches(labels.Set(p.clusterRoles[other].Labels)) {
					collect(other)
				}
			}
		}
	}
	collect(name)
	return rules
}

func equalRules(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) &&
		slices.Equal(a.Resources, b.Resources) && slices.Equal(a.ResourceNames, b.ResourceNames) &&
		slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
