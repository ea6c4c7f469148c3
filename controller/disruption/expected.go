package disruption

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// expectedPodCount is upstream's getExpectedPodCount: an integer
// minAvailable counts the pods there are; a percentage or maxUnavailable
// is taken of the scale of the pods' controllers. A budget with neither
// expects nothing and desires nothing.
func (c *Controller) expectedPodCount(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desiredHealthy int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		expected, unmanaged, err = c.expectedScale(pods)
		if err != nil {
			return 0, 0, nil, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desiredHealthy = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desiredHealthy, expected = pdb.Spec.MinAvailable.IntVal, int32(len(pods))
	case pdb.Spec.MinAvailable != nil:
		expected, unmanaged, err = c.expectedScale(pods)
		if err != nil {
			return 0, 0, nil, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, nil, err
		}
		desiredHealthy = int32(minAvailable)
	}
	return expected, desiredHealthy, unmanaged, nil
}

// expectedScale adds up the scale of the controllers of pods, each
// counted once; pods without a controller are returned as unmanaged. A
// pod whose controller is not a Deployment (through its ReplicaSet), a
// ReplicaSet or a StatefulSet that exists is an error, as upstream.
func (c *Controller) expectedScale(pods []*corev1.Pod) (int32, []string, error) {
	scale := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := scale[ref.UID]; ok {
			continue
		}
		uid, replicas, found, err := c.controllerScale(ref, pod.Namespace)
		if err != nil {
			return 0, nil, err
		}
		if !found {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		scale[uid] = replicas
	}
	var total int32
	for _, n := range scale {
		total += n
	}
	return total, unmanaged, nil
}

// controllerScale finds the controller ref names and its replicas. A
// ReplicaSet of a Deployment stands for the Deployment, whose scale is
// the one a rollout keeps.
func (c *Controller) controllerScale(ref *metav1.OwnerReference, namespace string) (types.UID, int32, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || (gv.Group != "apps" && gv.Group != "extensions") {
		return "", 0, false, nil
	}
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.replicaSets.ReplicaSets(namespace).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && rs.UID != ref.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		owner := metav1.GetControllerOf(rs)
		if owner == nil || owner.Kind != "Deployment" {
			return rs.UID, replicas(rs.Spec.Replicas), true, nil
		}
		d, err := c.deployments.Deployments(namespace).Get(owner.Name)
		if apierrors.IsNotFound(err) || (err == nil && d.UID != owner.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return d.UID, replicas(d.Spec.Replicas), true, nil
	case "StatefulSet":
		sts, err := c.statefulSets.StatefulSets(namespace).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && sts.UID != ref.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return sts.UID, replicas(sts.Spec.Replicas), true, nil
	}
	return "", 0, false, nil
}

// replicas is a workload's spec.replicas, 1 when unset as the API
// defaults it.
func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
