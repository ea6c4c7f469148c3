package authn

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// DefaultPublicPaths returns the paths served without a credential, as
// upstream's system:public-info-viewer role allows: health checks and
// /version.
func DefaultPublicPaths() []string {
	return []string{"/healthz", "/livez", "/readyz", "/version"}
}

// Config configures an Authenticator.
type Config struct {
	// ClientCAs verifies client certificates. nil accepts none.
	ClientCAs *x509.CertPool
	// Tokens are the accepted bearer tokens, from any of the sets; a token
	// in two sets authenticates as the first set's user.
	Tokens []*Tokens
	// ServiceAccounts verifies service account tokens (JWTs). nil accepts
	// none.
	ServiceAccounts *ServiceAccountTokens
	// PublicPaths, with everything below them, are served to requests
	// without a credential. nil means DefaultPublicPaths().
	PublicPaths []string
}

// Authenticator is an http middleware that authenticates every request.
type Authenticator struct {
	clientCAs *x509.CertPool
	tokens    []*Tokens
	sa        *ServiceAccountTokens
	public    []string
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	public := cfg.PublicPaths
	if public == nil {
		public = DefaultPublicPaths()
	}
	for _, p := range public {
		if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			return nil, errors.New("authn: public path " + p + " must start and not end with /")
		}
	}
	return &Authenticator{clientCAs: cfg.ClientCAs, tokens: slices.Clone(cfg.Tokens), sa: cfg.ServiceAccounts, public: slices.Clone(public)}, nil
}

// errNoCredential: the request carried nothing to check.
var errNoCredential = errors.New("authn: no credential")

// Wrap returns next behind authentication. It removes the Authorization
// header once used, so no handler can leak the bearer token further, for
// example to a proxied kubelet.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := a.authenticate(r)
		switch {
		case err == nil:
		case errors.Is(err, errNoCredential) && a.isPublic(r.URL.Path):
			u = User{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}
		default:
			writeUnauthorized(w)
			return
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}

// authenticate tries the client certificate first, then the bearer token,
// as upstream's union authenticator does. A certificate that does not
// verify is an error even when a token follows: the client meant to use it.
func (a *Authenticator) authenticate(r *http.Request) (User, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return a.fromCertificate(r.TLS.PeerCertificates)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		return a.fromToken(r.Context(), h)
	}
	return User{}, errNoCredential
}

func (a *Authenticator) fromCertificate(chain []*x509.Certificate) (User, error) {
	if a.clientCAs == nil {
		return User{}, errors.New("authn: client certificates not accepted")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         a.clientCAs,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return User{}, err
	}
	if leaf.Subject.CommonName == "" {
		return User{}, errors.New("authn: client certificate has no common name")
	}
	return User{
		Name:   leaf.Subject.CommonName,
		Groups: withAuthenticated(leaf.Subject.Organization),
	}, nil
}

func (a *Authenticator) fromToken(ctx context.Context, header string) (User, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return User{}, errors.New("authn: unsupported authorization scheme")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return User{}, errors.New("authn: empty bearer token")
	}
	if a.sa != nil {
		c, err := a.sa.verify(token)
		if err == nil {
			err = a.sa.checkObjects(ctx, c)
		}
		switch {
		case err == nil:
			u := claimsUser(c)
			u.Groups = withAuthenticated(u.Groups)
			return u, nil
		case !errors.Is(err, errNotServiceAccountToken):
			return User{}, err
		}
	}
	for _, set := range a.tokens {
		if u, ok := set.lookup(token); ok {
			u.Groups = withAuthenticated(u.Groups)
			return u, nil
		}
	}
	return User{}, errors.New("authn: invalid bearer token")
}

// withAuthenticated adds system:authenticated, which upstream gives every
// authenticated user, without touching the caller's slice.
func withAuthenticated(groups []string) []string {
	out := slices.Clone(groups)
	if !slices.Contains(out, GroupAuthenticated) {
		out = append(out, GroupAuthenticated)
	}
	return out
}

func (a *Authenticator) isPublic(path string) bool {
	for _, p := range a.public {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// writeUnauthorized answers like upstream: a v1 Status, reason
// Unauthorized, message "Unauthorized", and no hint about which part of the
// credential was wrong.
func writeUnauthorized(w http.ResponseWriter) {
	status := apierrors.NewUnauthorized("Unauthorized").Status()
	status.Kind = "Status"
	status.APIVersion = "v1"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(&status)
}
