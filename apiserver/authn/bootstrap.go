package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bootstrap tokens, as upstream (kubeadm, TLS bootstrapping) defines them:
// a token `<id>.<secret>` is valid while a Secret of type
// bootstrap.kubernetes.io/token named bootstrap-token-<id> in kube-system
// holds the same secret, allows authentication and has not expired. It
// authenticates as system:bootstrap:<id> in group system:bootstrappers.
const (
	BootstrapUserPrefix        = "system:bootstrap:"
	GroupBootstrappers         = "system:bootstrappers"
	BootstrapTokenSecretPrefix = "bootstrap-token-"
	BootstrapTokenNamespace    = metav1.NamespaceSystem

	// The Secret's data keys.
	BootstrapTokenIDKey          = "token-id"
	BootstrapTokenSecretKey      = "token-secret"
	BootstrapTokenExpirationKey  = "expiration"
	BootstrapTokenDescriptionKey = "description"
	BootstrapTokenExtraGroupsKey = "auth-extra-groups"
	BootstrapTokenUsageAuthKey   = "usage-bootstrap-authentication"
	BootstrapTokenUsageSignKey   = "usage-bootstrap-signing"
)

var (
	bootstrapTokenPattern = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)
	// Extra groups must stay below system:bootstrappers, so a token can
	// never grant a privileged group such as system:masters.
	bootstrapGroupPattern = regexp.MustCompile(`^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`)
)

// ParseBootstrapToken splits a token in the bootstrap format into its id
// and secret.
func ParseBootstrapToken(token string) (id, secret string, ok bool) {
	m := bootstrapTokenPattern.FindStringSubmatch(token)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// NewBootstrapToken returns a fresh random token `<id>.<secret>`.
func NewBootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6+16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("authn: %w", err)
	}
	for i := range b {
		// 256 is not a multiple of 36; the bias this leaves is below
		// what matters for 22 characters, and upstream accepts it too.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:6]) + "." + string(b[6:]), nil
}

// BootstrapTokenSecret is the Secret that makes token valid for
// authentication until expires (never when zero), as `kubeadm token
// create` writes it.
func BootstrapTokenSecret(token string, expires time.Time, description string, extraGroups []string) (*corev1.Secret, error) {
	id, secret, ok := ParseBootstrapToken(token)
	if !ok {
		return nil, errors.New("authn: a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	for _, g := range extraGroups {
		if !bootstrapGroupPattern.MatchString(g) {
			return nil, fmt.Errorf("authn: extra group %q must match %s", g, bootstrapGroupPattern)
		}
	}
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: BootstrapTokenSecretPrefix + id, Namespace: BootstrapTokenNamespace},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			BootstrapTokenIDKey:        id,
			BootstrapTokenSecretKey:    secret,
			BootstrapTokenUsageAuthKey: "true",
			BootstrapTokenUsageSignKey: "true",
		},
	}
	if !expires.IsZero() {
		s.StringData[BootstrapTokenExpirationKey] = expires.UTC().Format(time.RFC3339)
	}
	if description != "" {
		s.StringData[BootstrapTokenDescriptionKey] = description
	}
	if len(extraGroups) > 0 {
		s.StringData[BootstrapTokenExtraGroupsKey] = strings.Join(extraGroups, ",")
	}
	return s, nil
}

// BootstrapTokensConfig configures BootstrapTokens.
type BootstrapTokensConfig struct {
	// Secret returns the named Secret of kube-system, or an error when it
	// does not exist or cannot be read. Required.
	Secret func(ctx context.Context, name string) (*corev1.Secret, error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// BootstrapTokens authenticates bootstrap tokens against their Secrets,
// read at every request: deleting the Secret, or its expiry, revokes the
// token at once.
type BootstrapTokens struct {
	secret func(ctx context.Context, name string) (*corev1.Secret, error)
	now    func() time.Time
}

// NewBootstrapTokens validates cfg.
func NewBootstrapTokens(cfg BootstrapTokensConfig) (*BootstrapTokens, error) {
	if cfg.Secret == nil {
		return nil, errors.New("authn: BootstrapTokensConfig.Secret is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &BootstrapTokens{secret: cfg.Secret, now: cfg.Now}, nil
}

// errNotBootstrapToken: the token is not in the bootstrap format, so
// another authenticator gets its turn.
var errNotBootstrapToken = errors.New("authn: not a bootstrap token")

// Authenticate returns the user token authenticates as. The error wraps
// errNotBootstrapToken when the token is not in the bootstrap format; any
// other error means it is one and is not valid. The reasons are for logs
// only: a client gets a plain 401.
func (b *BootstrapTokens) Authenticate(ctx context.Context, token string) (User, error) {
	id, secret, ok := ParseBootstrapToken(token)
	if !ok {
		return User{}, errNotBootstrapToken
	}
	s, err := b.secret(ctx, BootstrapTokenSecretPrefix+id)
	if err != nil {
		return User{}, fmt.Errorf("authn: bootstrap token %s: %w", id, err)
	}
	if s.DeletionTimestamp != nil {
		return User{}, fmt.Errorf("authn: bootstrap token %s: its Secret is being deleted", id)
	}
	if s.Type != corev1.SecretTypeBootstrapToken {
		return User{}, fmt.Errorf("authn: bootstrap token %s: Secret has type %q", id, s.Type)
	}
	if subtle.ConstantTimeCompare(s.Data[BootstrapTokenSecretKey], []byte(secret)) != 1 {
		return User{}, fmt.Errorf("authn: bootstrap token %s: wrong secret", id)
	}
	if string(s.Data[BootstrapTokenIDKey]) != id {
		return User{}, fmt.Errorf("authn: bootstrap token %s: Secret is for token id %q", id, s.Data[BootstrapTokenIDKey])
	}
	if exp, ok := s.Data[BootstrapTokenExpirationKey]; ok {
		// An expiration that does not parse counts as passed, as upstream.
		t, err := time.Parse(time.RFC3339, string(exp))
		if err != nil || !b.now().Before(t) {
			return User{}, fmt.Errorf("authn: bootstrap token %s: expired at %s", id, exp)
		}
	}
	if string(s.Data[BootstrapTokenUsageAuthKey]) != "true" {
		return User{}, fmt.Errorf("authn: bootstrap token %s: not for authentication", id)
	}
	groups := []string{GroupBootstrappers}
	if extra := string(s.Data[BootstrapTokenExtraGroupsKey]); extra != "" {
		for _, g := range strings.Split(extra, ",") {
			g = strings.TrimSpace(g)
			if !bootstrapGroupPattern.MatchString(g) {
				return User{}, fmt.Errorf("authn: bootstrap token %s: invalid extra group %q", id, g)
			}
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	return User{Name: BootstrapUserPrefix + id, Groups: withAuthenticated(groups)}, nil
}

// Wrap returns next behind bootstrap token authentication and then a: a
// request with a bearer token in the bootstrap format, and no client
// certificate (which comes first, as in upstream's union of
// authenticators), is decided here; every other request goes to a. The
// bootstrap format is distinct from every other token kind, so no token is
// checked twice.
func (b *BootstrapTokens) Wrap(a *Authenticator, next http.Handler) http.Handler {
	rest := a.Wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) || !strings.EqualFold(scheme, "Bearer") {
			rest.ServeHTTP(w, r)
			return
		}
		u, err := b.Authenticate(r.Context(), strings.TrimSpace(token))
		switch {
		case errors.Is(err, errNotBootstrapToken):
			rest.ServeHTTP(w, r)
		case err != nil:
			writeUnauthorized(w)
		default:
			r.Header.Del("Authorization")
			next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
		}
	})
}
