package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/tinykube/tinykube/apiserver/registry/core"
)

// What upstream's ServiceAccount admission plugin names and mounts.
const (
	// serviceAccountVolumePrefix starts the name of the projected volume
	// every pod gets; 5 random characters follow.
	serviceAccountVolumePrefix = "kube-api-access-"
	// serviceAccountMountPath is where client-go's in-cluster config
	// looks for the token, the CA and the namespace.
	serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// rootCAConfigMap is the ConfigMap the root CA publisher keeps in
	// every namespace.
	rootCAConfigMap = "kube-root-ca.crt"
	// enforceMountableSecretsAnnotation on a ServiceAccount limits its
	// pods to the secrets it lists.
	enforceMountableSecretsAnnotation = "kubernetes.io/enforce-mountable-secrets"
)

// KubeletTokenExpirationSeconds is what the ServiceAccount admission puts
// into every kube-api-access volume (one hour and 7 seconds): a pod-bound
// TokenRequest of exactly this lifetime is recognised as the kubelet's and
// extended.
const KubeletTokenExpirationSeconds = 3607

// defaultServiceAccountWait is how long a pod create waits for the
// "default" ServiceAccount of a namespace: the serviceaccount controller
// creates it a moment after the namespace, and upstream's admission
// retries for about as long before it refuses the pod.
const (
	defaultServiceAccountWait  = 2 * time.Second
	defaultServiceAccountRetry = 100 * time.Millisecond
)

// ServiceAccount is upstream's admission plugin of that name, for new
// pods (see Admit).
type ServiceAccount struct {
	Objects ObjectGetter
}

var _ Mutator = ServiceAccount{}

// Name is the plugin's upstream name.
func (ServiceAccount) Name() string { return "ServiceAccount" }

// Admit is upstream's ServiceAccount admission for a new pod: it defaults spec.serviceAccountName, refuses the pod when that
// ServiceAccount does not exist, copies the ServiceAccount's
// imagePullSecrets, and, unless automounting is off (the pod's choice
// wins over the ServiceAccount's), adds the kube-api-access projected
// volume (token, cluster CA, namespace) mounted read-only at
// /var/run/secrets/kubernetes.io/serviceaccount in every container and
// init container that does not mount something there already.
func (p ServiceAccount) Admit(ctx context.Context, a *Attributes) error {
	if a.Operation != Create || a.Subresource != "" || a.Resource.GroupResource() != podsResource {
		return nil
	}
	pod := a.Object.(*corev1.Pod)
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return admitMirrorPod(pod)
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = core.DefaultServiceAccountName
	}
	//nolint:staticcheck // DeprecatedServiceAccount mirrors the name, as upstream's conversion fills it.
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	sa, err := p.getServiceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return podForbidden(pod, fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if enforce, _ := strconv.ParseBool(sa.Annotations[enforceMountableSecretsAnnotation]); enforce {
		if err := limitSecretReferences(sa, pod); err != nil {
			return podForbidden(pod, err)
		}
	}
	if automountServiceAccountToken(sa, pod) {
		mountServiceAccountToken(pod)
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	return nil
}

// admitMirrorPod: a kubelet's mirror of a static pod may not use the API's
// credentials, as upstream refuses.
func admitMirrorPod(pod *corev1.Pod) error {
	if pod.Spec.ServiceAccountName != "" {
		return podForbidden(pod, errors.New("a mirror pod may not reference service accounts"))
	}
	if referencesSecrets(pod) {
		return podForbidden(pod, errors.New("a mirror pod may not reference secrets"))
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken != nil {
				return podForbidden(pod, errors.New("a mirror pod may not use ServiceAccountToken volume projections"))
			}
		}
	}
	return nil
}

// podForbidden is admission's 403 for a pod. Upstream's admission runs
// before a generated name is chosen, so such pods are named by their
// generateName in the message.
func podForbidden(pod *corev1.Pod, err error) error {
	name := pod.Name
	if g := pod.GenerateName; g != "" && strings.HasPrefix(name, g) && len(name) == len(g)+generatedNameSuffixLength {
		name = g
	}
	return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, name, err)
}

// generatedNameSuffixLength is how many random characters a generated
// name gets after its generateName.
const generatedNameSuffixLength = 5

