package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateVolumeSupport(t *testing.T) {
	pvc := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}
	otherClaim := *pvc.DeepCopy()
	otherClaim.PersistentVolumeClaim.ClaimName = "d"
	scratch := corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	image := corev1.Volume{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "x"}}}
	bundle := corev1.Volume{Name: "ca", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}},
		{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Path: "ca.pem"}}}}}}
	spec := func(vs ...corev1.Volume) *corev1.PodSpec { return &corev1.PodSpec{Volumes: vs} }
	for _, tc := range []struct {
		name      string
		spec, old *corev1.PodSpec
		want      []string
	}{
		{"supported volumes pass", spec(scratch), nil, nil},
		{"a claim is refused on create", spec(scratch, pvc), nil, []string{
			"spec.volumes[1].persistentVolumeClaim: Forbidden: this cluster cannot provide persistentVolumeClaim volumes yet; supported volume types: emptyDir, hostPath, configMap, secret, downwardAPI and projected"}},
		{"an image volume is refused", spec(image), nil, []string{
			"spec.volumes[0].image: Forbidden: this cluster cannot provide image volumes yet; supported volume types: emptyDir, hostPath, configMap, secret, downwardAPI and projected"}},
		{"an unsupported projection is refused", spec(bundle), nil, []string{
			"spec.volumes[0].projected.sources[1].clusterTrustBundle: Forbidden: this cluster cannot provide clusterTrustBundle projections yet; supported projections: configMap, secret, downwardAPI and serviceAccountToken"}},
		{"a stored claim is kept on update", spec(pvc, scratch), spec(pvc), nil},
		{"a changed claim is refused on update", spec(otherClaim), spec(pvc), []string{
			"spec.volumes[0].persistentVolumeClaim: Forbidden: this cluster cannot provide persistentVolumeClaim volumes yet; supported volume types: emptyDir, hostPath, configMap, secret, downwardAPI and projected"}},
		{"an added claim is refused on update", spec(scratch, pvc), spec(scratch), []string{
			"spec.volumes[1].persistentVolumeClaim: Forbidden: this cluster cannot provide persistentVolumeClaim volumes yet; supported volume types: emptyDir, hostPath, configMap, secret, downwardAPI and projected"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateVolumeSupport(tc.spec, tc.old, field.NewPath("spec"))
			if len(errs) != len(tc.want) {
				t.Fatalf("got %v, want %v", errs, tc.want)
			}
			for i, err := range errs {
				if err.Error() != tc.want[i] {
					t.Errorf("error %d = %q, want %q", i, err.Error(), tc.want[i])
				}
			}
		})
	}
}
