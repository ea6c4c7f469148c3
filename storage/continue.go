package storage

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// continueToken is the state of a paginated list, in the shape upstream
// kube-apiserver hands out, so tokens look familiar in logs.
type continueToken struct {
	APIVersion string `json:"v"`
	Revision   int64  `json:"rv"`
	StartKey   string `json:"start"`
}

const continueTokenVersion = "meta.k8s.io/v1"

// EncodeContinue returns the token for a list read at revision whose next
// page starts at startKey (inclusive).
func EncodeContinue(revision int64, startKey string) string {
	b, _ := json.Marshal(continueToken{APIVersion: continueTokenVersion, Revision: revision, StartKey: startKey})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeContinue parses a token made by EncodeContinue and checks that it
// belongs to a list of prefix.
func DecodeContinue(token, prefix string) (revision int64, startKey string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", ErrInvalidContinue, err)
	}
	var t continueToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return 0, "", fmt.Errorf("%w: %v", ErrInvalidContinue, err)
	}
	if t.APIVersion != continueTokenVersion {
		return 0, "", fmt.Errorf("%w: unknown version %q", ErrInvalidContinue, t.APIVersion)
	}
	if t.Revision <= 0 {
		return 0, "", fmt.Errorf("%w: revision %d", ErrInvalidContinue, t.Revision)
	}
	if len(t.StartKey) < len(prefix) || t.StartKey[:len(prefix)] != prefix {
		return 0, "", fmt.Errorf("%w: token is for another list", ErrInvalidContinue)
	}
	return t.Revision, t.StartKey, nil
}
