package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// withVolume adds volume v to a pod spec.
func withVolume(spec *corev1.PodSpec, v corev1.Volume) {
	spec.Volumes = append(spec.Volumes, v)
}

func TestVolumesTheClusterCannotProvideAreRefused(t *testing.T) {
	ts := newTestServer(t)
	pvc := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}
	nfs := corev1.Volume{Name: "share", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}}
	bundle := corev1.Volume{Name: "ca", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Path: "ca.pem", SignerName: ptr("example.com/signer")}}}}}}
	supported := []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}},
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
		{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
		{Name: "down", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
	}
	for _, tc := range []struct {
		name   string
		create func(name string, v corev1.Volume) error
		path   string
	}{
		{"pod", func(name string, v corev1.Volume) error {
			pod := makePod(name)
			withVolume(&pod.Spec, v)
			_, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{})
			return err
		}, "spec"},
		{"deployment", func(name string, v corev1.Volume) error {
			d := makeDeployment(name, 1)
			withVolume(&d.Spec.Template.Spec, v)
			_, err := ts.client.AppsV1().Deployments("default").Create(ctx(t), d, metav1.CreateOptions{})
			return err
		}, "spec.template.spec"},
		{"job", func(name string, v corev1.Volume) error {
			j := makeJob(name, corev1.RestartPolicyNever)
			withVolume(&j.Spec.Template.Spec, v)
			_, err := ts.client.BatchV1().Jobs("default").Create(ctx(t), j, metav1.CreateOptions{})
			return err
		}, "spec.template.spec"},
		{"cronjob", func(name string, v corev1.Volume) error {
			cj := makeCronJob(name, "* * * * *")
			withVolume(&cj.Spec.JobTemplate.Spec.Template.Spec, v)
			_, err := ts.client.BatchV1().CronJobs("default").Create(ctx(t), cj, metav1.CreateOptions{})
			return err
		}, "spec.jobTemplate.spec.template.spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, want := range []struct {
				volume corev1.Volume
				cause  string
			}{
				{pvc, tc.path + ".volumes[0].persistentVolumeClaim: Forbidden: this cluster cannot provide persistentVolumeClaim volumes yet; supported volume types: emptyDir, hostPath, configMap, secret, downwardAPI and projected"},
				{nfs, tc.path + ".volumes[0].nfs: Forbidden: this cluster cannot provide nfs volumes yet"},
				{bundle, tc.path + ".volumes[0].projected.sources[0].clusterTrustBundle: Forbidden: this cluster cannot provide clusterTrustBundle projections yet; supported projections: configMap, secret, downwardAPI and serviceAccountToken"},
			} {
				err := tc.create(tc.name+"-"+want.volume.Name, want.volume)
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want.cause) {
					t.Errorf("%s volume: want 422 with %q, got %v", want.volume.Name, want.cause, err)
				}
			}
			for _, v := range supported {
				if err := tc.create(tc.name+"-"+v.Name, v); err != nil {
					t.Errorf("%s volume: %v", v.Name, err)
				}
			}
		})
	}
}

func TestStoredUnsupportedVolumesDoNotBlockUpdates(t *testing.T) {
	ts := newTestServer(t)
	pvc := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}
	// A Deployment stored before the check existed.
	d := makeDeployment("old", 1)
	d.Namespace = "default"
	d.UID = "0b9e5a84-3c4b-4c1f-9d1e-000000000001"
	d.CreationTimestamp = metav1.Now()
	d.Generation = 1
	withVolume(&d.Spec.Template.Spec, pvc)
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.Create(ctx(t), "/registry/apps/deployments/default/old", raw); err != nil {
		t.Fatal(err)
	}
	deployments := ts.client.AppsV1().Deployments("default")
	stored, err := deployments.Get(ctx(t), "old", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored.Spec.Replicas = ptr(int32(3))
	updated, err := deployments.Update(ctx(t), stored, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("an update keeping the stored volume: %v", err)
	}
	updated.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = "other"
	if _, err := deployments.Update(ctx(t), updated, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("an update changing the persistentVolumeClaim volume: want 422, got %v", err)
	}
}
