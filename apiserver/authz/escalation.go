package authz

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Covers reports whether owner grants everything requested does, as
// upstream's RBAC escalation check decides it, and returns what it does
// not: requested broken down into one verb on one resource (or URL),
// compacted back by resource.
func Covers(owner, requested []rbacv1.PolicyRule) (bool, []rbacv1.PolicyRule) {
	var missing []rbacv1.PolicyRule
	for _, want := range requested {
		for _, atom := range breakdown(want) {
			if !slices.ContainsFunc(owner, func(o rbacv1.PolicyRule) bool { return ruleCovers(o, atom) }) {
				missing = append(missing, atom)
			}
		}
	}
	return len(missing) == 0, compact(missing)
}

// breakdown splits a rule into rules of one group, resource, name and
// verb, or one URL and verb.
func breakdown(r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var atoms []rbacv1.PolicyRule
	for _, group := range r.APIGroups {
		for _, resource := range r.Resources {
			for _, verb := range r.Verbs {
				if len(r.ResourceNames) == 0 {
					atoms = append(atoms, rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: []string{verb}})
					continue
				}
				for _, name := range r.ResourceNames {
					atoms = append(atoms, rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, ResourceNames: []string{name}, Verbs: []string{verb}})
				}
			}
		}
	}
	for _, url := range r.NonResourceURLs {
		for _, verb := range r.Verbs {
			atoms = append(atoms, rbacv1.PolicyRule{NonResourceURLs: []string{url}, Verbs: []string{verb}})
		}
	}
	return atoms
}

func hasAll(set, want []string) bool {
	for _, w := range want {
		if !slices.Contains(set, w) {
			return false
		}
	}
	return true
}

// ruleCovers reports whether owner grants all of atom.
func ruleCovers(owner, atom rbacv1.PolicyRule) bool {
	verbs := slices.Contains(owner.Verbs, rbacv1.VerbAll) || hasAll(owner.Verbs, atom.Verbs)
	groups := slices.Contains(owner.APIGroups, rbacv1.APIGroupAll) || hasAll(owner.APIGroups, atom.APIGroups)
	names := len(owner.ResourceNames) == 0 || (len(atom.ResourceNames) > 0 && hasAll(owner.ResourceNames, atom.ResourceNames))
	return verbs && groups && names && resourcesCover(owner.Resources, atom.Resources) && urlsCover(owner.NonResourceURLs, atom.NonResourceURLs)
}

func resourcesCover(owner, want []string) bool {
	if slices.Contains(owner, rbacv1.ResourceAll) {
		return true
	}
	for _, w := range want {
		_, sub, hasSub := strings.Cut(w, "/")
		if !slices.Contains(owner, w) && !(hasSub && slices.Contains(owner, "*/"+sub)) {
			return false
		}
	}
	return true
}

func urlsCover(owner, want []string) bool {
	for _, w := range want {
		if !urlMatches(owner, w) {
			return false
		}
	}
	return true
}

// compact merges atoms that differ only in their verb, as upstream's
// CompactRules does.
func compact(atoms []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, a := range atoms {
		i := slices.IndexFunc(out, func(o rbacv1.PolicyRule) bool {
			return len(a.NonResourceURLs) == 0 && slices.Equal(o.APIGroups, a.APIGroups) && slices.Equal(o.Resources, a.Resources) &&
				slices.Equal(o.ResourceNames, a.ResourceNames) && len(o.NonResourceURLs) == 0
		})
		if i < 0 {
			out = append(out, a)
			continue
		}
		if !slices.Contains(out[i].Verbs, a.Verbs[0]) {
			out[i].Verbs = append(slices.Clone(out[i].Verbs), a.Verbs[0])
		}
	}
	return out
}

// CompactString words a rule as upstream's escalation errors list it:
// {APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}.
func CompactString(r rbacv1.PolicyRule) string {
	var parts []string
	for _, f := range []struct {
		name   string
		values []string
	}{{"APIGroups", r.APIGroups}, {"Resources", r.Resources}, {"NonResourceURLs", r.NonResourceURLs}, {"ResourceNames", r.ResourceNames}, {"Verbs", r.Verbs}} {
		if len(f.values) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%q", f.name, f.values))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// RoleRefRules returns the rules a binding in namespace ("" for a
// ClusterRoleBinding) to ref grants.
func (p *PolicySet) RoleRefRules(ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.roleRulesLocked(ref, namespace)
}
