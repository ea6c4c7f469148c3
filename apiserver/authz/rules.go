package authz

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// RuleAllows reports whether rule grants the request, with upstream's
// matching: "*" matches any verb, group, resource or URL; "*/status"
// matches the status subresource of any resource; a rule with
// resourceNames grants only requests for those names; a URL rule ending
// in "*" matches every path with that prefix.
func RuleAllows(a Attributes, rule rbacv1.PolicyRule) bool {
	if !matches(rule.Verbs, a.Verb) {
		return false
	}
	if !a.ResourceRequest {
		return urlMatches(rule.NonResourceURLs, a.Path)
	}
	if !matches(rule.APIGroups, a.APIGroup) || !resourceMatches(rule.Resources, a.Resource, a.Subresource) {
		return false
	}
	return len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, a.Name)
}

// RulesAllow reports whether any of rules grants the request.
func RulesAllow(a Attributes, rules ...rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if RuleAllows(a, r) {
			return true
		}
	}
	return false
}

func matches(values []string, v string) bool {
	return slices.Contains(values, rbacv1.VerbAll) || slices.Contains(values, v)
}

func resourceMatches(ruleResources []string, resource, subresource string) bool {
	combined := resource
	if subresource != "" {
		combined += "/" + subresource
	}
	for _, r := range ruleResources {
		switch {
		case r == rbacv1.ResourceAll, r == combined:
			return true
		case subresource != "" && r == "*/"+subresource:
			return true
		}
	}
	return false
}

func urlMatches(ruleURLs []string, path string) bool {
	for _, u := range ruleURLs {
		switch {
		case u == rbacv1.NonResourceAll, u == path:
			return true
		case strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")):
			return true
		}
	}
	return false
}
