package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
)

func TestDiscoveryClientSeesEveryResourceWithShortNames(t *testing.T) {
	ts := newTestServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(ts.config)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	short := map[string]string{}
	subresources := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				subresources[l.GroupVersion+" "+r.Name+" "+r.Kind] = true
			}
			for _, s := range r.ShortNames {
				short[s] = l.GroupVersion + "/" + r.Name
			}
		}
	}
	for s, want := range map[string]string{
		"po": "v1/pods", "svc": "v1/services", "deploy": "apps/v1/deployments", "rs": "apps/v1/replicasets",
		"ns": "v1/namespaces", "no": "v1/nodes", "cm": "v1/configmaps", "ep": "v1/endpoints", "ev": "v1/events",
		"sa": "v1/serviceaccounts", "ds": "apps/v1/daemonsets", "sts": "apps/v1/statefulsets",
	} {
		if short[s] != want && !(s == "ev" && short[s] == "events.k8s.io/v1/events") {
			t.Errorf("short name %s -> %q, want %q", s, short[s], want)
		}
	}
	for _, want := range []string{"v1 pods/status Pod", "apps/v1 deployments/scale Scale", "v1 pods/binding Binding", "v1 pods/log Pod"} {
		if !subresources[want] {
			t.Errorf("subresource %q missing", want)
		}
	}
}

func TestAggregatedDiscoveryAnswersWithExactContentType(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/api", "/apis"} {
		resp := ts.do("GET", path, "", "", "Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
		if got := resp.header.Get("Content-Type"); got != aggregatedDiscoveryContentType {
			t.Fatalf("%s Content-Type %q", path, got)
		}
		var doc struct {
			Kind  string `json:"kind"`
			Items []struct {
				Metadata struct{ Name string } `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(resp.body, &doc); err != nil || doc.Kind != "APIGroupDiscoveryList" || len(doc.Items) == 0 {
			t.Fatalf("%s: %v %s", path, err, resp.body)
		}
	}
	// Without the v2 Accept the legacy shape comes back.
	resp := ts.do("GET", "/apis", "", "")
	if !strings.Contains(string(resp.body), `"kind":"APIGroupList"`) {
		t.Fatalf("legacy /apis: %s", resp.body)
	}
}

func TestVersionAndHealthNeedNothing(t *testing.T) {
	ts := newTestServer(t)
	dc, _ := discovery.NewDiscoveryClientForConfig(ts.config)
	info, err := dc.ServerVersion()
	if err != nil || info.GitVersion != "v1.37.2+tinykube" || info.Major != "1" || info.Minor != "37" {
		t.Fatalf("version: %v %+v", err, info)
	}
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		resp := ts.do("GET", path, "", "")
		if resp.code != http.StatusOK || string(resp.body) != "ok" {
			t.Fatalf("%s: %d %q", path, resp.code, resp.body)
		}
	}
	resp := ts.do("GET", "/readyz?verbose", "", "")
	if !strings.Contains(string(resp.body), "[+]etcd ok") || !strings.HasSuffix(string(resp.body), "readyz check passed\n") {
		t.Fatalf("verbose readyz: %q", resp.body)
	}
}

// kubectl trusts the server with fieldValidation (and so apply, create and
// edit work) when the v3 document has a PATCH operation for the kind with
// a fieldValidation query parameter.
func TestOpenAPIV3HasPatchWithFieldValidation(t *testing.T) {
	ts := newTestServer(t)
	dc, _ := discovery.NewDiscoveryClientForConfig(ts.config)
	root := openapi3.NewRoot(dc.OpenAPIV3())
	doc, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatalf("apps/v1 spec: %v", err)
	}
	item := doc.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
	if item == nil || item.Patch == nil {
		t.Fatal("no PATCH for deployments")
	}
	gvk, _ := item.Patch.Extensions["x-kubernetes-group-version-kind"].(map[string]any)
	if gvk["kind"] != "Deployment" {
		t.Fatalf("gvk extension %v", item.Patch.Extensions)
	}
	found := false
	for _, p := range item.Patch.Parameters {
		if p.Name == "fieldValidation" && p.In == "query" {
			found = true
		}
	}
	if !found {
		t.Fatal("PATCH has no fieldValidation query parameter")
	}
	// kubectl explain finds the kind's schema by its GVK extension.
	deployment := doc.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
	if deployment == nil || deployment.Properties["spec"].AllOf[0].Ref.String() != "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec" ||
		!strings.Contains(deployment.Description, "Deployment enables declarative updates") {
		t.Fatalf("Deployment schema %+v", deployment)
	}
	if _, err := dc.OpenAPISchema(); err != nil {
		t.Fatalf("openapi v2 (protobuf): %v", err)
	}
}
