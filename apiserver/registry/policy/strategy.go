package policy

import (
	"strconv"
	"strings"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
)

var policyV1 = policyv1.SchemeGroupVersion

// Group serves policy/v1.
type Group struct{}

// Resources are policy/v1 poddisruptionbudgets as upstream
// serves it. policy/v1 has no defaults (v1beta1's minAvailable: 1 is
// gone): a budget with neither minAvailable nor maxUnavailable allows
// every disruption. Status is the disruption controller's, through
// /status, and the eviction subresource's (the generic server's).
func (Group) Resources(registry.Config) []*registry.Resource {
	return []*registry.Resource{{GVR: policyV1.WithResource("poddisruptionbudgets"), Kind: "PodDisruptionBudget",
		Singular: "poddisruptionbudget", Namespaced: true, ShortNames: []string{"pdb"},
		Subresources: []string{"status"}, Generation: true,
		NameValidation: apimachineryvalidation.NameIsDNSSubdomain,
		Validate: func(obj, _ runtime.Object) field.ErrorList {
			return validatePodDisruptionBudget(obj.(*policyv1.PodDisruptionBudget))
		},
		Table: podDisruptionBudgetTable(),
	}}
}

// supportedUnhealthyPodEvictionPolicies are the values of
// spec.unhealthyPodEvictionPolicy, sorted as upstream lists them.
var supportedUnhealthyPodEvictionPolicies = []string{string(policyv1.AlwaysAllow), string(policyv1.IfHealthyBudget)}

// validatePodDisruptionBudget is upstream's ValidatePodDisruptionBudget
// and, for what only the status writers change, its status update checks
// (on every write: status is carried over unchanged through the main
// resource, so the checks never fire there).
func validatePodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(spec, pdb.Spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if v := pdb.Spec.MinAvailable; v != nil {
		errs = append(errs, validateIntOrPercent(*v, spec.Child("minAvailable"))...)
	}
	if v := pdb.Spec.MaxUnavailable; v != nil {
		errs = append(errs, validateIntOrPercent(*v, spec.Child("maxUnavailable"))...)
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(pdb.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p != policyv1.IfHealthyBudget && *p != policyv1.AlwaysAllow {
		errs = append(errs, field.NotSupported(spec.Child("unhealthyPodEvictionPolicy"), *p, supportedUnhealthyPodEvictionPolicies))
	}

	status := field.NewPath("status")
	errs = append(errs, metav1validation.ValidateConditions(pdb.Status.Conditions, status.Child("conditions"))...)
	for _, f := range []struct {
		name  string
		value int32
	}{
		{"disruptionsAllowed", pdb.Status.DisruptionsAllowed}, {"currentHealthy", pdb.Status.CurrentHealthy},
		{"desiredHealthy", pdb.Status.DesiredHealthy}, {"expectedPods", pdb.Status.ExpectedPods},
	} {
		if f.value < 0 {
			errs = append(errs, field.Invalid(status.Child(f.name), int64(f.value), "must be greater than or equal to 0"))
		}
	}
	return errs
}

// validateIntOrPercent is upstream's ValidatePositiveIntOrPercent and
// IsNotMoreThan100Percent.
func validateIntOrPercent(v intstr.IntOrString, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(path, v, msg))
		}
		if len(errs) == 0 {
			if n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%")); err == nil && n > 100 {
				errs = append(errs, field.Invalid(path, v, "must not be greater than 100%"))
			}
		}
	case intstr.Int:
		if v.IntVal < 0 {
			errs = append(errs, field.Invalid(path, int64(v.IntVal), "must be greater than or equal to 0"))
		}
	default:
		errs = append(errs, field.Invalid(path, v, "must be an integer or percentage (e.g '5%')"))
	}
	return errs
}

// podDisruptionBudgetTable is upstream's printer: N/A for the bound that
// is not set.
func podDisruptionBudgetTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Min Available", "string", 0, "The minimum number of pods that must be available."),
			registry.Column("Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable."),
			registry.Column("Allowed Disruptions", "integer", 0, "Calculated number of pods that may be disrupted at this time."),
			registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			pdb := obj.(*policyv1.PodDisruptionBudget)
			bound := func(v *intstr.IntOrString) string {
				if v == nil {
					return "N/A"
				}
				return v.String()
			}
			return []any{pdb.Name, bound(pdb.Spec.MinAvailable), bound(pdb.Spec.MaxUnavailable),
				int64(pdb.Status.DisruptionsAllowed), registry.Age(pdb.CreationTimestamp, now)}
		},
	}
}
