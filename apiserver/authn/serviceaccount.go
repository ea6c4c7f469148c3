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
var errNotServiceAccountToken = errors.New("authn: not a service account token")

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

// ObjectRef names an object a token is bound to.
type ObjectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// ServiceAccountClaims is what one token says.
type ServiceAccountClaims struct {
	Namespace      string
	ServiceAccount ObjectRef
	// Pod, when set, binds the token to a pod: upstream's kubelet asks for
	// such tokens for the projected volume.
	Pod *ObjectRef
	// Node is the node the pod runs on, when bound to a pod.
	Node *ObjectRef
	// Audiences; the issuer when empty.
	Audiences []string
	// Lifetime of the token; one hour when zero, as upstream's default
	// expirationSeconds.
	Lifetime time.Duration
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

type kubernetesClaim struct {
	Namespace      string     `json:"namespace"`
	ServiceAccount ObjectRef  `json:"serviceaccount"`
	Pod            *ObjectRef `json:"pod,omitempty"`
	Node           *ObjectRef `json:"node,omitempty"`
}

type jwtClaims struct {
	Issuer     string          `json:"iss"`
	Subject    string          `json:"sub"`
	Audience   []string        `json:"aud"`
	Expiry     int64           `json:"exp"`
	IssuedAt   int64           `json:"iat"`
	NotBefore  int64           `json:"nbf"`
	ID         string          `json:"jti,omitempty"`
	Kubernetes kubernetesClaim `json:"kubernetes.io"`
}

// Issue signs a token for c and returns it with its expiry.
func (s *ServiceAccountTokens) Issue(c ServiceAccountClaims) (string, time.Time, error) {
	if c.Namespace == "" || c.ServiceAccount.Name == "" {
		return "", time.Time{}, errors.New("authn: a token needs a namespace and a service account")
	}
	now := s.now()
	lifetime := c.Lifetime
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	aud := c.Audiences
	if len(aud) == 0 {
		aud = []string{s.issuer}
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(lifetime)
	claims := jwtClaims{
		Issuer:    s.issuer,
		Subject:   ServiceAccountUserPrefix + c.Namespace + ":" + c.ServiceAccount.Name,
		Audience:  aud,
		Expiry:    exp.Unix(),
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ID:        base64.RawURLEncoding.EncodeToString(jti),
		Kubernetes: kubernetesClaim{
			Namespace:      c.Namespace,
			ServiceAccount: c.ServiceAccount,
			Pod:            c.Pod,
			Node:           c.Node,
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

// verify checks token and returns its claims. errNotServiceAccountToken
// means the token is not ours to judge (not a JWT, another issuer).
func (s *ServiceAccountTokens) verify(token string) (*jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errNotServiceAccountToken
	}
	headerJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errNotServiceAccountToken
	}
	var h jwtHeader
	if err := json.Unmarshal(headerJSON, &h); err != nil {
		return nil, errNotServiceAccountToken
	}
	payloadJSON, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errNotServiceAccountToken
	}
	var c jwtClaims
	if err := json.Unmarshal(payloadJSON, &c); err != nil {
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
	return &c, nil
}

// checkObjects makes sure the objects a verified token names still exist
// with the UIDs it names.
func (s *ServiceAccountTokens) checkObjects(ctx context.Context, c *jwtClaims) error {
	if s.lookup == nil {
		return nil
	}
	k := c.Kubernetes
	uid, err := s.lookup(ctx, k.Namespace, "serviceaccounts", k.ServiceAccount.Name)
	if err != nil {
		return fmt.Errorf("authn: service account %s/%s: %w", k.Namespace, k.ServiceAccount.Name, err)
	}
	if k.ServiceAccount.UID != "" && uid != k.ServiceAccount.UID {
		return fmt.Errorf("authn: service account %s/%s was recreated", k.Namespace, k.ServiceAccount.Name)
	}
	if k.Pod != nil {
		uid, err := s.lookup(ctx, k.Namespace, "pods", k.Pod.Name)
		if err != nil {
			return fmt.Errorf("authn: pod %s/%s: %w", k.Namespace, k.Pod.Name, err)
		}
		if k.Pod.UID != "" && uid != k.Pod.UID {
			return fmt.Errorf("authn: pod %s/%s was recreated", k.Namespace, k.Pod.Name)
		}
	}
	return nil
}

// user is the identity a verified token stands for, as upstream builds it.
func (c *jwtClaims) user() User {
	ns := c.Kubernetes.Namespace
	return User{
		Name:   c.Subject,
		UID:    c.Kubernetes.ServiceAccount.UID,
		Groups: []string{GroupServiceAccounts, GroupServiceAccounts + ":" + ns},
	}
}
