package deployment_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/deployment"
)

// kubectl runs the real kubectl in-process against the test server and
// returns what it printed.
type kubectl struct {
	t          *testing.T
	kubeconfig string
	cache      string
}

func newKubectl(t *testing.T, s *apiservertest.Server) *kubectl {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q}
contexts:
- name: test
  context: {cluster: test, user: test, namespace: default}
current-context: test
users:
- name: test
  user: {}
`, s.Config.Host)
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &kubectl{t: t, kubeconfig: path, cache: filepath.Join(dir, "cache")}
}

func (k *kubectl) run(args ...string) string {
	k.t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &k.kubeconfig
	flags.CacheDir = &k.cache
	// kubectl exits the process on errors; make it fail the test instead.
	var fatal string
	cmdutil.BehaviorOnFatal(func(msg string, code int) { fatal = fmt.Sprintf("exit %d: %s", code, msg) })
	defer cmdutil.DefaultBehaviorOnFatal()
	cmd := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		Arguments: append([]string{"kubectl"}, args...), ConfigFlags: flags, IOStreams: streams,
	})
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		cmdutil.CheckErr(err)
	}
	if fatal != "" {
		k.t.Fatalf("kubectl %s: %s\n%s", strings.Join(args, " "), fatal, errOut.String())
	}
	return out.String()
}

func TestKubectlRolloutCommands(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	startControllers(t, s.Client)
	startKubelet(t, s.Client)
	k := newKubectl(t, s)
	ctx := context.Background()
	d := nginx(2).obj()
	d.Annotations = map[string]string{"kubernetes.io/change-cause": "first"}
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s"); !strings.Contains(out, `deployment "nginx-deployment" successfully rolled out`) {
		t.Fatalf("rollout status: %q", out)
	}

	k.run("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.27")
	k.run("annotate", "deployment/nginx-deployment", "kubernetes.io/change-cause=to 1.27", "--overwrite")
	k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s")
	waitRolledOut(t, s.Client, "nginx-deployment", "nginx:1.27")

	// history lists both revisions with their change-cause.
	out := k.run("rollout", "history", "deployment/nginx-deployment")
	for _, want := range []string{"REVISION", "CHANGE-CAUSE", "1         first", "2         to 1.27"} {
		if !strings.Contains(out, want) {
			t.Errorf("rollout history lacks %q:\n%s", want, out)
		}
	}
	if out := k.run("rollout", "history", "deployment/nginx-deployment", "--revision=1"); !strings.Contains(out, "nginx:latest") {
		t.Errorf("rollout history --revision=1:\n%s", out)
	}

	// undo goes back to revision 1's template, as revision 3.
	k.run("rollout", "undo", "deployment/nginx-deployment")
	k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s")
	got := waitRolledOut(t, s.Client, "nginx-deployment", "nginx:latest")
	if got.Annotations[deployment.RevisionAnnotation] != "3" {
		t.Errorf("revision after undo %q, want 3", got.Annotations[deployment.RevisionAnnotation])
	}

	// pause: template changes wait; resume rolls them out.
	k.run("rollout", "pause", "deployment/nginx-deployment")
	k.run("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.28")
	waitFor(t, "paused condition", 10*time.Second, func(ctx context.Context) (bool, error) {
		d, err := getDeployment(ctx, s.Client, "nginx-deployment")
		if err != nil {
			return false, err
		}
		c := condition(d, "Progressing")
		return d.Status.ObservedGeneration == d.Generation && c != nil && c.Reason == "DeploymentPaused" && c.Message == "Deployment is paused", nil
	})
	rss, err := listReplicaSets(ctx, s.Client)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss {
		if rs.Spec.Template.Spec.Containers[0].Image == "nginx:1.28" {
			t.Fatal("a paused Deployment rolled out a new template")
		}
	}
	k.run("rollout", "resume", "deployment/nginx-deployment")
	k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s")
	waitRolledOut(t, s.Client, "nginx-deployment", "nginx:1.28")

	// restart rolls out new pods with the same image.
	before, err := listPods(ctx, s.Client, "app=nginx")
	if err != nil {
		t.Fatal(err)
	}
	k.run("rollout", "restart", "deployment/nginx-deployment")
	k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s")
	waitFor(t, "restarted pods", 20*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := listPods(ctx, s.Client, "app=nginx")
		if err != nil || len(pods) != 2 {
			return false, err
		}
		for _, p := range pods {
			for _, b := range before {
				if p.Name == b.Name {
					return false, nil
				}
			}
			if p.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
				return false, nil
			}
		}
		return true, nil
	})

	// kubectl scale.
	k.run("scale", "deployment/nginx-deployment", "--replicas=5")
	k.run("rollout", "status", "deployment/nginx-deployment", "--timeout=30s")
	if d, err := getDeployment(ctx, s.Client, "nginx-deployment"); err != nil || !rolledOut(d) || d.Status.AvailableReplicas != 5 {
		t.Fatalf("after scale: %+v %v", d.Status, err)
	}
}
