package apiserver_test

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func startWithServiceAccountAdmission(t *testing.T) *apiservertest.Server {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{API: apiserver.Config{ServiceAccountAdmission: true}})
	createServiceAccount(t, s, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}})
	return s
}

func createServiceAccount(t *testing.T, s *apiservertest.Server, sa *corev1.ServiceAccount) {
	t.Helper()
	if _, err := s.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// kubeAPIAccessName is upstream's volume name: the prefix and 5 characters
// of apimachinery's random name alphabet.
var kubeAPIAccessName = regexp.MustCompile(`^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

// The classic nginx Deployment's pod, as the replicaset controller
// creates it, is stored with the service account and the kube-api-access
// volume exactly as upstream 1.37 stores it (see
// /work/shared/upstream-1.37/pods.yaml).
func TestServiceAccountAdmissionStoresUpstreamsPodShape(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "nginx-deployment-585c5579f6-", Namespace: "default", Labels: map[string]string{"app": "nginx"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "nginx", Image: "nginx:latest", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
		}}},
	}
	got, err := s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	//nolint:staticcheck // serviceAccount is what upstream still stores.
	if got.Spec.ServiceAccountName != "default" || got.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("serviceAccountName %q, serviceAccount %q, want default", got.Spec.ServiceAccountName, got.Spec.DeprecatedServiceAccount)
	}
	if len(got.Spec.Volumes) != 1 {
		t.Fatalf("volumes = %+v, want the kube-api-access volume", got.Spec.Volumes)
	}
	name := got.Spec.Volumes[0].Name
	if !kubeAPIAccessName.MatchString(name) {
		t.Errorf("volume name %q, want kube-api-access-XXXXX", name)
	}
	mode, seconds := int32(420), int64(3607)
	want := corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &seconds, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}, Path: "namespace",
			}}}},
		},
	}}}
	if !reflect.DeepEqual(want, got.Spec.Volumes[0]) {
		t.Errorf("volume:\n%s\nwant upstream's\n%s", asJSON(got.Spec.Volumes[0]), asJSON(want))
	}
	wantMounts := []corev1.VolumeMount{{MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", Name: name, ReadOnly: true}}
	if !reflect.DeepEqual(wantMounts, got.Spec.Containers[0].VolumeMounts) {
		t.Errorf("volumeMounts:\n%s\nwant upstream's\n%s", asJSON(got.Spec.Containers[0].VolumeMounts), asJSON(wantMounts))
	}
	if got.Spec.ImagePullSecrets != nil {
		t.Errorf("imagePullSecrets = %v, want none (the service account has none)", got.Spec.ImagePullSecrets)
	}
}

// Every container and init container gets the mount, except one that
// mounts something else at the token path; a pod that brings its own
// kube-api-access volume keeps it.
func TestServiceAccountAdmissionMountsEveryContainer(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "multi", Namespace: "default"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "busybox"},
				{Name: "own", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}},
			},
			Volumes: []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	got, err := s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Volumes) != 2 || !kubeAPIAccessName.MatchString(got.Spec.Volumes[1].Name) {
		t.Fatalf("volumes = %+v, want mine and kube-api-access", got.Spec.Volumes)
	}
	name := got.Spec.Volumes[1].Name
	for _, c := range append(got.Spec.InitContainers, got.Spec.Containers[0]) {
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != name || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("container %s mounts %+v, want %s read-only", c.Name, c.VolumeMounts, name)
		}
	}
	if m := got.Spec.Containers[1].VolumeMounts; len(m) != 1 || m[0].Name != "mine" {
		t.Errorf("container own mounts %+v, want only its own volume", m)
	}

	pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "brought", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "kube-api-access-mine1", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	got, err = s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Volumes) != 1 || got.Spec.Containers[0].VolumeMounts[0].Name != "kube-api-access-mine1" {
		t.Errorf("a pod with its own kube-api-access volume: volumes %+v, mounts %+v", got.Spec.Volumes, got.Spec.Containers[0].VolumeMounts)
	}
}

// automountServiceAccountToken: the pod's choice wins over the service
// account's; unset on both means mounted.
func TestServiceAccountAdmissionAutomount(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	no, yes := false, true
	createServiceAccount(t, s, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Namespace: "default"}, AutomountServiceAccountToken: &no})
	tests := []struct {
		name        string
		sa          string
		pod         *bool
		wantMounted bool
	}{
		{"pod says false", "default", &no, false},
		{"service account says false", "quiet", nil, false},
		{"pod says true over the service account's false", "quiet", &yes, true},
		{"neither says", "default", nil, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p" + string(rune('a'+i)), Namespace: "default"},
				Spec: corev1.PodSpec{ServiceAccountName: tt.sa, AutomountServiceAccountToken: tt.pod,
					Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
			}
			got, err := s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mounted := len(got.Spec.Volumes) == 1 && len(got.Spec.Containers[0].VolumeMounts) == 1
			if mounted != tt.wantMounted || (!mounted && (len(got.Spec.Volumes) != 0 || len(got.Spec.Containers[0].VolumeMounts) != 0)) {
				t.Errorf("volumes %+v, mounts %+v; want mounted=%v", got.Spec.Volumes, got.Spec.Containers[0].VolumeMounts, tt.wantMounted)
			}
		})
	}
}

func TestServiceAccountAdmissionRefusesAMissingServiceAccount(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	ctx := context.Background()
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		message string
	}{
		{"named service account", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}, Spec: corev1.PodSpec{ServiceAccountName: "ghost"}},
			`pods "x" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found`},
		{"default service account never created", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "fresh"}},
			`pods "web-" is forbidden: error looking up service account fresh/default: serviceaccount "default" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox"}}
			_, err := s.Client.CoreV1().Pods(tt.pod.Namespace).Create(ctx, tt.pod, metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) || err.Error() != tt.message {
				t.Errorf("err = %v, want 403 %q", err, tt.message)
			}
		})
	}
}

