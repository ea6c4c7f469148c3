package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tinykube/tinykube/pki"
)

// runAgentCommand runs `tinykube agent args...` in-process and returns its
// exit code and stderr.
func runAgentCommand(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(context.Background(), append([]string{"agent"}, args...), &stdout, &stderr)
	return code, stderr.String()
}

func TestAgentRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no server", []string{"--token", "K10x::y"}, "--server"},
		{"plain HTTP server", []string{"--server", "http://127.0.0.1:6443", "--token", "K10x::y"}, "must be https://HOST:PORT"},
		{"no token", []string{"--server", "https://127.0.0.1:6443"}, "--token is required"},
		{"loopback node address", []string{"--server", "https://127.0.0.1:6443", "--token", "K10x::y", "--node-ip", "127.0.0.2"}, "--node-ip: address 127.0.0.2 cannot be a node's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The flags under test come last, so they win.
			code, stderr := runAgentCommand(t, append([]string{"--data-dir", t.TempDir(), "--node-ip", "192.0.2.10"}, tt.args...)...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestAgentCommandRefusesBadTokensClearly(t *testing.T) {
	s := startJoinTestServer(t)
	good, err := pki.ParseJoinToken(s.token)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(good.Credential, ".")
	tests := []struct {
		name, token, want string
	}{
		{"token for another CA", pki.FormatJoinToken(other.CACertPEM, good.Credential), "token CA hash does not match the server's CA certificate"},
		{"wrong secret", "K10" + good.CAHash + "::" + id + ".0000000000000000", "the server refused the join token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through --token-file, as a copy of the server's token file.
			file := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(file, []byte(tt.token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stderr := runAgentCommand(t, "--server", s.url, "--token-file", file, "--data-dir", t.TempDir(),
				"--node-name", "intruder", "--node-ip", "192.0.2.10")
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestWithNodeIDKeepsTheNameAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent", "node-id")
	first, err := ensureNodeID(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ensureNodeID(path)
	if err != nil {
		t.Fatal(err)
	}
	if first != again || len(first) != 8 {
		t.Errorf("node ids %q then %q, want the same 8 hex digits", first, again)
	}
}
