package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/apiserver/authn"
)

func TestProfilesAreForAdminsOnly(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{
		API:   apiserver.Config{Profiling: true},
		Users: map[string]authn.User{"alice": {Name: "alice"}},
	})
	resp, body := send(t, s, apiservertest.AdminToken, http.MethodGet, "/debug/pprof/goroutine?debug=1", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "goroutine profile: total ") {
		t.Fatalf("admin: %d %.80q", resp.StatusCode, body)
	}
	resp, body = send(t, s, "alice", http.MethodGet, "/debug/pprof/goroutine?debug=1", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `forbidden: User \"alice\" cannot get path \"/debug/pprof/goroutine\"`) {
		t.Fatalf("a user without the right: %d %s", resp.StatusCode, body)
	}
}

func TestNoProfilesWithoutProfiling(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{Users: map[string]authn.User{}})
	if resp, _ := send(t, s, apiservertest.AdminToken, http.MethodGet, "/debug/pprof/goroutine?debug=1", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("profiling off: %d", resp.StatusCode)
	}
}
