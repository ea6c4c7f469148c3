package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/apiserver/authn"
)

// inFlightServer is a server with tiny in-flight limits and users alice,
// bob and carol (cluster admins by RBAC, so limited) and a kubelet.
func inFlightServer(t *testing.T, readOnly, mutating int) *apiservertest.Server {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{
		API: apiserver.Config{MaxRequestsInFlight: readOnly, MaxMutatingRequestsInFlight: mutating},
		Users: map[string]authn.User{
			"alice": {Name: "alice"}, "bob": {Name: "bob"}, "carol": {Name: "carol"},
			"node": {Name: "system:node:n1", Groups: []string{"system:nodes"}},
		},
	})
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "users-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "carol"},
		},
	}
	if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(context.Background(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

const configMapsPath = "/api/v1/namespaces/default/configmaps"

// send makes one request as token and returns its response with the body
// read.
func send(t *testing.T, s *apiservertest.Server, token, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.Config.Host+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// createAs creates a ConfigMap as token and returns the response.
func createAs(t *testing.T, s *apiservertest.Server, token string) (*http.Response, string) {
	return send(t, s, token, http.MethodPost, configMapsPath,
		strings.NewReader(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"probe-"}}`))
}

// hold starts a create as token whose body is still being sent, so that it
// stays in flight until the returned function finishes it. It returns once
// probe's creates are refused with 429, that is once the held create has
// its seat; a held create that was itself refused (a probe had the seat
// at that moment) is tried again.
func hold(t *testing.T, s *apiservertest.Server, token, probe string) (finish func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, s.Config.Host+configMapsPath, pr)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			// The body goes only once the handler reads it: a create
			// refused at once gets its answer without the client
			// blocking on a body that is not there yet.
			req.Header.Set("Expect", "100-continue")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		finish = func() {
			_, _ = fmt.Fprintf(pw, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"held-%s-"}}`, token)
			pw.Close()
			if code := <-done; code != http.StatusCreated {
				t.Errorf("the held create of %s ended with %d", token, code)
			}
		}
		for refused := false; !refused; {
			select {
			case code := <-done:
				if code != http.StatusTooManyRequests {
					t.Fatalf("the held create of %s ended with %d", token, code)
				}
				refused = true
				continue
			default:
			}
			if resp, _ := createAs(t, s, probe); resp.StatusCode == http.StatusTooManyRequests {
				return finish
			}
			if time.Now().After(deadline) {
				resp, body := createAs(t, s, probe)
				t.Fatalf("the create of %s was never held; the last probe: %d %s", token, resp.StatusCode, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func checkTooManyRequests(t *testing.T, who string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d %s, want 429", who, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("%s: Retry-After %q, want 1", who, got)
	}
	err := apierrors.FromObject(decodeStatus(t, body))
	if !apierrors.IsTooManyRequests(err) || err.Error() != "Too many requests, please try again later." {
		t.Errorf("%s: %v, want upstream's TooManyRequests", who, err)
	}
}

func TestRequestsBeyondTheInFlightLimitGetTooManyRequests(t *testing.T) {
	s := inFlightServer(t, 1, 2)

	// Alice may hold half the mutating seats: her second create is
	// refused at once.
	finishAlice := hold(t, s, "alice", "alice")
	resp, body := createAs(t, s, "alice")
	checkTooManyRequests(t, "alice's second create", resp, body)

	// Bob takes the other seat; now carol, who holds nothing, is refused.
	finishBob := hold(t, s, "bob", "carol")
	resp, body = createAs(t, s, "carol")
	checkTooManyRequests(t, "carol with every seat taken", resp, body)

	// The system's own components are not limited.
	if resp, body := createAs(t, s, "node"); resp.StatusCode == http.StatusTooManyRequests {
		t.Errorf("a kubelet was limited: %s", body)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Errorf("system:masters was limited: %v", err)
	}

	// Watches are long-running and take no seat: with one read-only seat,
	// alice holds two watches and still lists.
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Config.Host+configMapsPath+"?watch=true", nil)
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("watch %d: %d", i, resp.StatusCode)
		}
	}
	if resp, body := send(t, s, "alice", http.MethodGet, configMapsPath, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's list next to her watches: %d %s", resp.StatusCode, body)
	}

	// Seats come back when requests end.
	finishAlice()
	finishBob()
	if resp, body := createAs(t, s, "carol"); resp.StatusCode != http.StatusCreated {
		t.Errorf("carol after the seats were freed: %d %s", resp.StatusCode, body)
	}
}

func decodeStatus(t *testing.T, body string) *metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" {
		t.Fatalf("body is not a Status (%v): %s", err, body)
	}
	return &st
}
