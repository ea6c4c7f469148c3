package authn_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// secretsAt is a kube-system Secret store as the server reads it: the
// Secret's data as the API would return it (StringData folded into Data).
type secretsAt map[string]*corev1.Secret

func (s secretsAt) add(t *testing.T, secret *corev1.Secret) {
	t.Helper()
	secret = secret.DeepCopy()
	secret.Data = map[string][]byte{}
	for k, v := range secret.StringData {
		secret.Data[k] = []byte(v)
	}
	secret.StringData = nil
	s[secret.Name] = secret
}

func (s secretsAt) get(_ context.Context, name string) (*corev1.Secret, error) {
	if secret, ok := s[name]; ok {
		return secret.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func TestBootstrapTokenAuthentication(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	secrets := secretsAt{}
	mustSecret := func(token string, expires time.Time, groups ...string) *corev1.Secret {
		s, err := authn.BootstrapTokenSecret(token, expires, "test", groups)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	secrets.add(t, mustSecret("abcdef.0123456789abcdef", now.Add(time.Hour)))
	secrets.add(t, mustSecret("nolimt.0123456789abcdef", time.Time{}, "system:bootstrappers:worker"))
	secrets.add(t, mustSecret("expird.0123456789abcdef", now.Add(-time.Second)))
	notAuth := mustSecret("signon.0123456789abcdef", time.Time{})
	notAuth.StringData[authn.BootstrapTokenUsageAuthKey] = "false"
	secrets.add(t, notAuth)
	opaque := mustSecret("opaque.0123456789abcdef", time.Time{})
	opaque.Type = corev1.SecretTypeOpaque
	secrets.add(t, opaque)

	b, err := authn.NewBootstrapTokens(authn.BootstrapTokensConfig{Secret: secrets.get, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	static, err := authn.NewTokens(map[string]authn.User{"static-token": {Name: "someone"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(authn.Config{Tokens: []*authn.Tokens{static}})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Wrap(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := authn.UserFrom(r.Context())
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "authorization header leaked to handler", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s", u.Name, strings.Join(u.Groups, ","))
	}))

	tests := []struct {
		name     string
		token    string
		wantCode int
		wantUser string
	}{
		{"valid token", "abcdef.0123456789abcdef", 200, "system:bootstrap:abcdef system:bootstrappers,system:authenticated"},
		{"token without expiry, with an extra group", "nolimt.0123456789abcdef", 200, "system:bootstrap:nolimt system:bootstrappers,system:bootstrappers:worker,system:authenticated"},
		{"expired token", "expird.0123456789abcdef", 401, ""},
		{"unknown token id", "zzzzzz.0123456789abcdef", 401, ""},
		{"wrong secret", "abcdef.0123456789abcdee", 401, ""},
		{"token not for authentication", "signon.0123456789abcdef", 401, ""},
		{"Secret of another type", "opaque.0123456789abcdef", 401, ""},
		{"other tokens still reach the authenticator", "static-token", 200, "someone system:authenticated"},
		{"wrong other token", "not-a-token", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d (%s), want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if tt.wantCode == 200 && rec.Body.String() != tt.wantUser {
				t.Errorf("user = %q, want %q", rec.Body, tt.wantUser)
			}
			if tt.wantCode == 401 && !strings.Contains(rec.Body.String(), `"reason":"Unauthorized"`) {
				t.Errorf("401 body %s, want upstream's Unauthorized Status", rec.Body)
			}
		})
	}

	// Deleting the Secret revokes the token at once.
	delete(secrets, authn.BootstrapTokenSecretPrefix+"abcdef")
	if _, err := b.Authenticate(context.Background(), "abcdef.0123456789abcdef"); err == nil {
		t.Error("token still valid after its Secret was deleted")
	}
}

func TestNewBootstrapTokenHasTheUpstreamFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		tok, err := authn.NewBootstrapToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := authn.ParseBootstrapToken(tok); !ok {
			t.Fatalf("%q is not [a-z0-9]{6}.[a-z0-9]{16}", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q generated twice", tok)
		}
		seen[tok] = true
	}
	if _, err := authn.BootstrapTokenSecret("abcdef.0123456789abcdef", time.Time{}, "", []string{"system:masters"}); err == nil {
		t.Error("a token granting system:masters was accepted")
	}
}
