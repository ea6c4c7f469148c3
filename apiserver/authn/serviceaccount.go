package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/tinykube/tinykube/internal/satoken"
)

// Service account identities, as upstream names them.
const (
	ServiceAccountUserPrefix = "system:serviceaccount:"
	GroupServiceAccounts     = "system:serviceaccounts"
	// DefaultIssuer is upstream's default --service-account-issuer for a
	// cluster whose domain is cluster.local; it is also the audience a
	// token gets when the request names none.
	DefaultIssuer = "https://kubernetes.default.svc.cluster.local"
)

// errNotServiceAccountToken: the bearer token is not a JWT of ours, so the
// other token sets get their turn.
var errNotServiceAccountToken = satoken.ErrNotServiceAccountToken

// ServiceAccountTokensConfig configures ServiceAccountTokens.
type ServiceAccountTokensConfig struct {
	// Key signs and verifies tokens (ES256). Required.
	Key *ecdsa.PrivateKey
	// Issuer is the tokens' iss claim; DefaultIssuer when empty.
	Issuer string
	// Audiences are the audiences the API server accepts; [Issuer] when
	// empty.
	Audiences []string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Lookup, when set, returns the UID of the named object ("serviceaccounts"
	// or "pods" in namespace), or an error when it does not exist. Every
	// token is checked against it, as upstream does, so deleting a
	// ServiceAccount or the pod a token is bound to revokes the token at
	// once rather than at its expiry.
	Lookup func(ctx context.Context, namespace, resource, name string) (uid string, err error)
}

// ServiceAccountTokens issues and verifies bound service account tokens:
// JWTs in upstream's format (ES256, the `kubernetes.io` claim), so
// in-cluster clients built on client-go work with them unchanged.
type ServiceAccountTokens struct {
	key       *ecdsa.PrivateKey
	keyID     string
	issuer    string
	audiences []string
	now       func() time.Time
	lookup    func(ctx context.Context, namespace, resource, name string) (string, error)
}

// NewServiceAccountTokens validates cfg.
func NewServiceAccountTokens(cfg ServiceAccountTokensConfig) (*ServiceAccountTokens, error) {
	if cfg.Key == nil || cfg.Key.Curve != elliptic.P256() {
		return nil, errors.New("authn: service account tokens need a P-256 key")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{cfg.Issuer}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// The key id is the hash of the public key, as upstream computes it,
	// so a verifier can tell which key signed once keys rotate.
	der, err := x509.MarshalPKIXPublicKey(&cfg.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &ServiceAccountTokens{
		key:       cfg.Key,
		keyID:     base64.RawURLEncoding.EncodeToString(sum[:]),
		issuer:    cfg.Issuer,
		audiences: slices.Clone(cfg.Audiences),
		now:       cfg.Now,
		lookup:    cfg.Lookup,
	}, nil
}

// Issuer is the iss claim of the tokens s issues.
func (s *ServiceAccountTokens) Issuer() string { return s.issuer }

// Audiences are the audiences the API server accepts; a TokenRequest that
// names none gets them.
func (s *ServiceAccountTokens) Audiences() []string { return slices.Clone(s.audiences) }

// ObjectRef names an object a token is bound to.
type ObjectRef = satoken.ObjectRef

// ServiceAccountClaims is what one token says.
type ServiceAccountClaims struct {
	Namespace      string
	ServiceAccount ObjectRef
	// Pod, when set, binds the token to a pod: upstream's kubelet asks for
	// such tokens for the projected volume.
	Pod *ObjectRef
	// Secret, when set, binds the token to a secret. A token is bound to
	// a pod, a secret, a node, or nothing; a pod's token may also name
	// the pod's node.
	Secret *ObjectRef
	// Node is the node the token is bound to, or the node of the pod the
	// token is bound to (information only).
	Node *ObjectRef
	// Audiences; the issuer when empty.
	Audiences []string
	// Lifetime of the token; one hour when zero, as upstream's default
	// expirationSeconds.
	Lifetime time.Duration
	// WarnAfter, when set, is how long after issue the token counts as
	// expired for warnings while it stays valid for Lifetime: upstream's
	// extended expiration of the kubelet's projected tokens.
	WarnAfter time.Duration
	// IssuedAt is the token's iat and nbf; the clock's now when zero.
	IssuedAt time.Time
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// KubernetesClaims is a token's `kubernetes.io` claim: whose it is and
// what it is bound to.
type KubernetesClaims = satoken.KubernetesClaims

// TokenClaims are the claims of a service account token, as upstream
// writes them.
type TokenClaims = satoken.Claims

// Issue signs a token for c and returns it with its expiry.
func (s *ServiceAccountTokens) Issue(c ServiceAccountClaims) (string, time.Time, error) {
	if c.Namespace == "" || c.ServiceAccount.Name == "" {
		return "", time.Time{}, errors.New("authn: a token needs a namespace and a service account")
	}
	if c.Secret != nil && (c.Pod != nil || c.Node != nil) {
		return "", time.Time{}, errors.New("authn: a token can only be bound to one object")
	}
	now := c.IssuedAt
	if now.IsZero() {
		now = s.now()
	}
	lifetime := c.Lifetime
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	aud := c.Audiences
	if len(aud) == 0 {
		aud = []string{s.issuer}
	}
	exp := now.Add(lifetime)
	var warnAfter int64
	if c.WarnAfter > 0 {
		warnAfter = now.Add(c.WarnAfter).Unix()
	}
	claims := TokenClaims{
		Issuer:    s.issuer,
		Subject:   ServiceAccountUserPrefix + c.Namespace + ":" + c.ServiceAccount.Name,
		Audience:  aud,
		Expiry:    exp.Unix(),
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ID:        string(uuid.NewUUID()),
		Kubernetes: KubernetesClaims{
			Namespace:      c.Namespace,
			ServiceAccount: c.ServiceAccount,
			Pod:            c.Pod,
			Secret:         c.Secret,
			Node:           c.Node,
			WarnAfter:      warnAfter,
		},
	}
	header, err := json.Marshal(jwtHeader{Alg: "ES256", Kid: s.keyID})
	if err != nil {
		return "", time.Time{}, err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	signingInput := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signingInput))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", time.Time{}, err
	}
	// JWS ES256: r and s, each left-padded to 32 bytes.
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(raw), time.Unix(exp.Unix(), 0), nil
}

// clockSkew is how far apart the clocks of issuer and verifier may be,
// as go-jose's default leeway that upstream relies on.
const clockSkew = time.Minute

// ParseTokenClaims decodes the claims of a service account token without
// verifying its signature (satoken.ParseUnverified).
func ParseTokenClaims(token string) (*TokenClaims, error) { return satoken.ParseUnverified(token) }

// verify checks token and returns its claims. errNotServiceAccountToken
// means the token is not ours to judge (not a JWT, another issuer).
func (s *ServiceAccountTokens) verify(token string) (*TokenClaims, error) {
	c, err := ParseTokenClaims(token)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(token, ".")
	headerJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errNotServiceAccountToken
	}
	var h jwtHeader
	if err := json.Unmarshal(headerJSON, &h); err != nil {
		return nil, errNotServiceAccountToken
	}
	if c.Issuer != s.issuer {
		return nil, errNotServiceAccountToken
	}
	// From here on the token claims to be ours: every failure is final.
	if h.Alg != "ES256" {
		return nil, fmt.Errorf("authn: service account token algorithm %q", h.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("authn: malformed service account token signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&s.key.PublicKey, digest[:], r, sv) {
		return nil, errors.New("authn: service account token signature does not verify")
	}
	now := s.now()
	if now.After(time.Unix(c.Expiry, 0).Add(clockSkew)) {
		return nil, errors.New("authn: service account token has expired")
	}
	if now.Add(clockSkew).Before(time.Unix(c.NotBefore, 0)) {
		return nil, errors.New("authn: service account token is not valid yet")
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(s.audiences, a) }) {
		return nil, errors.New("authn: service account token is for another audience")
	}
	k := c.Kubernetes
	if k.Namespace == "" || k.ServiceAccount.Name == "" ||
		c.Subject != ServiceAccountUserPrefix+k.Namespace+":"+k.ServiceAccount.Name {
		return nil, errors.New("authn: service account token names no service account")
	}
	return c, nil
}

// checkObjects makes sure the objects a verified token names still exist
// with the UIDs it names: its service account and the pod, secret or node
// it is bound to. The node of a pod-bound token is information only, as
// upstream treats it.
func (s *ServiceAccountTokens) checkObjects(ctx context.Context, c *TokenClaims) error {
	if s.lookup == nil {
		return nil
	}
	k := c.Kubernetes
	type bound struct {
		namespace, resource string
		ref                 *ObjectRef
	}
	objects := []bound{{k.Namespace, "serviceaccounts", &k.ServiceAccount}, {k.Namespace, "pods", k.Pod}, {k.Namespace, "secrets", k.Secret}}
	if k.Pod == nil {
		objects = append(objects, bound{"", "nodes", k.Node})
	}
	for _, o := range objects {
		if o.ref == nil {
			continue
		}
		uid, err := s.lookup(ctx, o.namespace, o.resource, o.ref.Name)
		if err != nil {
			return fmt.Errorf("authn: token bound to %s %s/%s: %w", o.resource, o.namespace, o.ref.Name, err)
		}
		if o.ref.UID != "" && uid != o.ref.UID {
			return fmt.Errorf("authn: token bound to %s %s/%s, which was recreated", o.resource, o.namespace, o.ref.Name)
		}
	}
	return nil
}

// Extra keys upstream puts on the user of a service account token.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// claimsUser is the identity a verified token stands for, as upstream
// builds it.
func claimsUser(c *TokenClaims) User {
	k := c.Kubernetes
	extra := map[string][]string{}
	if c.ID != "" {
		extra[ExtraCredentialID] = []string{"JTI=" + c.ID}
	}
	if k.Pod != nil {
		extra[ExtraPodName] = []string{k.Pod.Name}
		extra[ExtraPodUID] = []string{k.Pod.UID}
	}
	if k.Node != nil {
		extra[ExtraNodeName] = []string{k.Node.Name}
		extra[ExtraNodeUID] = []string{k.Node.UID}
	}
	return User{
		Name:   c.Subject,
		UID:    k.ServiceAccount.UID,
		Groups: []string{GroupServiceAccounts, GroupServiceAccounts + ":" + k.Namespace},
		Extra:  extra,
	}
}
