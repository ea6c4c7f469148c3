package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// serviceAccountKeyFile signs service account tokens. It is not a
// certificate key: tokens carry no chain, so losing it only invalidates
// tokens already issued, which kubelets refresh anyway.
const serviceAccountKeyFile = "service-account.key"

// EnsureServiceAccountKey loads the service account signing key from dir,
// creating it (mode 0600) on first use. It is reused on restart so tokens
// already handed to pods stay valid.
func EnsureServiceAccountKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, serviceAccountKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := parseKey(data)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	pemData, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pemData, 0o600); err != nil {
		return nil, fmt.Errorf("pki: write service account key: %w", err)
	}
	return key, nil
}
