package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/tinykube/tinykube/pki"
)

func writeTestKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig.yaml")
	if err := pki.WriteKubeconfig(path, pki.Kubeconfig{Server: server}); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectlServer runs the built-in kubectl in-process and returns the server
// URL of the kubeconfig it ends up using.
func kubectlServer(t *testing.T, defaultPath string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}
	args = append(args, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	runKubectl(args, streams, defaultPath)
	if errOut.Len() > 0 {
		t.Errorf("kubectl stderr: %s", errOut.String())
	}
	return out.String()
}

func TestKubectlKubeconfigDefault(t *testing.T) {
	def := writeTestKubeconfig(t, "https://127.0.0.1:1111")
	other := writeTestKubeconfig(t, "https://127.0.0.1:2222")

	t.Run("server's kubeconfig when the user names none", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		if got := kubectlServer(t, def); got != "https://127.0.0.1:1111" {
			t.Errorf("server %q", got)
		}
	})
	t.Run("KUBECONFIG wins", func(t *testing.T) {
		t.Setenv("KUBECONFIG", other)
		if got := kubectlServer(t, def); got != "https://127.0.0.1:2222" {
			t.Errorf("server %q", got)
		}
	})
	t.Run("--kubeconfig wins", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		if got := kubectlServer(t, def, "--kubeconfig", other); got != "https://127.0.0.1:2222" {
			t.Errorf("server %q", got)
		}
	})
	t.Run("missing default file is ignored", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		t.Setenv("HOME", t.TempDir())
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		if got := kubectlServer(t, missing, "--kubeconfig", other); got != "https://127.0.0.1:2222" {
			t.Errorf("server %q", got)
		}
		if os.Getenv("KUBECONFIG") != "" {
			t.Error("KUBECONFIG set to a file that does not exist")
		}
	})
}
