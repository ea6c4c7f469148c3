package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// setUpJoin is the server's side of joining hosts, and returns the
// server's HTTP handler: it settles the server's join token
// (DATA_DIR/server/token) and makes it valid, and puts the unauthenticated
// /cacerts and bootstrap token authentication in front of a and core.
func setUpJoin(ctx context.Context, serverDir string, caPEM []byte, givenToken string, a *authn.Authenticator, core http.Handler) (http.Handler, error) {
	token, previous, err := ensureJoinToken(serverDir, caPEM, givenToken)
	if err != nil {
		return nil, err
	}
	if err := ensureJoinSecret(ctx, core, token, previous); err != nil {
		return nil, fmt.Errorf("the join token's bootstrap token Secret: %w", err)
	}
	return joinHandler(caPEM, a, core)
}

// joinTokenFile holds the server's join token, as k3s's server/token.
const joinTokenFile = "token"

// ensureJoinToken settles the server's join token: given (--token, a
// bootstrap token or a full K10 token for this CA) wins, else the one in
// DATA_DIR/server/token from an earlier start, else a new one. The file is
// written (0600) whenever it changes; previous is the credential it held
// before, if any.
func ensureJoinToken(serverDir string, caPEM []byte, given string) (token, previous string, err error) {
	path := filepath.Join(serverDir, joinTokenFile)
	if data, err := os.ReadFile(path); err == nil {
		t, err := pki.ParseJoinToken(string(data))
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", path, err)
		}
		previous = t.Credential
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	credential := previous
	if given != "" {
		t, err := pki.ParseJoinToken(given)
		if err != nil {
			return "", "", fmt.Errorf("--token: %w", err)
		}
		if t.CAHash != "" {
			if err := t.VerifyCA(caPEM); err != nil {
				return "", "", fmt.Errorf("--token: %w", err)
			}
		}
		credential = t.Credential
	}
	if credential == "" {
		if credential, err = authn.NewBootstrapToken(); err != nil {
			return "", "", err
		}
	}
	if _, _, ok := authn.ParseBootstrapToken(credential); !ok {
		return "", "", errors.New("--token: the credential must be a bootstrap token, [a-z0-9]{6}.[a-z0-9]{16}")
	}
	token = pki.FormatJoinToken(caPEM, credential)
	if credential != previous {
		if err := writeTokenFile(path, token); err != nil {
			return "", "", err
		}
	}
	return token, previous, nil
}

func writeTokenFile(path, token string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// joinHandler is /cacerts for anyone, then bootstrap tokens, then a's
// authentication, in front of core.
func joinHandler(caPEM []byte, a *authn.Authenticator, core http.Handler) (http.Handler, error) {
	secrets := inProcessClient(core).CoreV1().Secrets(authn.BootstrapTokenNamespace)
	b, err := authn.NewBootstrapTokens(authn.BootstrapTokensConfig{
		Secret: func(ctx context.Context, name string) (*corev1.Secret, error) {
			return secrets.Get(ctx, name, metav1.GetOptions{})
		},
	})
	if err != nil {
		return nil, err
	}
	return apiserver.WithCACerts(caPEM, b.Wrap(a, core)), nil
}

// ensureJoinSecret makes the server's join token valid: its bootstrap
// token Secret exists, without expiry, holding the token's secret. It runs
// on every start, so a deleted Secret comes back. When --token replaced
// the previous credential, that one's Secret goes, so the old token stops
// working.
func ensureJoinSecret(ctx context.Context, core http.Handler, token, previous string) error {
	t, err := pki.ParseJoinToken(token)
	if err != nil {
		return err
	}
	want, err := authn.BootstrapTokenSecret(t.Credential, time.Time{}, "The server's join token (DATA_DIR/server/token).", nil)
	if err != nil {
		return err
	}
	secrets := inProcessClient(core).CoreV1().Secrets(authn.BootstrapTokenNamespace)
	if oldID, _, ok := authn.ParseBootstrapToken(previous); ok && authn.BootstrapTokenSecretPrefix+oldID != want.Name {
		err := secrets.Delete(ctx, authn.BootstrapTokenSecretPrefix+oldID, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	current, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	}
	want.ResourceVersion = current.ResourceVersion
	_, err = secrets.Update(ctx, want, metav1.UpdateOptions{})
	return err
}
