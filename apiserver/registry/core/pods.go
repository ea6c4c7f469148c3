package core

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	quantity "k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultServiceAccountName is the service account of a pod that names none.
const DefaultServiceAccountName = "default"

// preparePod: a new pod is Pending with its QoS class, and gets upstream's
// defaults and the default service account.
func preparePod(obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	DefaultPodSpec(&pod.Spec)
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; pod.Spec.ServiceAccountName == "" && !mirror {
		pod.Spec.ServiceAccountName = DefaultServiceAccountName
	}
	//nolint:staticcheck // DeprecatedServiceAccount is still filled by upstream.
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	if pod.Spec.Priority == nil {
		zero := int32(0)
		pod.Spec.Priority = &zero
	}
	if pod.Spec.PreemptionPolicy == nil {
		p := corev1.PreemptLowerPriority
		pod.Spec.PreemptionPolicy = &p
	}
	if pod.Spec.EnableServiceLinks == nil {
		t := true
		pod.Spec.EnableServiceLinks = &t
	}
	for i := range pod.Spec.InitContainers {
		defaultRequestsToLimits(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		defaultRequestsToLimits(&pod.Spec.Containers[i])
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&pod.Spec)}
}

func preparePodUpdate(obj, _ runtime.Object) {
	DefaultPodSpec(&obj.(*corev1.Pod).Spec)
}

// defaultRequestsToLimits: a limit without a request requests the limit.
// Upstream does this for pods only, not for workload templates.
func defaultRequestsToLimits(c *corev1.Container) {
	for name, limit := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			c.Resources.Requests[name] = limit.DeepCopy()
		}
	}
}

// DefaultPodSpec applies upstream's field defaults to a pod spec (also the
// templates of workloads).
func DefaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		g := int64(corev1.DefaultTerminationGracePeriodSeconds)
		spec.TerminationGracePeriodSeconds = &g
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}

	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(probe)
	}
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if p.HTTPGet != nil && p.HTTPGet.Scheme == "" {
		p.HTTPGet.Scheme = corev1.URISchemeHTTP
	}
	if p.HTTPGet != nil && p.HTTPGet.Path == "" {
		p.HTTPGet.Path = "/"
	}
}

// defaultPullPolicy is Always for :latest or untagged images, else
// IfNotPresent.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(name, ":"); i < 0 || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// qosClass computes the pod's QoS class from its containers' resources.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	any := false
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for name, q := range c.Resources.Requests {
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
				if !q.IsZero() {
					any = true
				}
				add(requests, name, q)
			}
		}
		got := 0
		for name, q := range c.Resources.Limits {
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
				if !q.IsZero() {
					any = true
					got++
				}
				add(limits, name, q)
			}
		}
		if got < 2 {
			guaranteed = false
		}
	}
	if !any {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func add(list corev1.ResourceList, name corev1.ResourceName, q quantity.Quantity) {
	cur := list[name]
	cur.Add(q)
	list[name] = cur
}

// podFields are the fields kubelet, scheduler and kubectl select pods by.
func podFields(obj runtime.Object) fields.Set {
	pod := obj.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         boolString(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             pod.Status.PodIP,
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// validatePod checks what every pod needs, with upstream's messages.
func validatePod(obj, old runtime.Object) field.ErrorList {
	pod := obj.(*corev1.Pod)
	errs := ValidatePodSpec(&pod.Spec, field.NewPath("spec"))
	var oldSpec *corev1.PodSpec
	if old != nil {
		oldSpec = &old.(*corev1.Pod).Spec
		errs = append(errs, validatePodSpecUpdate(pod, old.(*corev1.Pod))...)
	}
	errs = append(errs, ValidateVolumeSupport(&pod.Spec, oldSpec, field.NewPath("spec"))...)
	return errs
}

// podSpecUpdateForbidden is upstream's message for a change to an
// immutable part of a pod's spec.
const podSpecUpdateForbidden = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodSpecUpdate allows only what upstream allows to change in a
// running pod's spec; the node is set once, by binding.
func validatePodSpecUpdate(pod, old *corev1.Pod) field.ErrorList {
	if old.Spec.NodeName != "" && pod.Spec.NodeName != old.Spec.NodeName {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "nodeName"), pod.Spec.NodeName, "field is immutable")}
	}
	mutable := old.Spec.DeepCopy()
	mutable.NodeName = pod.Spec.NodeName
	mutable.ActiveDeadlineSeconds = pod.Spec.ActiveDeadlineSeconds
	mutable.TerminationGracePeriodSeconds = pod.Spec.TerminationGracePeriodSeconds
	for i := range mutable.Containers {
		if i < len(pod.Spec.Containers) {
			mutable.Containers[i].Image = pod.Spec.Containers[i].Image
		}
	}
	for i := range mutable.InitContainers {
		if i < len(pod.Spec.InitContainers) {
			mutable.InitContainers[i].Image = pod.Spec.InitContainers[i].Image
		}
	}
	if tolerationsAdded(old.Spec.Tolerations, pod.Spec.Tolerations) {
		mutable.Tolerations = pod.Spec.Tolerations
	}
	if errs := schedulingGatesOnlyRemoved(old.Spec.SchedulingGates, pod.Spec.SchedulingGates); len(errs) > 0 {
		return errs
	}
	mutable.SchedulingGates = pod.Spec.SchedulingGates
	if !apiequality.Semantic.DeepEqual(*mutable, pod.Spec) {
		return field.ErrorList{field.Forbidden(field.NewPath("spec"), podSpecUpdateForbidden)}
	}
	return nil
}

