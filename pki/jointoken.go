package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// joinTokenPrefix starts a full join token, as k3s spells it: K10, the
// SHA-256 of the cluster CA's PEM, "::", then the credential.
const joinTokenPrefix = "K10"

// ErrCAHashMismatch: the CA the server presents is not the one the join
// token names, so the server is not the cluster the token is for (or
// someone is in between).
var ErrCAHashMismatch = errors.New("token CA hash does not match the server's CA certificate")

// JoinToken is a parsed join token.
type JoinToken struct {
	// CAHash is the hex SHA-256 of the cluster CA certificate's PEM; empty
	// when the token was given without it (a bare credential).
	CAHash string
	// Credential is what authenticates: a bootstrap token <id>.<secret>.
	Credential string
}

// CAHash is the hex SHA-256 of a CA bundle's PEM, as a join token carries
// it and as `GET /cacerts` lets a joining host check it.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// FormatJoinToken is the full join token for credential on the cluster
// whose CA is caPEM: K10<CA hash>::<credential>.
func FormatJoinToken(caPEM []byte, credential string) string {
	return joinTokenPrefix + CAHash(caPEM) + "::" + credential
}

// ParseJoinToken reads a full join token, or a bare credential (no CA
// hash). It checks the form, not the credential.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return JoinToken{}, errors.New("pki: empty join token")
	}
	if !strings.HasPrefix(s, joinTokenPrefix) || !strings.Contains(s, "::") {
		return JoinToken{Credential: s}, nil
	}
	hash, cred, _ := strings.Cut(strings.TrimPrefix(s, joinTokenPrefix), "::")
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return JoinToken{}, fmt.Errorf("pki: join token: %q is not a SHA-256 in hex", hash)
	}
	if cred == "" {
		return JoinToken{}, errors.New("pki: join token has no credential after ::")
	}
	return JoinToken{CAHash: strings.ToLower(hash), Credential: cred}, nil
}

// VerifyCA checks caPEM against the token's CA hash.
func (t JoinToken) VerifyCA(caPEM []byte) error {
	if t.CAHash == "" {
		return errors.New("pki: the join token carries no CA hash; use the full K10... token (DATA_DIR/server/token on the server)")
	}
	if got := CAHash(caPEM); got != t.CAHash {
		return fmt.Errorf("%w (token expects %s..., server has %s...)", ErrCAHashMismatch, t.CAHash[:12], got[:12])
	}
	return nil
}
