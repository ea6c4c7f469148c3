package apps

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry/core"
)

// prepareWorkload applies upstream's apps/v1 defaults.
func prepareWorkload(obj runtime.Object) {
	one := func(p **int32) {
		if *p == nil {
			v := int32(1)
			*p = &v
		}
	}
	ten := func(p **int32) {
		if *p == nil {
			v := int32(10)
			*p = &v
		}
	}
	quarter := intstr.FromString("25%")
	switch o := obj.(type) {
	case *appsv1.Deployment:
		one(&o.Spec.Replicas)
		ten(&o.Spec.RevisionHistoryLimit)
		if o.Spec.ProgressDeadlineSeconds == nil {
			v := int32(600)
			o.Spec.ProgressDeadlineSeconds = &v
		}
		if o.Spec.Strategy.Type == "" {
			o.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
		}
		if o.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
			if o.Spec.Strategy.RollingUpdate == nil {
				o.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
			}
			if o.Spec.Strategy.RollingUpdate.MaxSurge == nil {
				v := quarter
				o.Spec.Strategy.RollingUpdate.MaxSurge = &v
			}
			if o.Spec.Strategy.RollingUpdate.MaxUnavailable == nil {
				v := quarter
				o.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
			}
		}
		core.DefaultPodSpec(&o.Spec.Template.Spec)
	case *appsv1.ReplicaSet:
		one(&o.Spec.Replicas)
		core.DefaultPodSpec(&o.Spec.Template.Spec)
	case *appsv1.StatefulSet:
		one(&o.Spec.Replicas)
		ten(&o.Spec.RevisionHistoryLimit)
		if o.Spec.PodManagementPolicy == "" {
			o.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
		}
		if o.Spec.UpdateStrategy.Type == "" {
			o.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		}
		if o.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
			if o.Spec.UpdateStrategy.RollingUpdate == nil {
				o.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
			}
			if o.Spec.UpdateStrategy.RollingUpdate.Partition == nil {
				v := int32(0)
				o.Spec.UpdateStrategy.RollingUpdate.Partition = &v
			}
		}
		if o.Spec.PersistentVolumeClaimRetentionPolicy == nil {
			o.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			}
		}
		core.DefaultPodSpec(&o.Spec.Template.Spec)
	case *appsv1.DaemonSet:
		ten(&o.Spec.RevisionHistoryLimit)
		if o.Spec.UpdateStrategy.Type == "" {
			o.Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
		}
		if o.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
			if o.Spec.UpdateStrategy.RollingUpdate == nil {
				o.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
			}
			if o.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
				v := intstr.FromInt32(1)
				o.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
			}
			if o.Spec.UpdateStrategy.RollingUpdate.MaxSurge == nil {
				v := intstr.FromInt32(0)
				o.Spec.UpdateStrategy.RollingUpdate.MaxSurge = &v
			}
		}
		core.DefaultPodSpec(&o.Spec.Template.Spec)
	}
}

func replicaSetFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.replicas": fmt.Sprint(obj.(*appsv1.ReplicaSet).Status.Replicas)}
}

// workloadParts returns what every apps/v1 workload has in common.
func workloadParts(obj runtime.Object) (selector *metav1.LabelSelector, template *corev1.PodTemplateSpec, replicas *int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Selector, &o.Spec.Template, o.Spec.Replicas
	case *appsv1.ReplicaSet:
		return o.Spec.Selector, &o.Spec.Template, o.Spec.Replicas
	case *appsv1.StatefulSet:
		return o.Spec.Selector, &o.Spec.Template, o.Spec.Replicas
	case *appsv1.DaemonSet:
		return o.Spec.Selector, &o.Spec.Template, nil
	}
	return nil, nil, nil
}

// validateWorkload checks selector, template and replicas with upstream's
// messages; the selector is immutable in apps/v1.
func validateWorkload(obj, old runtime.Object) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	selector, template, replicas := workloadParts(obj)
	if replicas != nil && *replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *replicas, "must be greater than or equal to 0"))
	}
	if selector == nil {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else {
		sel, err := metav1.LabelSelectorAsSelector(selector)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(spec.Child("selector"), selector, err.Error()))
		case sel.Empty():
			errs = append(errs, field.Invalid(spec.Child("selector"), selector, "empty selector is invalid for deployment"))
		case !sel.Matches(labels.Set(template.Labels)):
			errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), template.Labels, "`selector` does not match template `labels`"))
		}
	}
	errs = append(errs, core.ValidatePodSpec(&template.Spec, spec.Child("template", "spec"))...)
	if template.Spec.RestartPolicy != "" && template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(spec.Child("template", "spec", "restartPolicy"), template.Spec.RestartPolicy, []string{string(corev1.RestartPolicyAlways)}))
	}
	var oldTemplateSpec *corev1.PodSpec
	if old != nil {
		oldSelector, oldTemplate, _ := workloadParts(old)
		if !apiequality.Semantic.DeepEqual(selector, oldSelector) {
			errs = append(errs, field.Invalid(spec.Child("selector"), selector, "field is immutable"))
		}
		oldTemplateSpec = &oldTemplate.Spec
	}
	errs = append(errs, core.ValidateVolumeSupport(&template.Spec, oldTemplateSpec, spec.Child("template", "spec"))...)
	return errs
}
