package server

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

func TestServerJoinTokenIsKeptAndReplacedByTokenFlag(t *testing.T) {
	dir := t.TempDir()
	store, err := OpenStore(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	c, err := newCore(store, coreConfig{serviceCIDR: netip.MustParsePrefix("10.43.0.0/16"), advertiseAddress: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls"), ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	secrets := inProcessClient(c.handler).CoreV1().Secrets("kube-system")
	settle := func(given string) string {
		t.Helper()
		token, previous, err := ensureJoinToken(dir, b.CACertPEM, given)
		if err != nil {
			t.Fatal(err)
		}
		if err := ensureJoinSecret(ctx, c.handler, token, previous); err != nil {
			t.Fatal(err)
		}
		return token
	}
	secretOf := func(token string) error {
		t.Helper()
		jt, err := pki.ParseJoinToken(token)
		if err != nil {
			t.Fatal(err)
		}
		id, _, _ := authn.ParseBootstrapToken(jt.Credential)
		_, err = secrets.Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
		return err
	}

	first := settle("")
	if again := settle(""); again != first {
		t.Fatalf("restart changed the join token: %q -> %q", first, again)
	}
	if err := secretOf(first); err != nil {
		t.Fatalf("the join token's Secret: %v", err)
	}
	replaced := settle("abcdef.0123456789abcdef")
	if replaced != pki.FormatJoinToken(b.CACertPEM, "abcdef.0123456789abcdef") {
		t.Fatalf("--token gave %q", replaced)
	}
	if err := secretOf(replaced); err != nil {
		t.Fatalf("the new join token's Secret: %v", err)
	}
	if err := secretOf(first); err == nil {
		t.Error("the replaced token's Secret is still there")
	}
	data, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil || strings.TrimSpace(string(data)) != replaced {
		t.Errorf("token file %q (%v), want %q", data, err, replaced)
	}

	other, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensureJoinToken(dir, b.CACertPEM, pki.FormatJoinToken(other.CACertPEM, "abcdef.0123456789abcdef")); !errors.Is(err, pki.ErrCAHashMismatch) {
		t.Errorf("--token of another cluster: %v", err)
	}
}
