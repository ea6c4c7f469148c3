package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDeploymentGetsUpstreamDefaults(t *testing.T) {
	ts := newTestServer(t)
	d, err := ts.client.AppsV1().Deployments("default").Create(ctx(t), makeDeployment("nginx", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if d.Generation != 1 || *d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 ||
		d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		pod.RestartPolicy != corev1.RestartPolicyAlways || pod.DNSPolicy != corev1.DNSClusterFirst ||
		pod.SchedulerName != "default-scheduler" || *pod.TerminationGracePeriodSeconds != 30 ||
		c.ImagePullPolicy != corev1.PullAlways || c.TerminationMessagePath != "/dev/termination-log" ||
		c.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("defaults missing: %+v", d.Spec)
	}
}

func TestSpecAndStatusAreWrittenThroughSeparateEndpoints(t *testing.T) {
	ts := newTestServer(t)
	deploys := ts.client.AppsV1().Deployments("default")
	d, err := deploys.Create(ctx(t), makeDeployment("web", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Status sent to the main resource is ignored.
	d.Status.Replicas = 5
	d.Labels = map[string]string{"tier": "front"}
	d, err = deploys.Update(ctx(t), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 0 || d.Generation != 1 || d.Labels["tier"] != "front" {
		t.Fatalf("main update: status %d generation %d labels %v", d.Status.Replicas, d.Generation, d.Labels)
	}
	// Status goes through /status, which ignores spec.
	d.Status.Replicas = 1
	d.Spec.Replicas = ptr(int32(7))
	d, err = deploys.UpdateStatus(ctx(t), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas != 1 || *d.Spec.Replicas != 1 || d.Generation != 1 {
		t.Fatalf("status update: status %d spec %d generation %d", d.Status.Replicas, *d.Spec.Replicas, d.Generation)
	}
	// A spec change bumps generation.
	d.Spec.Replicas = ptr(int32(3))
	d, err = deploys.Update(ctx(t), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 2 {
		t.Fatalf("generation after spec change: %d", d.Generation)
	}
}

func ptr[T any](v T) *T { return &v }

func TestScaleSubresource(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.client.AppsV1().Deployments("default").Create(ctx(t), makeDeployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deploys := ts.client.AppsV1().Deployments("default")
	scale, err := deploys.GetScale(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if scale.Spec.Replicas != 1 || scale.Status.Selector != "app=web" {
		t.Fatalf("scale %+v", scale)
	}
	stale := scale.DeepCopy()
	scale.Spec.Replicas = 4
	if _, err := deploys.UpdateScale(ctx(t), "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale.Spec.Replicas = 9
	if _, err := deploys.UpdateScale(ctx(t), "web", stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("scale with stale resourceVersion: %v", err)
	}
	// kubectl scale sends a merge patch to /scale.
	resp := ts.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", string(types.MergePatchType), `{"spec":{"replicas":6}}`)
	if resp.code != http.StatusOK || !strings.Contains(string(resp.body), `"kind":"Scale"`) {
		t.Fatalf("patch scale: %d %s", resp.code, resp.body)
	}
	d, _ := deploys.Get(ctx(t), "web", metav1.GetOptions{})
	if *d.Spec.Replicas != 6 || d.Generation != 3 {
		t.Fatalf("replicas %d generation %d", *d.Spec.Replicas, d.Generation)
	}
}

func TestPatchTypes(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.client.AppsV1().Deployments("default").Create(ctx(t), makeDeployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deploys := ts.client.AppsV1().Deployments("default")
	tests := []struct {
		name  string
		typ   types.PatchType
		patch string
		check func(*appsv1.Deployment) bool
	}{
		{"merge patch adds a label", types.MergePatchType, `{"metadata":{"labels":{"x":"1"}}}`,
			func(d *appsv1.Deployment) bool { return d.Labels["x"] == "1" }},
		{"json patch replaces replicas", types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":3}]`,
			func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 3 }},
		{"strategic merge patch merges containers by name", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}`,
			func(d *appsv1.Deployment) bool { return len(d.Spec.Template.Spec.Containers) == 2 }},
		{"strategic merge patch sets an image", types.StrategicMergePatchType,
			`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}`,
			func(d *appsv1.Deployment) bool {
				for _, c := range d.Spec.Template.Spec.Containers {
					if c.Name == "web" {
						return c.Image == "nginx:1.27" && len(d.Spec.Template.Spec.Containers) == 2
					}
				}
				return false
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := deploys.Patch(ctx(t), "web", tt.typ, []byte(tt.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(d) {
				t.Fatalf("patch not applied: %+v", d.Spec)
			}
		})
	}
	resp := ts.do("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", "application/json", `{}`)
	if resp.code != http.StatusUnsupportedMediaType {
		t.Fatalf("PATCH with application/json: %d", resp.code)
	}
}

func TestServerSideApplyCreatesThenUpdates(t *testing.T) {
	ts := newTestServer(t)
	manifest := `apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
data:
  a: "1"
`
	path := "/api/v1/namespaces/default/configmaps/applied?fieldManager=kubectl&force=false"
	resp := ts.do("PATCH", path, string(types.ApplyYAMLPatchType), manifest)
	if resp.code != http.StatusCreated {
		t.Fatalf("first apply: %d %s", resp.code, resp.body)
	}
	resp = ts.do("PATCH", path, string(types.ApplyYAMLPatchType), strings.Replace(manifest, `a: "1"`, `a: "2"`, 1))
	var cm corev1.ConfigMap
	_ = json.Unmarshal(resp.body, &cm)
	if resp.code != http.StatusOK || cm.Data["a"] != "2" {
		t.Fatalf("second apply: %d %s", resp.code, resp.body)
	}
}

func TestWorkloadValidation(t *testing.T) {
	ts := newTestServer(t)
	d := makeDeployment("web", 1)
	d.Spec.Template.Labels = map[string]string{"app": "other"}
	_, err := ts.client.AppsV1().Deployments("default").Create(ctx(t), d, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.template.metadata.labels: Invalid value") || !strings.Contains(err.Error(), "`selector` does not match template `labels`") {
		t.Fatalf("mismatched selector: %v", err)
	}
}
