//go:build !nokubectl

package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podsManifest: three test servers that a failing /healthz restarts, a
// busybox pod to exec into, and a container that always crashes.
const podsManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: tinykube/testserver:v1
        env: [{name: PORT, value: "80"}]
        ports: [{containerPort: 80}]
        readinessProbe:
          httpGet: {path: /healthz, port: 80}
          periodSeconds: 1
        livenessProbe:
          httpGet: {path: /healthz, port: 80}
          periodSeconds: 1
          failureThreshold: 2
---
` + shellPod + `---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: crasher
    image: busybox
    imagePullPolicy: Never
    command: [sh, -c, "echo about to fail; exit 3"]
`

// shellPod is a pod whose one container sleeps, to exec into.
const shellPod = `apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: shell
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
`

// TestPodsEndToEnd runs pods through the whole server (scheduler, kubelet,
// containerd, CNI) and drives them with kubectl as a user would: ready
// replicas answering on their pod IPs, logs, exec, port-forward, a liveness
// restart, CrashLoopBackOff, deletion that leaves nothing behind, and a
// SIGKILLed server whose pods keep running and are adopted, not duplicated.
func TestPodsEndToEnd(t *testing.T) {
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP)
	node.start()
	node.waitNodeReady()
	node.kubectlOK(podsManifest, "apply", "-f", "-")
	node.kubectlOK("", "rollout", "status", "deployment/web", "--timeout=120s")
	node.kubectlOK("", "wait", "--for=condition=Ready", "pod/shell", "--timeout=120s")

	cs := node.clientset()
	ctx := context.Background()
	webPods := func() []corev1.Pod {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
	pods := webPods()
	if n := countReady(pods); n != 3 {
		t.Fatalf("%d ready web pods, want 3", n)
	}
	onNode := httpFrom(node.ns)

	t.Run("each pod answers on its pod IP from the node", func(t *testing.T) {
		for _, p := range pods {
			body, err := get(onNode, "http://"+p.Status.PodIP+"/")
			if err != nil || body != "hello from "+p.Name+"\n" {
				t.Errorf("%s at %s: %q, %v", p.Name, p.Status.PodIP, body, err)
			}
		}
	})
	t.Run("kubectl logs", func(t *testing.T) {
		node := node.in(t)
		out := node.kubectlOK("", "logs", pods[0].Name)
		if !strings.Contains(out, "listening on :80") {
			t.Fatalf("kubectl logs %s:\n%s", pods[0].Name, out)
		}
	})
	t.Run("kubectl exec", func(t *testing.T) {
		node := node.in(t)
		if out := node.kubectlOK("", "exec", "shell", "--", "echo", "hello", "from", "exec"); out != "hello from exec\n" {
			t.Fatalf("exec output %q", out)
		}
		if out := node.kubectlOK("line one\nline two\n", "exec", "-i", "shell", "--", "cat"); out != "line one\nline two\n" {
			t.Fatalf("exec -i with stdin: %q", out)
		}
		_, errOut, code := node.kubectl("", "exec", "shell", "--", "sh", "-c", "exit 7")
		if code != 7 {
			t.Fatalf("exec exit code %d, want 7 (stderr %q)", code, errOut)
		}
	})
	t.Run("kubectl port-forward", func(t *testing.T) {
		node := node.in(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", node.ns.Name, os.Args[0], "kubectl", "--kubeconfig", node.kubeconfig,
			"port-forward", "pod/"+pods[1].Name, "18080:80")
		cmd.Env = append(os.Environ(), execMainEnv+"=1", "HOME="+t.TempDir())
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
		node.waitUntil("port-forward answering", 30*time.Second, func(context.Context) (bool, error) {
			body, err := get(onNode, "http://127.0.0.1:18080/")
			return err == nil && body == "hello from "+pods[1].Name+"\n", nil
		})
	})
	t.Run("liveness failure restarts the container", func(t *testing.T) {
		node := node.in(t)
		p := pods[2]
		if _, err := get(onNode, "http://"+p.Status.PodIP+"/sick"); err != nil {
			t.Fatal(err)
		}
		node.waitUntil("restartCount 1 and ready again", 60*time.Second, func(ctx context.Context) (bool, error) {
			cur, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || len(cur.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			st := cur.Status.ContainerStatuses[0]
			return st.RestartCount >= 1 && st.Ready, nil
		})
	})
	t.Run("a crashing container goes to CrashLoopBackOff", func(t *testing.T) {
		node := node.in(t)
		node.waitUntil("CrashLoopBackOff", 60*time.Second, func(ctx context.Context) (bool, error) {
			cur, err := cs.CoreV1().Pods("default").Get(ctx, "crasher", metav1.GetOptions{})
			if err != nil || len(cur.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			st := cur.Status.ContainerStatuses[0]
			return st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff" &&
				st.LastTerminationState.Terminated != nil && st.LastTerminationState.Terminated.ExitCode == 3, nil
		})
		if out := node.kubectlOK("", "get", "pod", "crasher"); !strings.Contains(out, "CrashLoopBackOff") {
			t.Fatalf("kubectl get pod crasher:\n%s", out)
		}
	})
	t.Run("deleting a pod stops it and leaves no veth", func(t *testing.T) {
		node := node.in(t)
		before := bridgePorts(t, node)
		node.kubectlOK("", "delete", "pod", "crasher", "--wait=true")
		node.waitUntil("crasher's veth gone", 30*time.Second, func(context.Context) (bool, error) {
			return len(bridgePorts(t, node)) == len(before)-1, nil
		})
	})
	t.Run("a Job runs to completion", func(t *testing.T) {
		node := node.in(t)
		// A manifest rather than `kubectl create job`: busybox is :latest,
		// which would be pulled (Always), and no registry is reachable.
		node.kubectlOK(`apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: once
        image: busybox
        imagePullPolicy: Never
        command: [sh, -c, "echo the job ran"]
