package authz

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestCovers(t *testing.T) {
	rule := func(verbs, groups, resources, names []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
	}
	s := func(v ...string) []string { return v }
	tests := []struct {
		name        string
		owner, want []rbacv1.PolicyRule
		covered     bool
		missing     string
	}{
		{"the same rule", []rbacv1.PolicyRule{rule(s("get"), s(""), s("pods"), nil)}, []rbacv1.PolicyRule{rule(s("get"), s(""), s("pods"), nil)}, true, ""},
		{"split across owner rules", []rbacv1.PolicyRule{rule(s("get"), s(""), s("pods"), nil), rule(s("list"), s(""), s("pods"), nil)},
			[]rbacv1.PolicyRule{rule(s("get", "list"), s(""), s("pods"), nil)}, true, ""},
		{"wildcards cover", []rbacv1.PolicyRule{rule(s("*"), s("*"), s("*"), nil)}, []rbacv1.PolicyRule{rule(s("delete"), s("apps"), s("deployments/scale"), nil)}, true, ""},
		{"*/status covers any status", []rbacv1.PolicyRule{rule(s("update"), s(""), s("*/status"), nil)}, []rbacv1.PolicyRule{rule(s("update"), s(""), s("pods/status"), nil)}, true, ""},
		{"named owner rule does not cover all names", []rbacv1.PolicyRule{rule(s("get"), s(""), s("configmaps"), s("a"))},
			[]rbacv1.PolicyRule{rule(s("get"), s(""), s("configmaps"), nil)}, false, `{APIGroups:[""], Resources:["configmaps"], Verbs:["get"]}`},
		{"named owner rule covers its name", []rbacv1.PolicyRule{rule(s("get"), s(""), s("configmaps"), s("a"))},
			[]rbacv1.PolicyRule{rule(s("get"), s(""), s("configmaps"), s("a"))}, true, ""},
		{"URL prefix", []rbacv1.PolicyRule{{Verbs: s("get"), NonResourceURLs: s("/apis/*")}}, []rbacv1.PolicyRule{{Verbs: s("get"), NonResourceURLs: s("/apis/apps")}}, true, ""},
		{"missing URL", nil, []rbacv1.PolicyRule{{Verbs: s("get"), NonResourceURLs: s("/metrics")}}, false, `{NonResourceURLs:["/metrics"], Verbs:["get"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covered, missing := Covers(tt.owner, tt.want)
			got := ""
			if len(missing) > 0 {
				got = CompactString(missing[0])
			}
			if covered != tt.covered || got != tt.missing {
				t.Fatalf("Covers = %v, %s; want %v, %s", covered, got, tt.covered, tt.missing)
			}
		})
	}
}
