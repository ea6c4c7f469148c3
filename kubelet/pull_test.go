package kubelet_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/images"
	corev1 "k8s.io/api/core/v1"
)

// startRegistry runs Debian's docker-registry on 127.0.0.1 for the test
// and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-registry not installed (apt-get install docker-registry)")
		}
		t.Skip("skipping: needs docker-registry (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	if err := waitFor(20*time.Second, func() bool {
		resp, err := hc.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		t.Fatalf("registry on %s not up", addr)
	}
	return addr
}

// push copies the node's test server image to ref in the registry.
func (n *testNode) push(ref string) {
	n.t.Helper()
	c, err := client.New(kubelet.ContainerdAddress(n.dataDir))
	if err != nil {
		n.t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), images.Namespace)
	img, err := c.GetImage(ctx, testimage.ServerRef)
	if err != nil {
		n.t.Fatal(err)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))})
	if err := c.Push(ctx, ref, img.Target(), client.WithResolver(resolver)); err != nil {
		n.t.Fatalf("push %s: %v", ref, err)
	}
}

func TestImagesArePulledFromARegistryAndThroughMirrors(t *testing.T) {
	nodetestRequire(t)
	registry := startRegistry(t)
	// A registry nothing listens on, mirrored to the real one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	regFile := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(regFile, []byte(fmt.Sprintf("mirrors:\n  %q:\n    endpoint:\n      - http://%s\n", dead, registry)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nil, func(c *kubelet.Config) { c.RegistriesFile = regFile })
	n.push(registry + "/tinykube/testserver:v1")
	n.push(registry + "/mirrored/testserver:v1")

	n.create(newPod("direct", registry+"/tinykube/testserver:v1").readiness("/healthz").obj())
	n.create(newPod("mirror", dead+"/mirrored/testserver:v1").readiness("/healthz").obj())
	n.create(newPod("missing", registry+"/tinykube/none:v1").obj())
	for _, name := range []string{"direct", "mirror"} {
		p := n.waitPod(name, 60*time.Second, "Ready with its image pulled", podReady)
		if id := p.Status.ContainerStatuses[0].ImageID; !strings.Contains(id, "@sha256:") {
			t.Errorf("pod %s imageID %q", name, id)
		}
		image := p.Spec.Containers[0].Image
		n.waitEvents(p,
			`Normal Pulling spec.containers{main}: Pulling image "`+image+`"`,
			`Normal Pulled spec.containers{main}: Successfully pulled image "`+image+`" in `,
		)
	}
	// ErrImagePull shows until the next sync, then ImagePullBackOff
	// until the back-off delay passes.
	p := n.waitPod("missing", 30*time.Second, "waiting in ImagePullBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ImagePullBackOff"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "ErrImagePull") || !strings.Contains(msg, "not found") {
		t.Errorf("waiting message %q does not say the pull failed", msg)
	}
	image := p.Spec.Containers[0].Image
	n.waitEvents(p,
		`Warning Failed spec.containers{main}: Failed to pull image "`+image+`": `,
		"Warning Failed spec.containers{main}: Error: ErrImagePull",
		`Normal BackOff spec.containers{main}: Back-off pulling image "`+image+`"`,
		"Warning Failed spec.containers{main}: Error: ImagePullBackOff",
	)
}
