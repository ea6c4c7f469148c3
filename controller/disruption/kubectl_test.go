package disruption_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// kubectl runs the real kubectl in-process against s and returns what it
// printed to stdout and stderr.
func kubectl(t *testing.T, s *apiservertest.Server, args ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {server: %q}\ncontexts:\n- name: test\n  context: {cluster: test, user: test, namespace: default}\ncurrent-context: test\nusers:\n- name: test\n  user: {}\n", s.Config.Host)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig, flags.CacheDir = &kubeconfig, &cacheDir
	// kubectl exits the process on errors; make it fail the test instead.
	var fatal string
	cmdutil.BehaviorOnFatal(func(msg string, code int) { fatal = fmt.Sprintf("exit %d: %s", code, msg) })
	defer cmdutil.DefaultBehaviorOnFatal()
	cmd := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{Arguments: append([]string{"kubectl"}, args...), ConfigFlags: flags, IOStreams: streams})
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		cmdutil.CheckErr(err)
	}
	if fatal != "" {
		t.Fatalf("kubectl %s: %s\n%s", strings.Join(args, " "), fatal, errOut.String())
	}
	return out.String(), errOut.String()
}

// fakeKubelet makes every web pod run and be ready, as a kubelet would,
// until the test ends.
func fakeKubelet(t *testing.T, client kubernetes.Interface) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if pods, err := livePods(ctx, client); err == nil {
				_, _ = makeReady(ctx, client, pods)
			}
			return false, nil
		})
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// manifestDir writes manifest to pdb.yaml in a new directory.
func manifestDir(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pdb.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

const budgetYAML = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: web
`

func TestKubectlAppliesExplainsListsAndDrainsWithinBudgets(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	client := startClusterOn(t, s)
	ctx := context.Background()

	manifest := filepath.Join(manifestDir(t, budgetYAML), "pdb.yaml")
	kubectl(t, s, "apply", "-f", manifest)
	if out, _ := kubectl(t, s, "explain", "pdb.spec.unhealthyPodEvictionPolicy"); !strings.Contains(out, "IfHealthyBudget") {
		t.Fatalf("explain:\n%s", out)
	}
	createDeployment(t, client, 0)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var onNode []string
	poll(t, "3 pods bound to n1", func(ctx context.Context) (bool, error) {
		pods, err := livePods(ctx, client)
		if err != nil || len(pods) != 3 {
			return false, err
		}
		for _, p := range pods {
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
			if err := client.CoreV1().Pods("default").Bind(ctx, b, metav1.CreateOptions{}); err != nil {
				return false, err
			}
			onNode = append(onNode, p.Name)
		}
		return true, nil
	})
	fakeKubelet(t, client)
	poll(t, "the budget to allow 1 disruption", func(ctx context.Context) (bool, error) {
		out, _ := kubectl(t, s, "get", "pdb", "web")
		return strings.Contains(out, "NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE") &&
			strings.Contains(out, "web    2               N/A               1"), nil
	})

	out, _ := kubectl(t, s, "describe", "pdb", "web")
	for _, want := range []string{"Min available:  2", "Allowed disruptions:  1"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	// A server-side apply by another manager takes over minAvailable.
	if err := os.WriteFile(manifest, []byte(strings.Replace(budgetYAML, "minAvailable: 2", "minAvailable: 1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, s, "apply", "--server-side", "--force-conflicts", "--field-manager=ops", "-f", manifest)
	poll(t, "the budget to allow 2 disruptions", func(ctx context.Context) (bool, error) {
		out, _ := kubectl(t, s, "get", "pdb", "web", "--no-headers")
		return strings.Contains(out, "web   1     N/A   2"), nil
	})
	// And back to 2 for the drain.
	kubectl(t, s, "apply", "--server-side", "--force-conflicts", "--field-manager=ops", "-f", filepath.Join(manifestDir(t, budgetYAML), "pdb.yaml"))

	out, errOut := kubectl(t, s, "drain", "n1", "--timeout=60s")
	if !strings.Contains(out, "node/n1 drained") {
		t.Fatalf("drain:\n%s\n%s", out, errOut)
	}
	// Two of the three evictions had to wait for replacements.
	if !strings.Contains(errOut, "Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Fatalf("drain was never refused:\n%s", errOut)
	}
	for _, name := range onNode {
		if !strings.Contains(out, "pod/"+name+" evicted") {
			t.Errorf("drain did not evict %s:\n%s", name, out)
		}
	}
}
