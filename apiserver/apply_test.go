package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
)

const appliedConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
data:
  a: "1"
  b: "1"
`

func applyPath(manager string, force bool) string {
	p := "/api/v1/namespaces/default/configmaps/applied?fieldManager=" + manager
	if force {
		p += "&force=true"
	}
	return p
}

func TestServerSideApplyOwnsAndRemovesFields(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do("PATCH", applyPath("alice", false), string(types.ApplyYAMLPatchType), appliedConfigMap)
	if resp.code != http.StatusCreated {
		t.Fatalf("create by apply: %d %s", resp.code, resp.body)
	}
	var cm corev1.ConfigMap
	_ = json.Unmarshal(resp.body, &cm)
	if len(cm.ManagedFields) != 1 || cm.ManagedFields[0].Manager != "alice" || cm.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managedFields %+v", cm.ManagedFields)
	}
	// Applying again without b removes b: alice owned it and gave it up.
	resp = ts.do("PATCH", applyPath("alice", false), string(types.ApplyYAMLPatchType), strings.Replace(appliedConfigMap, "  b: \"1\"\n", "", 1))
	var reapplied corev1.ConfigMap
	_ = json.Unmarshal(resp.body, &reapplied)
	if _, hasB := reapplied.Data["b"]; resp.code != http.StatusOK || reapplied.Data["a"] != "1" || hasB {
		t.Fatalf("re-apply: %d %v", resp.code, reapplied.Data)
	}
}

func TestServerSideApplyConflictBetweenManagers(t *testing.T) {
	ts := newTestServer(t)
	if resp := ts.do("PATCH", applyPath("alice", false), string(types.ApplyYAMLPatchType), appliedConfigMap); resp.code != http.StatusCreated {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	bob := strings.Replace(appliedConfigMap, `a: "1"`, `a: "2"`, 1)
	resp := ts.do("PATCH", applyPath("bob", false), string(types.ApplyYAMLPatchType), bob)
	st := resp.status(t)
	if resp.code != http.StatusConflict || len(st.Details.Causes) == 0 || st.Details.Causes[0].Type != metav1.CauseTypeFieldManagerConflict ||
		!strings.Contains(st.Message, `conflict with "alice"`) {
		t.Fatalf("conflict: %d %+v", resp.code, st)
	}
	if resp := ts.do("PATCH", applyPath("bob", true), string(types.ApplyYAMLPatchType), bob); resp.code != http.StatusOK {
		t.Fatalf("forced apply: %d %s", resp.code, resp.body)
	}
}

func TestTypedApplyAndUpdateTrackManagers(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	applied, err := cms.Apply(ctx(t), corev1apply.ConfigMap("typed", "default").WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "controller", Force: true})
	if err != nil || applied.Data["k"] != "v" {
		t.Fatalf("apply: %v %+v", err, applied)
	}
	applied.Labels = map[string]string{"edited": "yes"}
	updated, err := cms.Update(ctx(t), applied, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]metav1.ManagedFieldsOperationType{}
	for _, e := range updated.ManagedFields {
		managers[e.Manager] = e.Operation
	}
	if managers["controller"] != metav1.ManagedFieldsOperationApply || managers["kubectl-edit"] != metav1.ManagedFieldsOperationUpdate {
		t.Fatalf("managers %v", managers)
	}
}
