// Package satoken owns the claims of a service account token (a JWT) as
// upstream writes them, and reads them without verifying the signature:
// what the token's issuer (apiserver/authn) writes and its holder (the
// kubelet, deciding when to refresh a projected token) reads. Verifying a
// token is the authenticator's job, not this package's.
package satoken

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// ErrNotServiceAccountToken: the string is not a JWT with a claims object.
var ErrNotServiceAccountToken = errors.New("satoken: not a service account token")

// ObjectRef names an object a token is bound to.
type ObjectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// KubernetesClaims is a token's `kubernetes.io` claim: whose it is and
// what it is bound to.
type KubernetesClaims struct {
	Namespace      string     `json:"namespace"`
	ServiceAccount ObjectRef  `json:"serviceaccount"`
	Pod            *ObjectRef `json:"pod,omitempty"`
	Secret         *ObjectRef `json:"secret,omitempty"`
	Node           *ObjectRef `json:"node,omitempty"`
	WarnAfter      int64      `json:"warnafter,omitempty"`
}

// Claims are the claims of a service account token.
type Claims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`
	Audience   []string         `json:"aud"`
	Expiry     int64            `json:"exp"`
	IssuedAt   int64            `json:"iat"`
	NotBefore  int64            `json:"nbf"`
	ID         string           `json:"jti,omitempty"`
	Kubernetes KubernetesClaims `json:"kubernetes.io"`
}

// ParseUnverified decodes the claims of token without verifying its
// signature: for the token's holder, never for authentication.
func ParseUnverified(token string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrNotServiceAccountToken
	}
	payloadJSON, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, ErrNotServiceAccountToken
	}
	var c Claims
	if err := json.Unmarshal(payloadJSON, &c); err != nil {
		return nil, ErrNotServiceAccountToken
	}
	return &c, nil
}