`, "apply", "-f", "-")
		node.kubectlOK("", "wait", "--for=condition=complete", "job/once", "--timeout=120s")
		if out := node.kubectlOK("", "logs", "job/once"); out != "the job ran\n" {
			t.Fatalf("kubectl logs job/once: %q", out)
		}
		if out := node.kubectlOK("", "get", "job", "once"); !strings.Contains(out, "Complete") || !strings.Contains(out, "1/1") {
			t.Fatalf("kubectl get job once:\n%s", out)
		}
		node.kubectlOK("", "delete", "job", "once")
	})
	t.Run("SIGKILLed server: pods keep running, adopted without duplicates", func(t *testing.T) {
		node := node.in(t)
		before := map[string]string{} // pod name -> container ID
		for _, p := range webPods() {
			before[p.Name] = p.Status.ContainerStatuses[0].ContainerID
		}
		tasksBefore := runningTasks(t, node)
		node.stop(syscall.SIGKILL)
		// With the whole server gone, the pods still answer.
		for _, p := range pods {
			if _, err := get(onNode, "http://"+p.Status.PodIP+"/"); err != nil {
				t.Errorf("%s while the server is down: %v", p.Name, err)
			}
		}
		node.start()
		node.waitNodeReady()
		node.kubectlOK("", "rollout", "status", "deployment/web", "--timeout=120s")
		after := webPods()
		if len(after) != 3 {
			t.Fatalf("%d web pods after restart, want 3", len(after))
		}
		for _, p := range after {
			if id, ok := before[p.Name]; !ok || p.Status.ContainerStatuses[0].ContainerID != id {
				t.Errorf("pod %s container %s after restart; before: %v", p.Name, p.Status.ContainerStatuses[0].ContainerID, before)
			}
		}
		if got := runningTasks(t, node); got != tasksBefore {
			t.Errorf("%d running containers after restart, %d before", got, tasksBefore)
		}
	})
}

// bridgePorts lists the veths on the node's pod bridge.
func bridgePorts(t *testing.T, node *labServer) []string {
	t.Helper()
	out := node.ns.IP("-o", "link", "show", "master", "tinykube0")
	var ports []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			ports = append(ports, strings.TrimSuffix(f[1], ":"))
		}
	}
	return ports
}

// runningTasks counts the containers running in the node's containerd.
func runningTasks(t *testing.T, node *labServer) int {
	t.Helper()
	sock := node.dataDir + "/agent/containerd/containerd.sock"
	out, err := exec.Command("ctr", "--address", sock, "--namespace", "k8s.io", "tasks", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr tasks list: %v: %s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "RUNNING") {
			n++
		}
	}
	return n
}
