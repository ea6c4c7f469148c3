package apiserver

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadRequestsGetUpstreamStatus(t *testing.T) {
	ts := newTestServer(t)
	const pods = "/api/v1/namespaces/default/pods"
	validPod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantCode    int
		wantReason  string
		wantMessage string
	}{
		{"create in a missing namespace", "POST", "/api/v1/namespaces/nope/configmaps", "application/json",
			`{"metadata":{"name":"x"}}`, 404, "NotFound", `namespaces "nope" not found`},
		{"invalid name", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"metadata":{"name":"Bad_Name"}}`, 422, "Invalid",
			`ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of`},
		{"malformed json", "POST", pods, "application/json", `{"metadata":`, 400, "BadRequest",
			`the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: unexpected end of JSON input ({"metadata":)`},
		{"malformed json is summarized", "POST", pods, "application/json", `{"metadata":{"name":"a-rather-long-name"`, 400, "BadRequest",
			`the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: unexpected end of JSON input ({"metadata":{"name":"a-rather- ...)`},
		{"malformed yaml", "POST", pods, "application/yaml", "metadata: [", 400, "BadRequest",
			`the object provided is unrecognized (must be of type Pod): yaml: line 1: did not find expected node content (6d657461646174613a205b)`},
		{"body that is not protobuf", "POST", pods, "application/vnd.kubernetes.protobuf", "xyz", 400, "BadRequest",
			`the object provided is unrecognized (must be of type Pod): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] (78797a)`},
		{"empty body", "POST", pods, "application/json", "", 400, "BadRequest",
			`the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: unexpected end of JSON input (<empty>)`},
		{"wrong type of a field", "POST", pods, "application/json", `{"metadata":{"name":"p"},"spec":{"containers":"busybox"}}`, 400, "BadRequest",
			`Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container`},
		{"wrong type on update", "PUT", "/api/v1/namespaces/default/configmaps/x", "application/json", `{"metadata":{"name":"x"},"data":[]}`, 400, "BadRequest",
			`ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal array into Go struct field ConfigMap.data of type map[string]string`},
		{"unknown media type", "POST", pods, "text/plain", validPod, 415, "UnsupportedMediaType",
			"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"},
		{"body over 3 MiB", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"metadata":{"name":"big"},"data":{"x":"` + strings.Repeat("a", 3*1024*1024) + `"}}`, 413, "RequestEntityTooLarge", "limit is 3145728"},
		{"unknown field with strict validation", "POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", "application/json",
			`{"metadata":{"name":"s"},"spec":{"portz":[{"port":80}]}}`, 400, "BadRequest",
			`Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.portz"`},
		{"service without ports", "POST", "/api/v1/namespaces/default/services", "application/json",
			`{"metadata":{"name":"s"},"spec":{"selector":{"app":"x"}}}`, 422, "Invalid", `Service "s" is invalid: spec.ports: Required value`},
		{"node port below range", "POST", "/api/v1/namespaces/default/services", "application/json",
			`{"metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":29999}]}}`, 422, "Invalid",
			`spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767`},
		{"pod without containers", "POST", pods, "application/json",
			`{"metadata":{"name":"p"},"spec":{}}`, 422, "Invalid", `Pod "p" is invalid: spec.containers: Required value`},
		{"get missing object", "GET", pods + "/ghost", "", "", 404, "NotFound", `pods "ghost" not found`},
		{"unknown resource", "GET", "/api/v1/namespaces/default/widgets", "", "", 404, "NotFound", "the server could not find the requested resource"},
		{"unsupported field selector", "GET", pods + "?fieldSelector=spec.color%3Dred", "", "", 400, "BadRequest", "field label not supported: spec.color"},
		{"exact list at resourceVersion 0", "GET", pods + "?resourceVersion=0&resourceVersionMatch=Exact", "", "", 422, "Invalid", `resourceVersionMatch "exact" is forbidden for resourceVersion "0"`},
		{"list from the future", "GET", pods + "?resourceVersion=99999999", "", "", 504, "Timeout", "Too large resource version: 99999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.method, tt.path, tt.contentType, tt.body)
			st := resp.status(t)
			if resp.code != tt.wantCode || int(st.Code) != tt.wantCode || string(st.Reason) != tt.wantReason || !strings.Contains(st.Message, tt.wantMessage) {
				t.Fatalf("got %d %s %q\nwant %d %s containing %q", resp.code, st.Reason, st.Message, tt.wantCode, tt.wantReason, tt.wantMessage)
			}
			if tt.wantCode == http.StatusBadRequest && (st.Message != tt.wantMessage || st.Status != "Failure" || st.Details != nil) {
				t.Fatalf("400 Status %+v\nwant exactly message %q, status Failure and no details, as upstream", st, tt.wantMessage)
			}
		})
	}
	// Nothing of the refused creates was stored.
	resp := ts.do("GET", "/api/v1/namespaces/default/services", "", "")
	if resp.code != http.StatusOK || strings.Count(string(resp.body), `"name":"s"`) != 0 {
		t.Fatalf("refused service was stored: %s", resp.body)
	}
}

func TestUnknownFieldIsAWarningByDefault(t *testing.T) {
	ts := newTestServer(t)
	resp := ts.do("POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"metadata":{"name":"w"},"dta":{}}`)
	if resp.code != http.StatusCreated {
		t.Fatalf("got %d: %s", resp.code, resp.body)
	}
	if got := resp.header.Get("Warning"); !strings.Contains(got, `unknown field \"dta\"`) {
		t.Fatalf("Warning header = %q", got)
	}
}

// Upstream's negotiation errors are Statuses without details; the accepted
// media types are those of the request: bodies for create and update,
// patch formats for patch.
func TestUnsupportedMediaTypeStatus(t *testing.T) {
	ts := newTestServer(t)
	const cm = "/api/v1/namespaces/default/configmaps"
	tests := []struct {
		name, method, path, body string
		want                     string
	}{
		{"create", "POST", cm, `{"metadata":{"name":"x"}}`,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf","reason":"UnsupportedMediaType","code":415}`},
		{"update", "PUT", cm + "/x", `{"metadata":{"name":"x"}}`,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf","reason":"UnsupportedMediaType","code":415}`},
		{"patch", "PATCH", cm + "/x", `{}`,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml","reason":"UnsupportedMediaType","code":415}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.method, tt.path, "text/plain", tt.body)
			if resp.code != http.StatusUnsupportedMediaType || strings.TrimSpace(string(resp.body)) != tt.want {
				t.Fatalf("got %d %s\nwant 415 %s", resp.code, resp.body, tt.want)
			}
		})
	}
}

func TestCreateInTerminatingNamespaceHasUpstreamCause(t *testing.T) {
	ts := newTestServer(t)
	if resp := ts.do("POST", "/api/v1/namespaces", "application/json", `{"metadata":{"name":"leaving"}}`); resp.code != http.StatusCreated {
		t.Fatalf("create namespace: %d %s", resp.code, resp.body)
	}
	// spec.finalizers keeps the namespace terminating: no namespace
	// controller runs here.
	if resp := ts.do("DELETE", "/api/v1/namespaces/leaving", "", ""); resp.code != http.StatusOK {
		t.Fatalf("delete namespace: %d %s", resp.code, resp.body)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"metadata":{"name":"cm"}}`,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"cm\" is forbidden: unable to create new content in namespace leaving because it is being terminated","reason":"Forbidden","details":{"name":"cm","kind":"configmaps","causes":[{"reason":"NamespaceTerminating","message":"namespace leaving is being terminated","field":"metadata.namespace"}]},"code":403}`},
		{`{"metadata":{"generateName":"cm-"}}`,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"cm-\" is forbidden: unable to create new content in namespace leaving because it is being terminated","reason":"Forbidden","details":{"name":"cm-","kind":"configmaps","causes":[{"reason":"NamespaceTerminating","message":"namespace leaving is being terminated","field":"metadata.namespace"}]},"code":403}`},
	} {
		resp := ts.do("POST", "/api/v1/namespaces/leaving/configmaps", "application/json", tt.body)
		if resp.code != http.StatusForbidden || strings.TrimSpace(string(resp.body)) != tt.want {
			t.Fatalf("got %d %s\nwant 403 %s", resp.code, resp.body, tt.want)
		}
	}
}

// Patches are decoded as upstream's patch handler does: a patch that is
// not JSON is a 400, a result that is not an object of the resource's
// type a 422 with a "patch" cause.
func TestPatchErrorsAreUpstreams(t *testing.T) {
	ts := newTestServer(t)
	const cm = "/api/v1/namespaces/default/configmaps"
	if resp := ts.do("POST", cm, "application/json", `{"metadata":{"name":"p"},"data":{"a":"b"}}`); resp.code != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.code, resp.body)
	}
	tests := []struct {
		name, query, contentType, patch string
		wantCode                        int
		wantReason                      string
		wantPrefix, wantSuffix          string
	}{
		{"merge patch that is not JSON", "", "application/merge-patch+json", `{"data":`, 400, "BadRequest",
			"error decoding patch: unexpected end of JSON input", ""},
		{"JSON patch that is not JSON", "", "application/json-patch+json", `[{"op":`, 400, "BadRequest",
			"error decoding patch: unexpected end of JSON input", ""},
		{"JSON patch that does not apply", "", "application/json-patch+json", `[{"op":"remove","path":"/data/nope"}]`, 422, "Invalid",
			"the server rejected our request due to an error in our request", ""},
		{"merge patch giving a field the wrong type", "", "application/merge-patch+json", `{"data":[]}`, 422, "Invalid",
			` "" is invalid: patch: Invalid value: "{\"apiVersion\":\"v1\",\"data\":[],`,
			`": json: cannot unmarshal array into Go struct field ConfigMap.data of type map[string]string`},
		{"strategic merge patch with an unknown field, strict", "?fieldValidation=Strict", "application/strategic-merge-patch+json", `{"dta":{"x":"y"}}`, 422, "Invalid",
			` "" is invalid: patch: Invalid value: "map[dta:map[x:y]]": strict decoding error: unknown field "dta"`, ""},
		{"strategic merge patch that is not JSON", "", "application/strategic-merge-patch+json", `{"data"`, 400, "BadRequest",
			"unexpected end of JSON input", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do("PATCH", cm+"/p"+tt.query, tt.contentType, tt.patch)
			st := resp.status(t)
			if resp.code != tt.wantCode || string(st.Reason) != tt.wantReason ||
				!strings.HasPrefix(st.Message, tt.wantPrefix) || !strings.HasSuffix(st.Message, tt.wantSuffix) {
				t.Fatalf("got %d %q %q\nwant %d %q starting %q and ending %q", resp.code, st.Reason, st.Message, tt.wantCode, tt.wantReason, tt.wantPrefix, tt.wantSuffix)
			}
		})
	}
	resp := ts.do("PATCH", cm+"/p", "application/strategic-merge-patch+json", `{"dta":{"x":"y"},"data":{"c":"d"}}`)
	if resp.code != http.StatusOK || !strings.Contains(resp.header.Get("Warning"), `unknown field \"dta\"`) {
		t.Fatalf("patch with an unknown field under Warn: %d, Warning %q", resp.code, resp.header.Get("Warning"))
	}
}
