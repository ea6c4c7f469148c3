//go:build !nokubectl

package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servicesManifest is a Deployment of two test servers, ready only while
// /healthz answers, with the Services the proxy acceptance needs: a
// ClusterIP reached by name, a headless one, a NodePort with ClientIP
// affinity, and a NodePort whose selector matches nothing; and a busybox
// pod to look from.
const servicesManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
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
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nothing}
spec:
  type: NodePort
  selector: {app: nothing-matches}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8081, targetPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: look}
spec:
  containers:
  - name: look
    image: busybox
    imagePullPolicy: Never
    command: [sleep, "3600"]
`

// TestServicesInCluster checks what a Service promises beyond the
// headline: names in cluster DNS, ClusterIP from a pod, headless
// Services, session affinity, rejection without endpoints, readiness and
// scaling to zero and back.
func TestServicesInCluster(t *testing.T) {
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP)
	node.start()
	node.waitNodeReady()
	node.kubectlOK(servicesManifest, "apply", "-f", "-")
	node.kubectlOK("", "rollout", "status", "deployment/web", "--timeout=120s")
	node.kubectlOK("", "wait", "--for=condition=Ready", "pod/look", "--timeout=120s")

	cs := node.clientset()
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	podIP := map[string]string{}
	for _, p := range pods.Items {
		want[p.Name] = true
		podIP[p.Name] = p.Status.PodIP
	}
	nodePort := func(name string) int32 {
		svc, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc.Spec.Ports[0].NodePort
	}
	// execIn runs a command in the busybox pod through kubectl exec.
	execIn := func(args ...string) (string, error) {
		out, errOut, code := node.kubectl("", append([]string{"exec", "look", "--"}, args...)...)
		if code != 0 {
			return "", fmt.Errorf("exit %d: %s", code, errOut)
		}
		return out, nil
	}

	t.Run("pod resolv.conf points at kube-dns", func(t *testing.T) {
		dnsSvc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dnsSvc.Spec.ClusterIP != "10.43.0.10" {
			t.Fatalf("kube-dns ClusterIP %s, want 10.43.0.10", dnsSvc.Spec.ClusterIP)
		}
		out, err := execIn("cat", "/etc/resolv.conf")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"nameserver 10.43.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
			if !strings.Contains(out, line) {
				t.Errorf("resolv.conf lacks %q:\n%s", line, out)
			}
		}
	})
	// fromPod asks a web pod's test server to fetch or resolve something,
	// so the request starts inside that pod, with its resolv.conf.
	onNode := httpFrom(node.ns)
	var asker string
	for name := range want {
		asker = name
		break
	}
	fromPod := func(path string) (string, error) {
		return get(onNode, "http://"+podIP[asker]+path)
	}
	t.Run("ClusterIP by DNS name from a pod", func(t *testing.T) {
		for _, name := range []string{"web", "web.default", "web.default.svc.cluster.local"} {
			answerers(t, "http://"+name+"/ from pod", func() (string, error) {
				return fromPod("/fetch?url=http://" + name + "/")
			}, want)
		}
	})
	t.Run("headless Service resolves to the pods", func(t *testing.T) {
		out, err := fromPod("/lookup?name=web-headless")
		if err != nil {
			t.Fatal(err)
		}
		for name, ip := range podIP {
			if !strings.Contains(out, ip) {
				t.Errorf("web-headless lacks %s (%s):\n%s", ip, name, out)
			}
		}
	})
	t.Run("a pod talks to the API server as its service account", func(t *testing.T) {
		// kubernetes.default.svc through cluster DNS and the proxy, the
		// serving certificate's name, the kube-api-access volume's CA and
		// token: authenticated as the pod's service account, which RBAC
		// allows nothing yet.
		out, err := fromPod("/incluster?path=/api/v1/namespaces/default/pods")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, "403 Forbidden") || !strings.Contains(out, `User \"system:serviceaccount:default:default\" cannot list resource \"pods\"`) {
			t.Fatalf("in-cluster request from the pod: %s", out)
		}
		out, err = fromPod("/incluster?path=/version")
		if err != nil || !strings.HasPrefix(out, "200 OK") || !strings.Contains(out, `"gitVersion"`) {
			t.Fatalf("in-cluster /version from the pod: %s, %v", out, err)
		}
	})
	t.Run("session affinity ClientIP", func(t *testing.T) {
		external := httpFrom(lan.client)
		url := fmt.Sprintf("http://%s:%d/", labNodeIP, nodePort("web-sticky"))
		first := ""
		for i := range 20 {
			body, err := get(external, url)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("request %d answered by %q, first by %q", i, body, first)
			}
		}
	})
	t.Run("LoadBalancer: the node's address, answering on the Service port", func(t *testing.T) {
		node := node.in(t)
		node.waitUntil("web-lb ingress", 30*time.Second, func(ctx context.Context) (bool, error) {
			svc, err := cs.CoreV1().Services("default").Get(ctx, "web-lb", metav1.GetOptions{})
			return err == nil && len(svc.Status.LoadBalancer.Ingress) == 1 && svc.Status.LoadBalancer.Ingress[0].IP == labNodeIP, nil
		})
		if out := node.kubectlOK("", "get", "service", "web-lb"); !strings.Contains(out, labNodeIP) || !strings.Contains(out, "8081:") {
			t.Fatalf("kubectl get service web-lb:\n%s", out)
		}
		external := httpFrom(lan.client)
		url := "http://" + net.JoinHostPort(labNodeIP, "8081") + "/"
		answerers(t, url, func() (string, error) { return get(external, url) }, want)

		// A second LoadBalancer on the same port stays pending, with an event.
		node.kubectlOK("", "create", "service", "loadbalancer", "web-lb2", "--tcp=8081:80")
		node.waitUntil("a PortInUse-style event for web-lb2", 30*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web-lb2"})
			if err != nil {
				return false, nil
			}
			for _, e := range evs.Items {
				if e.Type == corev1.EventTypeWarning {
					return true, nil
				}
			}
			return false, nil
		})
		if out := node.kubectlOK("", "get", "service", "web-lb2"); !strings.Contains(out, "<pending>") {
			t.Fatalf("kubectl get service web-lb2 (port taken):\n%s", out)
		}
	})
	t.Run("no endpoints: rejected at once", func(t *testing.T) {
		node := node.in(t)
		addr := net.JoinHostPort(labNodeIP, fmt.Sprint(nodePort("nothing")))
		if !dialRefused(lan.client, addr) {
			t.Fatalf("connection to %s (no endpoints) was not refused", addr)
		}
		svc, err := cs.CoreV1().Services("default").Get(ctx, "nothing", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if addr := net.JoinHostPort(svc.Spec.ClusterIP, "80"); !dialRefused(node.ns, addr) {
			t.Fatalf("connection to ClusterIP %s (no endpoints) from the node was not refused", addr)
		}
	})
	t.Run("a pod failing readiness stops receiving traffic", func(t *testing.T) {
		node := node.in(t)
		sick := asker
		if _, err := get(onNode, "http://"+podIP[sick]+"/sick"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		clusterURL := "http://" + svc.Spec.ClusterIP + "/"
		// Twenty answers in a row from the healthy pod: the sick one is out.
		node.waitUntil("traffic only to the ready pod", 30*time.Second, func(context.Context) (bool, error) {
			for range 20 {
				body, err := get(onNode, clusterURL)
				if err != nil || strings.Contains(body, sick) {
					return false, nil
				}
			}
			return true, nil
		})
		t.Logf("sick pod out of rotation %v after /sick (readiness period 1s)", time.Since(start).Round(10*time.Millisecond))
	})
	t.Run("scale to zero and back", func(t *testing.T) {
		node := node.in(t)
		clusterIP := func() string {
			svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return svc.Spec.ClusterIP
		}()
		node.kubectlOK("", "scale", "deployment/web", "--replicas=0")
		addr := net.JoinHostPort(clusterIP, "80")
		node.waitUntil("refused with no replicas", 60*time.Second, func(context.Context) (bool, error) {
			return dialRefused(node.ns, addr), nil
		})
		node.kubectlOK("", "scale", "deployment/web", "--replicas=2")
		node.kubectlOK("", "rollout", "status", "deployment/web", "--timeout=120s")
		node.waitUntil("answers again", 60*time.Second, func(context.Context) (bool, error) {
			_, err := get(onNode, "http://"+addr+"/")
			return err == nil, nil
		})
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		if n := countReady(pods.Items); n != 2 {
			t.Fatalf("%d ready web pods after scaling back, want 2", n)
		}
	})
}

func countReady(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				n++
			}
		}
	}
	return n
}
