//go:build !nokubectl

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// kubectlRunner runs one kubectl, built-in or the system's, against one
// server, with its own HOME so discovery caches never leak between tests.
type kubectlRunner struct {
	name   string
	argv   []string // program and leading arguments
	env    []string
	server *serverProcess
}

func kubectlRunners(t *testing.T, p *serverProcess) []*kubectlRunner {
	home := t.TempDir()
	env := []string{"KUBECONFIG=" + p.kubeconfig, "HOME=" + home}
	runners := []*kubectlRunner{{
		name:   "built-in",
		argv:   []string{os.Args[0], "kubectl"},
		env:    append([]string{execMainEnv + "=1"}, env...),
		server: p,
	}}
	if path, err := exec.LookPath("kubectl"); err == nil {
		runners = append(runners, &kubectlRunner{name: "system", argv: []string{path}, env: env, server: p})
	}
	return runners
}

func (k *kubectlRunner) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.argv[0], append(k.argv[1:], args...)...)
	cmd.Env = append(os.Environ(), k.env...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// run runs kubectl and returns stdout, stderr and the exit code.
func (k *kubectlRunner) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	// A kubectl that waits for something that never happens must fail
	// the test, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := k.command(ctx, stdin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("kubectl %v: %v", args, err)
		}
		code = exit.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// ok runs kubectl, fails the test unless it exits 0, and returns stdout.
