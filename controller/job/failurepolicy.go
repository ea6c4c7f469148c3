package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// matchPodFailurePolicy returns the action of the first rule of policy
// that matches the failed pod, and upstream's message for FailJob; ""
// when none does (the failure counts, as with action Count).
// backoffLimitPerIndex is not supported, so FailIndex counts too.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	if policy == nil || pod.Status.Phase != corev1.PodFailed {
		return "", ""
	}
	for i, rule := range policy.Rules {
		if r := rule.OnExitCodes; r != nil {
			if cs := matchExitCodes(r, pod); cs != nil {
				return rule.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
					cs.Name, pod.Namespace, pod.Name, cs.State.Terminated.ExitCode, rule.Action, i)
			}
		}
		for _, pattern := range rule.OnPodConditions {
			if hasPodCondition(pod, pattern) {
				return rule.Action, fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
					pod.Namespace, pod.Name, pattern.Type, rule.Action, i)
			}
		}
	}
	return "", ""
}

// matchExitCodes is the first container (init containers first) that
// failed with an exit code the requirement selects; exit code 0 never
// matches.
func matchExitCodes(r *batchv1.PodFailurePolicyOnExitCodesRequirement, pod *corev1.Pod) *corev1.ContainerStatus {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range statuses {
			cs := &statuses[i]
			term := cs.State.Terminated
			if term == nil || term.ExitCode == 0 || (r.ContainerName != nil && *r.ContainerName != cs.Name) {
				continue
			}
			in := slices.Contains(r.Values, term.ExitCode)
			if (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
				return cs
			}
		}
	}
	return nil
}

func hasPodCondition(pod *corev1.Pod, pattern batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
	status := pattern.Status
	if status == "" {
		status = corev1.ConditionTrue
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == pattern.Type && c.Status == status {
			return true
		}
	}
	return false
}
