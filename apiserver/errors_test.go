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
		{"malformed json", "POST", pods, "application/json", `{"metadata":`, 400, "BadRequest", `Pod in version "v1" cannot be handled as a Pod`},
		{"malformed yaml", "POST", pods, "application/yaml", "metadata: [", 400, "BadRequest", `Pod in version "v1" cannot be handled as a Pod`},
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