// getServiceAccount reads a ServiceAccount. A missing "default" one is
// waited for a moment, as upstream does, because its controller creates
// it right after the namespace.
func (p ServiceAccount) getServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	wait := time.NewTimer(defaultServiceAccountWait)
	defer wait.Stop()
	for {
		obj, err := p.Objects.Get(ctx, corev1.SchemeGroupVersion.WithResource("serviceaccounts"), namespace, name)
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
		if name != core.DefaultServiceAccountName {
			return nil, notFound
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, notFound
		case <-time.After(defaultServiceAccountRetry):
		}
	}
}

// automountServiceAccountToken: the pod's choice wins, then the
// ServiceAccount's, and tokens are mounted when neither says.
func automountServiceAccountToken(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountServiceAccountToken adds the kube-api-access volume (reusing one
// the pod already has) and mounts it in every container and init
// container without a mount at the token path.
func mountServiceAccountToken(pod *corev1.Pod) {
	volumeName := ""
	hasVolume := false
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) {
			volumeName, hasVolume = v.Name, true
			break
		}
	}
	if volumeName == "" {
		volumeName = serviceAccountVolumePrefix + rand.String(generatedNameSuffixLength)
	}
	mount := corev1.VolumeMount{Name: volumeName, ReadOnly: true, MountPath: serviceAccountMountPath}
	needsVolume := false
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			c := &containers[i]
			if !mountsPath(c, serviceAccountMountPath) {
				c.VolumeMounts = append(c.VolumeMounts, mount)
				needsVolume = true
			}
		}
	}
	if !hasVolume && needsVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         volumeName,
			VolumeSource: corev1.VolumeSource{Projected: serviceAccountTokenVolume()},
		})
	}
}

func mountsPath(c *corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// serviceAccountTokenVolume is the projected volume upstream stores in
// every pod, defaults included.
func serviceAccountTokenVolume() *corev1.ProjectedVolumeSource {
	mode := corev1.ProjectedVolumeSourceDefaultMode
	seconds := int64(KubeletTokenExpirationSeconds)
	return &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &seconds}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path:     "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}
}

// limitSecretReferences refuses a pod that uses secrets its
// ServiceAccount does not list, with upstream's messages.
func limitSecretReferences(sa *corev1.ServiceAccount, pod *corev1.Pod) error {
	mountable := map[string]bool{}
	for _, ref := range sa.Secrets {
		mountable[ref.Name] = true
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && !mountable[v.Secret.SecretName] {
			return fmt.Errorf("volume with secret.secretName=%q is not allowed because service account %s does not reference that secret", v.Secret.SecretName, sa.Name)
		}
	}
	for _, group := range []struct {
		what       string
		containers []corev1.Container
	}{{"init container", pod.Spec.InitContainers}, {"container", pod.Spec.Containers}} {
		for _, c := range group.containers {
			for _, env := range c.Env {
				if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil && !mountable[env.ValueFrom.SecretKeyRef.Name] {
					return fmt.Errorf("%s %s with envVar %s referencing secret.secretName=%q is not allowed because service account %s does not reference that secret",
						group.what, c.Name, env.Name, env.ValueFrom.SecretKeyRef.Name, sa.Name)
				}
			}
		}
	}
	pullable := map[string]bool{}
	for _, ref := range sa.ImagePullSecrets {
		pullable[ref.Name] = true
	}
	for i, ref := range pod.Spec.ImagePullSecrets {
		if !pullable[ref.Name] {
			return fmt.Errorf("imagePullSecrets[%d].name=%q is not allowed because service account %s does not reference that imagePullSecret", i, ref.Name, sa.Name)
		}
	}
	return nil
}

// referencesSecrets reports whether a pod uses any secret: in volumes,
// projected sources, environment or image pull secrets.
func referencesSecrets(pod *corev1.Pod) bool {
	if len(pod.Spec.ImagePullSecrets) > 0 {
		return true
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			return true
		}
		if v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(src corev1.VolumeProjection) bool { return src.Secret != nil }) {
			return true
		}
	}
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range containers {
			if slices.ContainsFunc(c.EnvFrom, func(from corev1.EnvFromSource) bool { return from.SecretRef != nil }) ||
				slices.ContainsFunc(c.Env, func(env corev1.EnvVar) bool { return env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil }) {
				return true
			}
		}
	}
	return false
}