// schedulingGatesOnlyRemoved allows removing scheduling gates and refuses
// adding them, with upstream's message.
func schedulingGatesOnlyRemoved(old, updated []corev1.PodSchedulingGate) field.ErrorList {
	var errs field.ErrorList
	for i, g := range updated {
		if !slices.ContainsFunc(old, func(o corev1.PodSchedulingGate) bool { return o.Name == g.Name }) {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "schedulingGates").Index(i).Child("name"),
				fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// tolerationsAdded reports whether updated keeps every toleration of old.
func tolerationsAdded(old, updated []corev1.Toleration) bool {
	for _, o := range old {
		found := false
		for _, u := range updated {
			if apiequality.Semantic.DeepEqual(o, u) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ValidatePodSpec checks a pod spec (also the templates of workloads)
// with upstream's messages.
func ValidatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		vp := path.Child("volumes").Index(i).Child("name")
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp, ""))
		case volumes[v.Name]:
			errs = append(errs, field.Duplicate(vp, v.Name))
		default:
			for _, msg := range apimachineryvalidation.NameIsDNSLabel(v.Name, false) {
				errs = append(errs, field.Invalid(vp, v.Name, msg))
			}
		}
		volumes[v.Name] = true
	}
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	names := map[string]bool{}
	for i, c := range spec.Containers {
		p := path.Child("containers").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			for _, msg := range apimachineryvalidation.NameIsDNSLabel(c.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
			}
			if names[c.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
			}
			names[c.Name] = true
		}
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(p.Child("image"), ""))
		}
		for j, port := range c.Ports {
			pp := p.Child("ports").Index(j)
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, "must be between 1 and 65535, inclusive"))
			}
			if port.HostPort != 0 && (port.HostPort < 1 || port.HostPort > 65535) {
				errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, "must be between 1 and 65535, inclusive"))
			}
			if port.Name != "" {
				for _, msg := range validation.IsValidPortName(port.Name) {
					errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
				}
			}
		}
		for j, env := range c.Env {
			for _, msg := range validation.IsEnvVarName(env.Name) {
				errs = append(errs, field.Invalid(p.Child("env").Index(j).Child("name"), env.Name, msg))
			}
		}
		for j, m := range c.VolumeMounts {
			mp := p.Child("volumeMounts").Index(j)
			if !volumes[m.Name] {
				errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
			}
			if m.MountPath == "" {
				errs = append(errs, field.Required(mp.Child("mountPath"), ""))
			}
		}
		for name, request := range c.Resources.Requests {
			if limit, ok := c.Resources.Limits[name]; ok && request.Cmp(limit) > 0 {
				errs = append(errs, field.Invalid(p.Child("resources", "requests").Key(string(name)), request.String(),
					fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
			}
		}
	}
	switch spec.DNSPolicy {
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone:
	default:
		errs = append(errs, field.NotSupported(path.Child("dnsPolicy"), spec.DNSPolicy,
			[]string{string(corev1.DNSClusterFirst), string(corev1.DNSClusterFirstWithHostNet), string(corev1.DNSDefault), string(corev1.DNSNone)}))
	}
	switch spec.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(path.Child("restartPolicy"), spec.RestartPolicy,
			[]string{string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	return errs
}
