package authz

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// podsByNode is a PodLister over a fixed set of pods.
type podsByNode []*corev1.Pod

func (p podsByNode) PodsOnNode(_ context.Context, namespace, node string) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, pod := range p {
		if pod.Namespace == namespace && pod.Spec.NodeName == node {
			out = append(out, pod)
		}
	}
	return out, nil
}

func TestNodeAuthorizer(t *testing.T) {
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.PodSpec{
		NodeName:           "n1",
		ServiceAccountName: "web-sa",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "registry"}},
		Volumes: []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}},
			{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "web-data"}}},
			{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected-secret"}}}}}}},
		},
		Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}, Key: "pw"}}}}}},
	}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Spec: corev1.PodSpec{
		NodeName: "n2",
		Volumes:  []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-secret"}}}},
	}}
	node := NodeAuthorizer{Pods: podsByNode{web, other}, Rules: NodeRules()}
	n1 := authn.User{Name: "system:node:n1", Groups: []string{NodesGroup, authn.GroupAuthenticated}}
	onNode := func(a Attributes) Attributes { a.User = n1; return a }
	withSelector := func(a Attributes, sel string) Attributes {
		a.FieldSelector = fields.ParseSelectorOrDie(sel).Requirements()
		return a
	}
	noRelation := "no relationship found between node 'n1' and this object"
	tests := []struct {
		name       string
		a          Attributes
		want       Decision
		wantReason string
	}{
		{"secret of its pod (image pull)", onNode(resourceAttrs("get", "", "secrets", "", "default", "registry")), Allow, ""},
		{"secret of its pod (env)", onNode(resourceAttrs("get", "", "secrets", "", "default", "env-secret")), Allow, ""},
		{"secret of its pod (projected)", onNode(resourceAttrs("watch", "", "secrets", "", "default", "projected-secret")), Allow, ""},
		{"secret of another node's pod", onNode(resourceAttrs("get", "", "secrets", "", "default", "db-secret")), NoOpinion, noRelation},
		{"all secrets", onNode(resourceAttrs("list", "", "secrets", "", "default", "")), NoOpinion, "No Object name found"},
		{"writing a secret", onNode(resourceAttrs("update", "", "secrets", "", "default", "registry")), NoOpinion, "can only read resources of this type"},
		{"configmap of its pod", onNode(resourceAttrs("get", "", "configmaps", "", "default", "web-config")), Allow, ""},
		{"pvc of its pod", onNode(resourceAttrs("get", "", "persistentvolumeclaims", "", "default", "web-data")), Allow, ""},
		{"token of its pod's service account", onNode(resourceAttrs("create", "", "serviceaccounts", "token", "default", "web-sa")), Allow, ""},
		{"token of another service account", onNode(resourceAttrs("create", "", "serviceaccounts", "token", "default", "default")), NoOpinion, noRelation},
		{"own lease", onNode(resourceAttrs("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1")), Allow, ""},
		{"another node's lease", onNode(resourceAttrs("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2")), NoOpinion,
			"can only access node lease with the same name as the requesting node"},
		{"lease elsewhere", onNode(resourceAttrs("get", "coordination.k8s.io", "leases", "", "default", "n1")), NoOpinion,
			`can only access leases in the "kube-node-lease" system namespace`},
		{"own node", onNode(resourceAttrs("get", "", "nodes", "", "", "n1")), Allow, ""},
		{"another node", onNode(resourceAttrs("get", "", "nodes", "", "", "n2")), NoOpinion, "node 'n1' cannot read 'n2', only its own Node object"},
		{"node status", onNode(resourceAttrs("patch", "", "nodes", "status", "", "n1")), Allow, ""},
		{"its pods by field selector", onNode(withSelector(resourceAttrs("watch", "", "pods", "", "", ""), "spec.nodeName=n1")), Allow, ""},
		{"all pods", onNode(resourceAttrs("list", "", "pods", "", "", "")), NoOpinion, "can only list/watch pods with spec.nodeName field selector"},
		{"another node's pods", onNode(withSelector(resourceAttrs("list", "", "pods", "", "", ""), "spec.nodeName=n2")), NoOpinion,
			"can only list/watch pods with spec.nodeName field selector"},
		{"get its pod", onNode(resourceAttrs("get", "", "pods", "", "default", "web")), Allow, ""},
		{"get another node's pod", onNode(resourceAttrs("get", "", "pods", "", "default", "db")), NoOpinion, noRelation},
		{"pod status", onNode(resourceAttrs("update", "", "pods", "status", "default", "db")), Allow, ""},
		{"pod update", onNode(resourceAttrs("update", "", "pods", "", "default", "web")), NoOpinion, ""},
		{"services by the node rules", onNode(resourceAttrs("list", "", "services", "", "", "")), Allow, ""},
		{"events by the node rules", onNode(resourceAttrs("create", "", "events", "", "default", "")), Allow, ""},
		{"deployments are not for nodes", onNode(resourceAttrs("list", "apps", "deployments", "", "", "")), NoOpinion, ""},
		{"not a node", resourceAttrs("get", "", "secrets", "", "default", "registry"), NoOpinion, ""},
		{"a node without a name", Attributes{User: authn.User{Name: "kubelet", Groups: []string{NodesGroup}}, ResourceRequest: true, Verb: "get", Resource: "pods"},
			NoOpinion, ""},
		{"a nodes-group member named system:node:", Attributes{User: authn.User{Name: "system:node:", Groups: []string{NodesGroup}}, ResourceRequest: true, Verb: "get", Resource: "pods"},
			NoOpinion, `unknown node for user "system:node:"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, reason, err := node.Authorize(context.Background(), tt.a)
			if err != nil || d != tt.want || reason != tt.wantReason {
				t.Fatalf("Authorize = %v, %q, %v; want %v, %q", d, reason, err, tt.want, tt.wantReason)
			}
		})
	}
}
