package kubelet

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/tinykube/tinykube/kubelet/sandbox"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Ports: ports},
	}
}

var testServices = []*corev1.Service{
	service("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
	service("shop", "cart-db", "10.43.0.20",
		corev1.ServicePort{Port: 5432, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "metrics", Port: 9187, Protocol: corev1.ProtocolUDP}),
	service("shop", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
	service("shop", "external", "", corev1.ServicePort{Port: 80}),
	service("other", "elsewhere", "10.43.0.30", corev1.ServicePort{Port: 80}),
}

const kubernetesVars = "KUBERNETES_PORT=tcp://10.43.0.1:443\n" +
	"KUBERNETES_PORT_443_TCP=tcp://10.43.0.1:443\n" +
	"KUBERNETES_PORT_443_TCP_ADDR=10.43.0.1\n" +
	"KUBERNETES_PORT_443_TCP_PORT=443\n" +
	"KUBERNETES_PORT_443_TCP_PROTO=tcp\n" +
	"KUBERNETES_SERVICE_HOST=10.43.0.1\n" +
	"KUBERNETES_SERVICE_PORT=443\n" +
	"KUBERNETES_SERVICE_PORT_HTTPS=443\n"

func TestServiceEnvironmentVariables(t *testing.T) {
	tests := []struct {
		name  string
		ns    string
		links bool
		want  string
	}{
		{"service links: every Service of the namespace with a cluster IP, and the API server's", "shop", true,
			"CART_DB_PORT=tcp://10.43.0.20:5432\n" +
				"CART_DB_PORT_5432_TCP=tcp://10.43.0.20:5432\n" +
				"CART_DB_PORT_5432_TCP_ADDR=10.43.0.20\n" +
				"CART_DB_PORT_5432_TCP_PORT=5432\n" +
				"CART_DB_PORT_5432_TCP_PROTO=tcp\n" +
				"CART_DB_PORT_9187_UDP=udp://10.43.0.20:9187\n" +
				"CART_DB_PORT_9187_UDP_ADDR=10.43.0.20\n" +
				"CART_DB_PORT_9187_UDP_PORT=9187\n" +
				"CART_DB_PORT_9187_UDP_PROTO=udp\n" +
				"CART_DB_SERVICE_HOST=10.43.0.20\n" +
				"CART_DB_SERVICE_PORT=5432\n" +
				"CART_DB_SERVICE_PORT_METRICS=9187\n" +
				kubernetesVars},
		{"without service links only the API server's", "shop", false, kubernetesVars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &Kubelet{log: slog.New(slog.DiscardHandler)}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tt.ns, Name: "p"}}
			env, err := k.containerEnv(context.Background(), pod, &corev1.Container{}, sandbox.Sandbox{}, serviceEnv(testServices, tt.ns, tt.links))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(env[1:], "\n") + "\n" // after HOSTNAME
			if got != tt.want {
				t.Errorf("env:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestServiceInTheNamespaceNamedKubernetesWinsOverTheAPIServers(t *testing.T) {
	for _, services := range [][]*corev1.Service{
		{testServices[0], service("shop", "kubernetes", "10.43.0.99", corev1.ServicePort{Port: 80})},
		{service("shop", "kubernetes", "10.43.0.99", corev1.ServicePort{Port: 80}), testServices[0]},
	} {
		if got := serviceEnv(services, "shop", true)["KUBERNETES_SERVICE_HOST"]; got != "10.43.0.99" {
			t.Errorf("KUBERNETES_SERVICE_HOST = %q, want the namespace's Service", got)
		}
	}
}

func TestExplicitEnvWinsOverServiceVariablesWhichItMayReference(t *testing.T) {
	k := &Kubelet{log: slog.New(slog.DiscardHandler)}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"}}
	c := &corev1.Container{Env: []corev1.EnvVar{
		{Name: "KUBERNETES_SERVICE_HOST", Value: "api.example"},
		{Name: "DB_URL", Value: "postgres://$(CART_DB_SERVICE_HOST):$(CART_DB_SERVICE_PORT)/$(KUBERNETES_SERVICE_HOST)"},
	}}
	env, err := k.containerEnv(context.Background(), pod, c, sandbox.Sandbox{}, serviceEnv(testServices, "shop", true))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOSTNAME=p", "KUBERNETES_SERVICE_HOST=api.example", "DB_URL=postgres://10.43.0.20:5432/api.example"}
	if strings.Join(env[:3], "\n") != strings.Join(want, "\n") {
		t.Errorf("declared env first: %q, want %q", env[:3], want)
	}
	count := 0
	for _, e := range env {
		if strings.HasPrefix(e, "KUBERNETES_SERVICE_HOST=") {
			count++
		}
	}
	if count != 1 {
		t.Errorf("KUBERNETES_SERVICE_HOST set %d times: %q", count, env)
	}
}
