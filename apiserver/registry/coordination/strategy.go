package coordination

import (
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

var coordinationV1 = coordinationv1.SchemeGroupVersion

// Group serves coordination.k8s.io/v1.
type Group struct{}

// Resources are the Leases.
func (Group) Resources(registry.Config) []*registry.Resource {
	return []*registry.Resource{{GVR: coordinationV1.WithResource("leases"), Kind: "Lease", Singular: "lease", Namespaced: true,
		NameValidation: apimachineryvalidation.NameIsDNSSubdomain, AllowCreateOnUpdate: true, Validate: validateLease, Table: leaseTable()}}
}

// validateLease is upstream's ValidateLease (pkg/apis/coordination/validation).
// spec.strategy and spec.preferredHolder are served as by a kube-apiserver
// with CoordinatedLeaderElection enabled: checked and kept. With the gate
// off (upstream's default) they would be dropped silently, which tinykube
// does to no field.
func validateLease(obj, _ runtime.Object) field.ErrorList {
	spec := obj.(*coordinationv1.Lease).Spec
	path := field.NewPath("spec")
	var errs field.ErrorList
	if spec.LeaseDurationSeconds != nil && *spec.LeaseDurationSeconds <= 0 {
		errs = append(errs, field.Invalid(path.Child("leaseDurationSeconds"), spec.LeaseDurationSeconds, "must be greater than 0"))
	}
	if spec.LeaseTransitions != nil && *spec.LeaseTransitions < 0 {
		errs = append(errs, field.Invalid(path.Child("leaseTransitions"), spec.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if spec.Strategy != nil {
		errs = append(errs, validateLeaseStrategy(*spec.Strategy, path.Child("strategy"))...)
	}
	if spec.PreferredHolder != nil && *spec.PreferredHolder != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(path.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// validateLeaseStrategy: a strategy without a prefix must be one Kubernetes
// defines; a prefixed one must be a qualified name.
func validateLeaseStrategy(strategy coordinationv1.CoordinatedLeaseStrategy, path *field.Path) field.ErrorList {
	if !strings.Contains(string(strategy), "/") {
		if strategy != coordinationv1.OldestEmulationVersion {
			return field.ErrorList{field.NotSupported(path, strategy, []string{string(coordinationv1.OldestEmulationVersion)})}
		}
		return nil
	}
	return fieldvalidation.QualifiedName(string(strategy), path)
}

func leaseTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Holder", "string", 0, "The holder of the lease."), registry.AgeColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			l := obj.(*coordinationv1.Lease)
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return []any{l.Name, holder, registry.Age(l.CreationTimestamp, now)}
		},
	}
}
