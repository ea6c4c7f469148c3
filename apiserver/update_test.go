package apiserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Upstream's status strategies reset spec but keep the client's metadata
// changes, except a Deployment's labels and a pod's ownerReferences.
func TestStatusWritesKeepMetadataChangesAsUpstream(t *testing.T) {
	ts := newTestServer(t)
	template := `"selector":{"matchLabels":{"app":"w"}},"template":{"metadata":{"labels":{"app":"w"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`
	tests := []struct {
		resource    string // collection path
		create      string
		changeSpec  func(spec map[string]any)
		keepsLabels bool
		keepsOwners bool
	}{
		{"/apis/apps/v1/namespaces/default/deployments", `{"metadata":{"name":"o"},"spec":{"replicas":1,` + template + `}}`,
			func(spec map[string]any) { spec["replicas"] = 9 }, true, false},
		{"/apis/apps/v1/namespaces/default/replicasets", `{"metadata":{"name":"o"},"spec":{"replicas":1,` + template + `}}`,
			func(spec map[string]any) { spec["replicas"] = 9 }, false, false},
		{"/api/v1/namespaces/default/services", `{"metadata":{"name":"o"},"spec":{"ports":[{"port":80}]}}`,
			func(spec map[string]any) { spec["selector"] = map[string]any{"app": "other"} }, false, false},
		{"/api/v1/nodes", `{"metadata":{"name":"o"}}`,
			func(spec map[string]any) { spec["unschedulable"] = true }, false, false},
		{"/api/v1/namespaces/default/pods", `{"metadata":{"name":"o"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`,
			func(spec map[string]any) { spec["activeDeadlineSeconds"] = 5 }, false, true},
		{"/api/v1/namespaces", `{"metadata":{"name":"o"}}`,
			func(spec map[string]any) { spec["finalizers"] = []any{"example.com/x"} }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			if resp := ts.do("POST", tt.resource, "application/json", tt.create); resp.code != http.StatusCreated {
				t.Fatalf("create: %d %s", resp.code, resp.body)
			}
			stored := getJSON(t, ts, tt.resource+"/o")
			obj := getJSON(t, ts, tt.resource+"/o")
			meta := obj["metadata"].(map[string]any)
			labels, _ := meta["labels"].(map[string]any)
			if labels == nil {
				labels = map[string]any{}
			}
			labels["added"] = "label"
			meta["labels"] = labels
			meta["annotations"] = map[string]any{"added": "annotation"}
			meta["ownerReferences"] = []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "6f3b6a5e-0000-4000-8000-000000000001"}}
			if obj["spec"] == nil {
				obj["spec"] = map[string]any{}
			}
			tt.changeSpec(obj["spec"].(map[string]any))
			body, _ := json.Marshal(obj)
			if resp := ts.do("PUT", tt.resource+"/o/status", "application/json", string(body)); resp.code != http.StatusOK {
				t.Fatalf("status update: %d %s", resp.code, resp.body)
			}
			got := getJSON(t, ts, tt.resource+"/o")
			gotMeta, storedMeta := got["metadata"].(map[string]any), stored["metadata"].(map[string]any)
			if !reflect.DeepEqual(got["spec"], stored["spec"]) {
				t.Errorf("spec changed through /status: %v, was %v", got["spec"], stored["spec"])
			}
			if !reflect.DeepEqual(gotMeta["annotations"], meta["annotations"]) {
				t.Errorf("annotations %v, want the client's %v", gotMeta["annotations"], meta["annotations"])
			}
			wantLabels, wantOwners := meta["labels"], meta["ownerReferences"]
			if tt.keepsLabels {
				wantLabels = storedMeta["labels"]
			}
			if tt.keepsOwners {
				wantOwners = storedMeta["ownerReferences"]
			}
			if !reflect.DeepEqual(gotMeta["labels"], wantLabels) || !reflect.DeepEqual(gotMeta["ownerReferences"], wantOwners) {
				t.Errorf("labels %v, ownerReferences %v; want %v, %v", gotMeta["labels"], gotMeta["ownerReferences"], wantLabels, wantOwners)
			}
		})
	}
}

func TestStatusPatchKeepsDeploymentLabels(t *testing.T) {
	ts := newTestServer(t)
	deploys := "/apis/apps/v1/namespaces/default/deployments"
	body := `{"metadata":{"name":"d","labels":{"tier":"web"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"w"}},"template":{"metadata":{"labels":{"app":"w"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`
	if resp := ts.do("POST", deploys, "application/json", body); resp.code != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.code, resp.body)
	}
	patch := `{"metadata":{"labels":{"tier":"db"},"annotations":{"seen":"yes"}},"spec":{"replicas":4},"status":{"observedGeneration":1}}`
	if resp := ts.do("PATCH", deploys+"/d/status", "application/merge-patch+json", patch); resp.code != http.StatusOK {
		t.Fatalf("status patch: %d %s", resp.code, resp.body)
	}
	got := getJSON(t, ts, deploys+"/d")
	meta, spec, status := got["metadata"].(map[string]any), got["spec"].(map[string]any), got["status"].(map[string]any)
	if meta["labels"].(map[string]any)["tier"] != "web" || meta["annotations"].(map[string]any)["seen"] != "yes" ||
		spec["replicas"] != float64(1) || status["observedGeneration"] != float64(1) {
		t.Fatalf("after status patch: metadata %v, spec.replicas %v, status %v; want labels kept, annotation added, spec kept, status written",
			meta, spec["replicas"], status)
	}
}

func getJSON(t *testing.T, ts *testServer, path string) map[string]any {
	t.Helper()
	resp := ts.do("GET", path, "", "")
	if resp.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.code, resp.body)
	}
	var obj map[string]any
	if err := json.Unmarshal(resp.body, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// Server-side apply through /status owns what the write may change: not a
// Deployment's labels, which upstream's GetResetFields names.
func TestStatusApplyDoesNotOwnResetMetadata(t *testing.T) {
	ts := newTestServer(t)
	deploys := "/apis/apps/v1/namespaces/default/deployments"
	body := `{"metadata":{"name":"d","labels":{"tier":"web"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"w"}},"template":{"metadata":{"labels":{"app":"w"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`
	if resp := ts.do("POST", deploys, "application/json", body); resp.code != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.code, resp.body)
	}
	apply := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"tier":"db"},"annotations":{"seen":"yes"}},"status":{"observedGeneration":1}}`
	if resp := ts.do("PATCH", deploys+"/d/status?fieldManager=status-writer", "application/apply-patch+yaml", apply); resp.code != http.StatusOK {
		t.Fatalf("status apply: %d %s", resp.code, resp.body)
	}
	got := getJSON(t, ts, deploys+"/d")
	meta := got["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["tier"] != "web" {
		t.Fatalf("labels changed through /status: %v", meta["labels"])
	}
	for _, entry := range meta["managedFields"].([]any) {
		e := entry.(map[string]any)
		if e["manager"] != "status-writer" {
			continue
		}
		owned, _ := json.Marshal(e["fieldsV1"])
		if e["subresource"] != "status" || !strings.Contains(string(owned), `"f:annotations"`) ||
			!strings.Contains(string(owned), `"f:status"`) || strings.Contains(string(owned), `"f:labels"`) {
			t.Fatalf("status-writer's managed fields %v %s; want subresource status, annotations and status, no labels", e["subresource"], owned)
		}
		return
	}
	t.Fatalf("no managedFields entry for status-writer: %v", meta["managedFields"])
}
