package rbac

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
)

var rbacV1 = rbacv1.SchemeGroupVersion

// Group serves rbac.authorization.k8s.io/v1.
type Group struct{}

// Resources are the roles and bindings the RBAC authorizer evaluates;
// the generic server guards writing them against escalation.
func (Group) Resources(registry.Config) []*registry.Resource {
	return []*registry.Resource{
		{GVR: rbacV1.WithResource("clusterrolebindings"), Kind: "ClusterRoleBinding", Singular: "clusterrolebinding",
			NameValidation: rbacName, Validate: validateRoleBinding, Table: roleBindingTable()},
		{GVR: rbacV1.WithResource("clusterroles"), Kind: "ClusterRole", Singular: "clusterrole",
			NameValidation: rbacName, Validate: validateRole, Table: registry.DefaultTable},
		{GVR: rbacV1.WithResource("rolebindings"), Kind: "RoleBinding", Singular: "rolebinding", Namespaced: true,
			NameValidation: rbacName, Validate: validateRoleBinding, Table: roleBindingTable()},
		{GVR: rbacV1.WithResource("roles"), Kind: "Role", Singular: "role", Namespaced: true,
			NameValidation: rbacName, Validate: validateRole, Table: registry.DefaultTable},
	}
}

// rbacName is upstream's ValidateRBACName: any name that is a valid path
// segment (so "system:controller:x" is fine).
func rbacName(n string, _ bool) []string {
	var errs []string
	for _, illegal := range []string{".", ".."} {
		if n == illegal {
			errs = append(errs, "may not be '"+illegal+"'")
		}
	}
	for _, illegal := range []string{"/", "%"} {
		if strings.Contains(n, illegal) {
			errs = append(errs, "may not contain '"+illegal+"'")
		}
	}
	return errs
}

// Rules are the rules of a Role or ClusterRole.
func Rules(obj runtime.Object) []rbacv1.PolicyRule {
	switch o := obj.(type) {
	case *rbacv1.Role:
		return o.Rules
	case *rbacv1.ClusterRole:
		return o.Rules
	}
	return nil
}

func validateRole(obj, _ runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, r := range Rules(obj) {
		p := field.NewPath("rules").Index(i)
		if len(r.Verbs) == 0 {
			errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 {
			if _, namespaced := obj.(*rbacv1.Role); namespaced {
				errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			continue
		}
		if len(r.APIGroups) == 0 {
			errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.Resources) == 0 {
			errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}

func validateRoleBinding(obj, old runtime.Object) field.ErrorList {
	var ref rbacv1.RoleRef
	var subjects []rbacv1.Subject
	var oldRef *rbacv1.RoleRef
	switch o := obj.(type) {
	case *rbacv1.RoleBinding:
		ref, subjects = o.RoleRef, o.Subjects
		if old != nil {
			oldRef = &old.(*rbacv1.RoleBinding).RoleRef
		}
	case *rbacv1.ClusterRoleBinding:
		ref, subjects = o.RoleRef, o.Subjects
		if old != nil {
			oldRef = &old.(*rbacv1.ClusterRoleBinding).RoleRef
		}
	}
	var errs field.ErrorList
	p := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(p.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch ref.Kind {
	case "ClusterRole":
	case "Role":
		if _, cluster := obj.(*rbacv1.ClusterRoleBinding); cluster {
			errs = append(errs, field.NotSupported(p.Child("kind"), ref.Kind, []string{"ClusterRole"}))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("kind"), ref.Kind, []string{"Role", "ClusterRole"}))
	}
	if oldRef != nil && *oldRef != ref {
		errs = append(errs, field.Invalid(p, ref, "cannot change roleRef"))
	}
	for i, s := range subjects {
		sp := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind:
		default:
			errs = append(errs, field.NotSupported(sp.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
		}
	}
	return errs
}

func roleBindingTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Role", "string", 0, "Role of the binding"), registry.AgeColumn,
			registry.Column("Users", "string", 1, "Users in the binding"),
			registry.Column("Groups", "string", 1, "Groups in the binding"),
			registry.Column("ServiceAccounts", "string", 1, "ServiceAccounts in the binding")},
		Cells: func(obj runtime.Object, now time.Time) []any {
			var ref rbacv1.RoleRef
			var subjects []rbacv1.Subject
			var created metav1.Time
			var name string
			switch o := obj.(type) {
			case *rbacv1.RoleBinding:
				ref, subjects, created, name = o.RoleRef, o.Subjects, o.CreationTimestamp, o.Name
			case *rbacv1.ClusterRoleBinding:
				ref, subjects, created, name = o.RoleRef, o.Subjects, o.CreationTimestamp, o.Name
			}
			var users, groups, sas []string
			for _, s := range subjects {
				switch s.Kind {
				case rbacv1.UserKind:
					users = append(users, s.Name)
				case rbacv1.GroupKind:
					groups = append(groups, s.Name)
				case rbacv1.ServiceAccountKind:
					sas = append(sas, s.Namespace+"/"+s.Name)
				}
			}
			return []any{name, ref.Kind + "/" + ref.Name, registry.Age(created, now), strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
		},
	}
}
