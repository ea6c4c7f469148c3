package authz

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// podReferences reports whether pod uses the object named name of
// resource (secrets, configmaps, persistentvolumeclaims, serviceaccounts
// or pods): the edges of upstream's node authorizer graph that end at a
// pod.
func podReferences(pod *corev1.Pod, resource, name string) bool {
	switch resource {
	case "pods":
		return pod.Name == name
	case "serviceaccounts":
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		return sa == name
	case "persistentvolumeclaims":
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name {
				return true
			}
			// A generic ephemeral volume's claim is named after the pod
			// and the volume.
			if v.Ephemeral != nil && pod.Name+"-"+v.Name == name {
				return true
			}
		}
		return false
	}
	return slices.Contains(referencedNames(pod, resource), name)
}

// PodReferencesAny reports whether pod names any object of resource
// (secrets or configmaps): NodeRestriction admission forbids nodes to
// create mirror pods that do.
func PodReferencesAny(pod *corev1.Pod, resource string) bool {
	return len(referencedNames(pod, resource)) > 0
}

// referencedNames lists the secrets or the configmaps pod names: in
// image pull secrets, volumes (projected ones and the secret references
// of volume plugins included) and every container's environment.
func referencedNames(pod *corev1.Pod, resource string) []string {
	var names []string
	switch resource {
	case "secrets":
		for _, s := range pod.Spec.ImagePullSecrets {
			names = append(names, s.Name)
		}
		for _, v := range pod.Spec.Volumes {
			names = append(names, volumeSecretNames(v.VolumeSource)...)
		}
	case "configmaps":
		for _, v := range pod.Spec.Volumes {
			if v.ConfigMap != nil {
				names = append(names, v.ConfigMap.Name)
			}
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.ConfigMap != nil {
						names = append(names, src.ConfigMap.Name)
					}
				}
			}
		}
	default:
		return nil
	}
	for _, c := range containerEnvs(pod) {
		for _, f := range c.from {
			switch {
			case resource == "secrets" && f.SecretRef != nil:
				names = append(names, f.SecretRef.Name)
			case resource == "configmaps" && f.ConfigMapRef != nil:
				names = append(names, f.ConfigMapRef.Name)
			}
		}
		for _, e := range c.env {
			switch {
			case e.ValueFrom == nil:
			case resource == "secrets" && e.ValueFrom.SecretKeyRef != nil:
				names = append(names, e.ValueFrom.SecretKeyRef.Name)
			case resource == "configmaps" && e.ValueFrom.ConfigMapKeyRef != nil:
				names = append(names, e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
	return names
}

// containerEnv is the environment of one container of any kind.
type containerEnv struct {
	env  []corev1.EnvVar
	from []corev1.EnvFromSource
}

// containerEnvs are the environments of the pod's init, regular and
// ephemeral containers.
func containerEnvs(pod *corev1.Pod) []containerEnv {
	var envs []containerEnv
	for _, c := range pod.Spec.InitContainers {
		envs = append(envs, containerEnv{c.Env, c.EnvFrom})
	}
	for _, c := range pod.Spec.Containers {
		envs = append(envs, containerEnv{c.Env, c.EnvFrom})
	}
	for _, c := range pod.Spec.EphemeralContainers {
		envs = append(envs, containerEnv{c.Env, c.EnvFrom})
	}
	return envs
}

func volumeSecretNames(v corev1.VolumeSource) []string {
	var names []string
	ref := func(r *corev1.LocalObjectReference) {
		if r != nil {
			names = append(names, r.Name)
		}
	}
	switch {
	case v.Secret != nil:
		names = append(names, v.Secret.SecretName)
	case v.Projected != nil:
		for _, src := range v.Projected.Sources {
			if src.Secret != nil {
				names = append(names, src.Secret.Name)
			}
		}
	case v.CSI != nil:
		ref(v.CSI.NodePublishSecretRef)
	case v.CephFS != nil:
		ref(v.CephFS.SecretRef)
	case v.Cinder != nil:
		ref(v.Cinder.SecretRef)
	case v.FlexVolume != nil:
		ref(v.FlexVolume.SecretRef)
	case v.ISCSI != nil:
		ref(v.ISCSI.SecretRef)
	case v.RBD != nil:
		ref(v.RBD.SecretRef)
	case v.ScaleIO != nil:
		ref(v.ScaleIO.SecretRef)
	case v.StorageOS != nil:
		ref(v.StorageOS.SecretRef)
	case v.AzureFile != nil:
		names = append(names, v.AzureFile.SecretName)
	}
	return names
}
