package apiserver

import (
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

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
	return validateQualifiedName(string(strategy), path)
}