func TestServiceAccountAdmissionCopiesImagePullSecrets(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	createServiceAccount(t, s, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "puller", Namespace: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}}})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pulls", Namespace: "default"},
		Spec: corev1.PodSpec{ServiceAccountName: "puller", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	got, err := s.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []corev1.LocalObjectReference{{Name: "registry"}}; !reflect.DeepEqual(want, got.Spec.ImagePullSecrets) {
		t.Errorf("imagePullSecrets = %v, want %v", got.Spec.ImagePullSecrets, want)
	}
}

func asJSON(v any) string {
	data, _ := json.MarshalIndent(v, "", "  ")
	return string(data)
}

// A kubelet's mirror pod gets no service account and no token, and may not
// ask for either, as upstream refuses.
func TestServiceAccountAdmissionOfMirrorPods(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	ctx := context.Background()
	mirror := func(name string, spec corev1.PodSpec) *corev1.Pod {
		spec.NodeName = "n1"
		spec.Containers = []corev1.Container{{Name: "app", Image: "busybox"}}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "hash"}}, Spec: spec}
	}
	got, err := s.Client.CoreV1().Pods("default").Create(ctx, mirror("static-web", corev1.PodSpec{}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ServiceAccountName != "" || len(got.Spec.Volumes) != 0 {
		t.Errorf("mirror pod stored with serviceAccountName %q, volumes %+v", got.Spec.ServiceAccountName, got.Spec.Volumes)
	}
	for _, tt := range []struct {
		pod     *corev1.Pod
		message string
	}{
		{mirror("with-sa", corev1.PodSpec{ServiceAccountName: "default"}),
			`pods "with-sa" is forbidden: a mirror pod may not reference service accounts`},
		{mirror("with-secret", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}}}),
			`pods "with-secret" is forbidden: a mirror pod may not reference secrets`},
	} {
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, tt.pod, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || err.Error() != tt.message {
			t.Errorf("err = %v, want 403 %q", err, tt.message)
		}
	}
}

// A service account annotated kubernetes.io/enforce-mountable-secrets
// limits its pods to the secrets it lists.
func TestServiceAccountAdmissionEnforcesMountableSecrets(t *testing.T) {
	s := startWithServiceAccountAdmission(t)
	createServiceAccount(t, s, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "strict", Namespace: "default", Annotations: map[string]string{"kubernetes.io/enforce-mountable-secrets": "true"}},
		Secrets:    []corev1.ObjectReference{{Name: "allowed"}},
	})
	pod := func(name, secret string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
			ServiceAccountName: "strict",
			Containers:         []corev1.Container{{Name: "app", Image: "busybox"}},
			Volumes:            []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}},
		}}
	}
	ctx := context.Background()
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("ok", "allowed"), metav1.CreateOptions{}); err != nil {
		t.Errorf("pod with a listed secret: %v", err)
	}
	want := `pods "nope" is forbidden: volume with secret.secretName="other" is not allowed because service account strict does not reference that secret`
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("nope", "other"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("err = %v, want 403 %q", err, want)
	}
}
