//go:build !nokubectl

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func TestBuiltInKubectl(t *testing.T) {
	p := startServer(t, t.TempDir())
	kubectl := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(os.Args[0], append([]string{"kubectl"}, args...)...)
		cmd.Env = append(append(os.Environ(), execMainEnv+"=1"), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := kubectl([]string{"KUBECONFIG=" + p.kubeconfig}, "get", "namespaces")
	if err != nil {
		t.Fatalf("kubectl get namespaces: %v\n%s", err, out)
	}
	if !strings.Contains(out, "kube-system") || !strings.HasPrefix(out, "NAME") {
		t.Errorf("kubectl get namespaces printed:\n%s", out)
	}

	out, err = kubectl(nil, "--kubeconfig", p.kubeconfig, "get", "service", "kubernetes", "-n", "default")
	if err != nil {
		t.Fatalf("kubectl --kubeconfig get service: %v\n%s", err, out)
	}
	if !strings.Contains(out, "10.43.0.1") {
		t.Errorf("kubectl get service kubernetes printed:\n%s", out)
	}

	// kubectl's own error and exit code come through unchanged.
	out, err = kubectl([]string{"KUBECONFIG=" + p.kubeconfig}, "get", "namespace", "nope")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("kubectl get namespace nope: err %v, want exit status 1", err)
	}
	if !strings.Contains(out, `Error from server (NotFound): namespaces "nope" not found`) {
		t.Errorf("kubectl get namespace nope printed:\n%s", out)
	}
}
