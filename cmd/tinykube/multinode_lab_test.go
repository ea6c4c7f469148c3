//go:build !nokubectl

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The lab's three nodes: the server and two agents.
var labNodes = []struct{ name, ip string }{
	{"node1", "192.168.77.10"},
	{"node2", "192.168.77.11"},
	{"node3", "192.168.77.12"},
}

// TestThreeNodeCluster is issue 8's lab: one server and two agents joined
// with the server's token, the classic Deployment scaled to 3 over them,
// reached through the NodePort of every node, pods reaching each other and
// the Service across nodes; then an agent is lost, its pods are replaced
// on the others while the NodePort keeps answering, and it comes back
// and cleans up its stale pods. It runs with each pod routing backend.
func TestThreeNodeCluster(t *testing.T) {
	for _, backend := range []string{"host-gw", "vxlan"} {
		t.Run(backend, func(t *testing.T) { threeNodeCluster(t, backend) })
	}
}

func threeNodeCluster(t *testing.T, backend string) {
	lan := newLabNet(t)
	// Short node-loss timings: a lease older than 20 s means unreachable,
	// and pods leave an unreachable node 2 s later.
	server := newLabServer(t, lan, labNodes[0].name, labNodes[0].ip,
		"--flannel-backend", backend,
		"--node-monitor-grace-period", "20s",
		"--default-not-ready-toleration-seconds", "2",
		"--default-unreachable-toleration-seconds", "2")
	server.start()
	nodes := []*labServer{server}
	for _, n := range labNodes[1:] {
		a := newLabAgent(t, lan, server, n.name, n.ip, "--flannel-backend", backend)
		a.start()
		nodes = append(nodes, a)
	}
	for _, n := range nodes {
		n.waitNodeReady()
	}

	server.kubectlOK(classicManifest, "apply", "-f", "-")
	server.kubectlOK("", "scale", "deployment/nginx-deployment", "--replicas=3")
	server.kubectlOK("", "rollout", "status", "deployment/nginx-deployment", "--timeout=180s")

	cs := server.clientset()
	ctx := context.Background()
	nginxPods := func() []corev1.Pod {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			t.Fatal(err)
		}
		var live []corev1.Pod
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				live = append(live, p)
			}
		}
		return live
	}
	pods := nginxPods()
	want := map[string]bool{}
	byNode := map[string]corev1.Pod{}
	for _, p := range pods {
		want[p.Name] = true
		byNode[p.Spec.NodeName] = p
	}
	if len(byNode) != 3 {
		t.Fatalf("3 replicas on %d nodes, want one on each: %v", len(byNode), byNode)
	}
	svc, err := cs.CoreV1().Services("default").Get(ctx, "nginx-service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodePort := svc.Spec.Ports[0].NodePort
	external := httpFrom(lan.client)

	t.Run("every pod answers through every node's NodePort", func(t *testing.T) {
		for _, n := range labNodes {
			url := fmt.Sprintf("http://%s:%d/", n.ip, nodePort)
			answerers(t, url, func() (string, error) { return get(external, url) }, want)
		}
	})
	t.Run("pods reach pods and the Service across nodes", func(t *testing.T) {
		onServer := httpFrom(server.ns)
		from := byNode[labNodes[0].name]
		fetch := func(url string) (string, error) {
			return get(onServer, "http://"+from.Status.PodIP+"/fetch?url="+url)
		}
		for _, n := range labNodes[1:] {
			to := byNode[n.name]
			body, err := fetch("http://" + to.Status.PodIP + "/")
			if err != nil || body != "hello from "+to.Name+"\n" {
				t.Errorf("pod on %s to pod on %s: %q, %v", labNodes[0].name, n.name, body, err)
			}
		}
		answerers(t, "nginx-service from a pod", func() (string, error) { return fetch("http://nginx-service/") }, want)
	})
	t.Run("a node's certificate cannot touch another node's pod", func(t *testing.T) {
		// node2's own client certificate, issued through the join.
		cfg, err := clientcmd.BuildConfigFromFlags("", server.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg = rest.AnonymousClientConfig(cfg)
		cfg.Dial = server.ns.DialContext
		cfg.CertFile = filepath.Join(nodes[1].dataDir, "agent", "tls", "kubelet-client.crt")
		cfg.KeyFile = filepath.Join(nodes[1].dataDir, "agent", "tls", "kubelet-client.key")
		asNode2, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := asNode2.CoreV1().Nodes().Get(ctx, labNodes[1].name, metav1.GetOptions{}); err != nil {
			t.Fatalf("node2 reading its own Node: %v", err)
		}
		other := byNode[labNodes[0].name]
		_, err = asNode2.CoreV1().Pods("default").Patch(ctx, other.Name, types.MergePatchType,
			[]byte(`{"status":{"conditions":[{"type":"Ready","status":"False"}]}}`), metav1.PatchOptions{}, "status")
		if !apierrors.IsForbidden(err) {
			t.Errorf("node2 patching the status of %s on node1: %v, want Forbidden", other.Name, err)
		}
		if err := asNode2.CoreV1().Pods("default").Delete(ctx, other.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("node2 deleting %s on node1: %v, want Forbidden", other.Name, err)
		}
		if _, err := asNode2.CoreV1().Nodes().Patch(ctx, labNodes[0].name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"stolen":"yes"}}}`), metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("node2 labelling node1: %v, want Forbidden", err)
		}
	})

	lost := nodes[2]
	t.Run("a lost agent's pods move to the other nodes", func(t *testing.T) {
		stalePod := byNode[lost.name]
		lost.stop(syscall.SIGKILL)
		server.waitUntil(lost.name+" NotReady and its pod replaced", 120*time.Second, func(ctx context.Context) (bool, error) {
			n, err := cs.CoreV1().Nodes().Get(ctx, lost.name, metav1.GetOptions{})
			if err != nil || nodeReady(n) {
				return false, nil
			}
			live := nginxPods()
			ready := 0
			for _, p := range live {
				if p.Spec.NodeName == lost.name {
					return false, nil
				}
				if countReady([]corev1.Pod{p}) == 1 {
					ready++
				}
			}
			return ready == 3, nil
		})
		now := map[string]bool{}
		for _, p := range nginxPods() {
			now[p.Name] = true
		}
		if now[stalePod.Name] {
			t.Fatalf("pod %s of the lost node still counted", stalePod.Name)
		}
		for _, n := range labNodes[:2] {
			url := fmt.Sprintf("http://%s:%d/", n.ip, nodePort)
			answerers(t, url+" after node loss", func() (string, error) { return get(external, url) }, now)
		}
	})
	t.Run("the agent rejoins and removes its stale pods", func(t *testing.T) {
		lost.start()
		lost.waitNodeReady()
		server.waitUntil("no pod left on "+lost.name, 120*time.Second, func(ctx context.Context) (bool, error) {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + lost.name})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.Labels["app"] == "nginx" {
					return false, nil
				}
			}
			return true, nil
		})
		server.waitUntil("the stale container stopped on "+lost.name, 60*time.Second, func(context.Context) (bool, error) {
			return runningTasks(t, lost) == 0, nil
		})
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
