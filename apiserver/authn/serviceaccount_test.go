package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/apiserver/authn"
)

func newSATokens(t *testing.T, now func() time.Time, audiences ...string) *authn.ServiceAccountTokens {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{Key: key, Now: now, Audiences: audiences})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// whoami answers with the authenticated user, or the status code.
func whoami(t *testing.T, a *authn.Authenticator, token string) (int, string) {
	t.Helper()
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := authn.UserFrom(r.Context())
		fmt.Fprintf(w, "%s %s %s", u.Name, u.UID, strings.Join(u.Groups, ","))
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestServiceAccountTokens(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	sa := newSATokens(t, clock)
	static, err := authn.NewTokens(map[string]authn.User{"a.b.c": {Name: "dotted-static"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{ServiceAccounts: sa, Tokens: []*authn.Tokens{static}})
	if err != nil {
		t.Fatal(err)
	}
	claims := authn.ServiceAccountClaims{
		Namespace:      "team-a",
		ServiceAccount: authn.ObjectRef{Name: "builder", UID: "sa-uid"},
		Pod:            &authn.ObjectRef{Name: "web-1", UID: "pod-uid"},
	}
	token, exp, err := sa.Issue(claims)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Hour).Truncate(time.Second); !exp.Equal(want) {
		t.Errorf("expiry %v, want one hour: %v", exp, want)
	}

	t.Run("valid token is the service account", func(t *testing.T) {
		code, body := whoami(t, a, token)
		want := "system:serviceaccount:team-a:builder sa-uid system:serviceaccounts,system:serviceaccounts:team-a,system:authenticated"
		if code != 200 || body != want {
			t.Errorf("%d %q, want %q", code, body, want)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		now = now.Add(time.Hour + 2*time.Minute)
		defer func() { now = now.Add(-time.Hour - 2*time.Minute) }()
		if code, body := whoami(t, a, token); code != 401 {
			t.Errorf("expired token: %d %s", code, body)
		}
	})
	t.Run("tampered payload", func(t *testing.T) {
		parts := strings.Split(token, ".")
		other, _, err := sa.Issue(authn.ServiceAccountClaims{Namespace: "kube-system", ServiceAccount: authn.ObjectRef{Name: "admin"}})
		if err != nil {
			t.Fatal(err)
		}
		forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]
		if code, body := whoami(t, a, forged); code != 401 {
			t.Errorf("forged token: %d %s", code, body)
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		foreign, _, err := newSATokens(t, clock).Issue(claims)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := whoami(t, a, foreign); code != 401 {
			t.Errorf("foreign token: %d %s", code, body)
		}
	})
	t.Run("another audience", func(t *testing.T) {
		vault, _, err := sa.Issue(authn.ServiceAccountClaims{Namespace: "team-a", ServiceAccount: authn.ObjectRef{Name: "builder"}, Audiences: []string{"vault"}})
		if err != nil {
			t.Fatal(err)
		}
		if code, body := whoami(t, a, vault); code != 401 {
			t.Errorf("token for another audience: %d %s", code, body)
		}
	})
	t.Run("static token with dots still works", func(t *testing.T) {
		if code, body := whoami(t, a, "a.b.c"); code != 200 || !strings.HasPrefix(body, "dotted-static ") {
			t.Errorf("static token: %d %s", code, body)
		}
	})
}

// checkedTokens issues tokens whose objects are checked against objects,
// "resource/namespace/name" -> uid, which the test changes as the cluster
// would; a is an authenticator that accepts them.
func checkedTokens(t *testing.T, objects map[string]string) (sa *authn.ServiceAccountTokens, a *authn.Authenticator) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sa, err = authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{
		Key: key,
		Lookup: func(_ context.Context, namespace, resource, name string) (string, error) {
			uid, ok := objects[resource+"/"+namespace+"/"+name]
			if !ok {
				return "", errors.New("not found")
			}
			return uid, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, err = authn.New(authn.Config{ServiceAccounts: sa}); err != nil {
		t.Fatal(err)
	}
	return sa, a
}

func TestServiceAccountTokensRevokedWithTheirObjects(t *testing.T) {
	objects := map[string]string{
		"serviceaccounts/team-a/builder": "sa-uid",
		"pods/team-a/web-1":              "pod-uid",
	}
	sa, a := checkedTokens(t, objects)
	token, _, err := sa.Issue(authn.ServiceAccountClaims{
		Namespace:      "team-a",
		ServiceAccount: authn.ObjectRef{Name: "builder", UID: "sa-uid"},
		Pod:            &authn.ObjectRef{Name: "web-1", UID: "pod-uid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := whoami(t, a, token); code != 200 {
		t.Fatalf("token of existing objects: %d %s", code, body)
	}

	objects["pods/team-a/web-1"] = "new-pod-uid" // deleted and created again
	if code, _ := whoami(t, a, token); code != 401 {
		t.Errorf("token bound to a recreated pod: %d, want 401", code)
	}
	objects["pods/team-a/web-1"] = "pod-uid"
	delete(objects, "serviceaccounts/team-a/builder")
	if code, _ := whoami(t, a, token); code != 401 {
		t.Errorf("token of a deleted service account: %d, want 401", code)
	}
}

// A token bound to a secret dies with the secret; a token bound to a node
// dies with the node; the node named in a pod-bound token is information
// only, as upstream treats it.
func TestServiceAccountTokensBoundToSecretsAndNodes(t *testing.T) {
	objects := map[string]string{
		"serviceaccounts/team-a/builder": "sa-uid",
		"secrets/team-a/anchor":          "secret-uid",
		"nodes//n1":                      "node-uid",
		"pods/team-a/web-1":              "pod-uid",
	}
	sa, a := checkedTokens(t, objects)
	builder := authn.ObjectRef{Name: "builder", UID: "sa-uid"}
	issue := func(c authn.ServiceAccountClaims) string {
		t.Helper()
		c.Namespace, c.ServiceAccount = "team-a", builder
		token, _, err := sa.Issue(c)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	secretToken := issue(authn.ServiceAccountClaims{Secret: &authn.ObjectRef{Name: "anchor", UID: "secret-uid"}})
	nodeToken := issue(authn.ServiceAccountClaims{Node: &authn.ObjectRef{Name: "n1", UID: "node-uid"}})
	podToken := issue(authn.ServiceAccountClaims{Pod: &authn.ObjectRef{Name: "web-1", UID: "pod-uid"}, Node: &authn.ObjectRef{Name: "n1", UID: "node-uid"}})
	for name, token := range map[string]string{"secret": secretToken, "node": nodeToken, "pod": podToken} {
		if code, body := whoami(t, a, token); code != 200 {
			t.Fatalf("%s-bound token: %d %s", name, code, body)
		}
	}
	delete(objects, "secrets/team-a/anchor")
	delete(objects, "nodes//n1")
	if code, _ := whoami(t, a, secretToken); code != 401 {
		t.Errorf("token of a deleted secret: %d, want 401", code)
	}
	if code, _ := whoami(t, a, nodeToken); code != 401 {
		t.Errorf("token of a deleted node: %d, want 401", code)
	}
	if code, body := whoami(t, a, podToken); code != 200 {
		t.Errorf("pod-bound token after its node went: %d %s, want 200", code, body)
	}
	if _, _, err := sa.Issue(authn.ServiceAccountClaims{Namespace: "team-a", ServiceAccount: builder,
		Secret: &authn.ObjectRef{Name: "anchor"}, Pod: &authn.ObjectRef{Name: "web-1"}}); err == nil {
		t.Error("issued a token bound to a secret and a pod at once")
	}
}

// The user of a pod-bound token carries upstream's extra: the pod, its
// node and the token's id.
func TestServiceAccountTokenUserExtra(t *testing.T) {
	now := time.Now()
	sa := newSATokens(t, func() time.Time { return now })
	a, err := authn.New(authn.Config{ServiceAccounts: sa})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := sa.Issue(authn.ServiceAccountClaims{
		Namespace: "team-a", ServiceAccount: authn.ObjectRef{Name: "builder", UID: "sa-uid"},
		Pod:  &authn.ObjectRef{Name: "web-1", UID: "pod-uid"},
		Node: &authn.ObjectRef{Name: "n1", UID: "node-uid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got authn.User
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = authn.UserFrom(r.Context()) }))
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(httptest.NewRecorder(), req)
	for key, want := range map[string]string{
		authn.ExtraPodName: "web-1", authn.ExtraPodUID: "pod-uid", authn.ExtraNodeName: "n1", authn.ExtraNodeUID: "node-uid",
	} {
		if v := got.Extra[key]; len(v) != 1 || v[0] != want {
			t.Errorf("extra %s = %v, want %s", key, v, want)
		}
	}
	if v := got.Extra[authn.ExtraCredentialID]; len(v) != 1 || !strings.HasPrefix(v[0], "JTI=") || len(v[0]) <= len("JTI=") {
		t.Errorf("extra %s = %v, want JTI=<the token's jti>", authn.ExtraCredentialID, v)
	}
}
