package deployment

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// defaultedNginxTemplate is the classic nginx Deployment's template as the
// API server stores it after defaulting.
func defaultedNginxTemplate() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:                     "nginx",
				Image:                    "nginx:latest",
				ImagePullPolicy:          corev1.PullAlways,
				Ports:                    []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			DNSPolicy:                     corev1.DNSClusterFirst,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			SchedulerName:                 "default-scheduler",
			SecurityContext:               &corev1.PodSecurityContext{},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
		},
	}
}

func TestTemplateHash(t *testing.T) {
	changed := defaultedNginxTemplate()
	changed.Spec.Containers[0].Image = "nginx:1.27"
	tests := []struct {
		name      string
		template  *corev1.PodTemplateSpec
		collision *int32
		want      string
	}{
		// The name upstream 1.37 gives the nginx Deployment's ReplicaSet.
		{"matches upstream for the nginx template", defaultedNginxTemplate(), nil, "585c5579f6"},
		{"changes with the template", changed, nil, ""},
		{"changes with the collision count", defaultedNginxTemplate(), ptr.To[int32](1), ""},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := templateHash(tt.template, tt.collision)
			if tt.want != "" && got != tt.want {
				t.Fatalf("hash %s, want %s", got, tt.want)
			}
			if again := templateHash(tt.template, tt.collision); again != got {
				t.Fatalf("hash not stable: %s then %s", got, again)
			}
			if other, dup := seen[got]; dup {
				t.Fatalf("hash %s also for %q", got, other)
			}
			seen[got] = tt.name
		})
	}
}