func (k *kubectlRunner) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := k.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("kubectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs kubectl, expects exit 1, and checks stderr contains want.
func (k *kubectlRunner) fails(t *testing.T, stdin, want string, args ...string) {
	t.Helper()
	out, errOut, code := k.run(t, stdin, args...)
	if code != 1 {
		t.Errorf("kubectl %s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
		return
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("kubectl %s: stderr\n%s\nwant it to contain\n%s", strings.Join(args, " "), errOut, want)
	}
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: tinykube.test/web:1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
`

func serviceManifest(name, ports string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
spec:
  type: NodePort
  selector: {app: %s}
%s`, name, name, ports)
}

// TestKubectlWorkflow is a user's first session: apply an app, look at it
// every way kubectl offers, change it, and delete it; then the mistakes
// users make, each with upstream's message.
func TestKubectlWorkflow(t *testing.T) {
	p := startServer(t, t.TempDir())
	for _, k := range kubectlRunners(t, p) {
		t.Run(k.name, func(t *testing.T) {
			ns := "e2e-" + k.name
			k.ok(t, "", "create", "namespace", ns)
			n := func(args ...string) []string { return append([]string{"-n", ns}, args...) }

			out := k.ok(t, webManifest, n("apply", "-f", "-")...)
			for _, want := range []string{"deployment.apps/web created", "service/web created"} {
				if !strings.Contains(out, want) {
					t.Errorf("apply printed %q, want %q", out, want)
				}
			}
			// Applying the same manifest again changes nothing.
			out = k.ok(t, webManifest, n("apply", "-f", "-")...)
			if !strings.Contains(out, "deployment.apps/web unchanged") || !strings.Contains(out, "service/web unchanged") {
				t.Errorf("second apply printed %q, want unchanged", out)
			}

			out = k.ok(t, "", n("get", "svc", "web")...)
			if !regexp.MustCompile(`web\s+NodePort\s+10\.43\.\d+\.\d+\s+<none>\s+80:3\d{4}/TCP`).MatchString(out) {
				t.Errorf("get svc printed:\n%s", out)
			}
			out = k.ok(t, "", n("get", "deploy", "-o", "wide")...)
			if !strings.Contains(out, "tinykube.test/web:1") || !strings.Contains(out, "app=web") {
				t.Errorf("get deploy -o wide printed:\n%s", out)
			}
			if out := k.ok(t, "", n("get", "deploy,svc", "-o", "name")...); out != "deployment.apps/web\nservice/web\n" {
				t.Errorf("get -o name printed %q", out)
			}
			if out := k.ok(t, "", n("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")...); out != "tinykube.test/web:1" {
				t.Errorf("get -o jsonpath printed %q", out)
			}
			if out := k.ok(t, "", n("get", "deploy", "web", "-o", "yaml")...); !strings.Contains(out, "kind: Deployment") || !strings.Contains(out, "resourceVersion:") {
				t.Errorf("get -o yaml printed:\n%s", out)
			}
			if out := k.ok(t, "", n("get", "svc", "web", "-o", "json")...); !strings.Contains(out, `"nodePort": 3`) {
				t.Errorf("get -o json printed:\n%s", out)
			}
			if out := k.ok(t, "", n("get", "svc", "-o", "custom-columns=NAME:.metadata.name,TYPE:.spec.type")...); !regexp.MustCompile(`web\s+NodePort`).MatchString(out) {
				t.Errorf("get -o custom-columns printed:\n%s", out)
			}
			if out := k.ok(t, "", n("describe", "deployment", "web")...); !strings.Contains(out, "Name:") || !strings.Contains(out, "tinykube.test/web:1") {
				t.Errorf("describe printed:\n%s", out)
			}

			k.ok(t, "", n("label", "deployment", "web", "tier=frontend")...)
			k.ok(t, "", n("annotate", "deployment", "web", "owner=e2e")...)
			k.ok(t, "", n("patch", "deployment", "web", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"tinykube.test/web:2"}]}}}}`)...)
			k.ok(t, "", n("set", "image", "deployment/web", "web=tinykube.test/web:3")...)
			if out := k.ok(t, "", n("get", "deploy", "-l", "tier=frontend", "-o", "jsonpath={.items[0].spec.template.spec.containers[0].image}")...); out != "tinykube.test/web:3" {
				t.Errorf("after label, patch and set image: %q", out)
			}
			if out := k.ok(t, "", n("scale", "deployment", "web", "--replicas=3")...); !strings.Contains(out, "deployment.apps/web scaled") {
				t.Errorf("scale printed %q", out)
			}
			k.ok(t, "", n("wait", "--for=jsonpath={.spec.replicas}=3", "deployment/web", "--timeout=20s")...)

			cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n"
			if out := k.ok(t, cm, n("apply", "--server-side", "-f", "-")...); !strings.Contains(out, "configmap/ssa serverside-applied") {
				t.Errorf("apply --server-side printed %q", out)
			}

			// Mistakes, with upstream's words.
			k.fails(t, serviceManifest("low", "  ports:\n  - port: 80\n    nodePort: 29999\n"),
				`spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767`,
				n("apply", "-f", "-")...)
			port := k.ok(t, "", n("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")...)
			k.fails(t, serviceManifest("taken", "  ports:\n  - port: 80\n    nodePort: "+port+"\n"),
				`spec.ports[0].nodePort: Invalid value: `+port+`: provided port is already allocated`,
				n("apply", "-f", "-")...)
			k.fails(t, serviceManifest("noports", ""), `spec.ports: Required value`, n("apply", "-f", "-")...)
			k.fails(t, strings.Replace(serviceManifest("portz", "  ports:\n  - port: 80\n"), "  ports:", "  portz: 1\n  ports:", 1),
				`unknown field "spec.portz"`, n("apply", "-f", "-")...)
			k.fails(t, "", `a lowercase RFC 1123 subdomain must consist of`, n("create", "configmap", "Bad_Name")...)
			k.fails(t, "", `namespaces "nope" not found`, "get", "namespace", "nope")

			// Each cascade mode, as the garbage collector carries it out.
			// kubectl waits for the deletion itself by default.
			k.ok(t, "", n("create", "deployment", "orphaned", "--image=tinykube.test/web:1")...)
			k.ok(t, "", n("wait", "--for=create", "replicaset", "-l", "app=orphaned", "--timeout=30s")...)
			k.ok(t, "", n("delete", "deployment", "orphaned", "--cascade=orphan", "--timeout=30s")...)
			if out := k.ok(t, "", n("get", "replicaset", "-l", "app=orphaned", "-o", "name")...); out == "" {
				t.Error("--cascade=orphan deleted the ReplicaSet too")
			}
			k.ok(t, "", n("delete", "deployment", "web", "--cascade=foreground", "--timeout=30s")...)
			if out := k.ok(t, "", n("get", "replicaset", "-l", "app=web", "-o", "name")...); out != "" {
				t.Errorf("--cascade=foreground left %q", out)
			}
			k.ok(t, "", n("delete", "service", "web", "--cascade=background")...)
			if out := k.ok(t, "", n("get", "deploy,svc", "-o", "name")...); out != "" {
				t.Errorf("after delete, get printed %q", out)
			}
			// The namespace controller empties the namespace, then the
			// namespace goes.
			k.ok(t, "", "delete", "namespace", ns, "--timeout=60s")
			k.fails(t, "", `namespaces "`+ns+`" not found`, "get", "namespace", ns)
		})
	}
}

// TestKubectlGetWatch checks `kubectl get -w` prints changes as they happen.
func TestKubectlGetWatch(t *testing.T) {
	p := startServer(t, t.TempDir())
	k := kubectlRunners(t, p)[0]
	cmd := k.command(context.Background(), "", "get", "configmaps", "-w", "--output-watch-events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// kubectl lists, then watches from the list's resourceVersion, so the
	// object is seen whether it is created before or after the watch.
	expect := func(re string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl get -w exited before printing %q", re)
				}
				if regexp.MustCompile(re).MatchString(line) {
					return
				}
			case <-deadline:
				t.Fatalf("kubectl get -w never printed %q", re)
			}
		}
	}
	k.ok(t, "", "create", "configmap", "watched")
	expect(`^ADDED\s+watched\s`)
	k.ok(t, "", "label", "configmap", "watched", "x=y")
	expect(`^MODIFIED\s+watched\s`)
	k.ok(t, "", "delete", "configmap", "watched")
	expect(`^DELETED\s+watched\s`)
}
