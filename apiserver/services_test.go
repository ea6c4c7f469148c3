package apiserver

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/storage/bolt"
)

func TestNodePortServiceGetsClusterIPAndNodePortInRange(t *testing.T) {
	ts := newTestServer(t)
	svc, err := ts.client.CoreV1().Services("default").Create(ctx(t), makeService("web", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix("10.43.0.0/16").Contains(ip) || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
		t.Fatalf("clusterIP %q", svc.Spec.ClusterIP)
	}
	if np := svc.Spec.Ports[0].NodePort; np < 30000 || np > 32767 {
		t.Fatalf("nodePort %d", np)
	}
	if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster || *svc.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster ||
		svc.Spec.SessionAffinity != corev1.ServiceAffinityNone || svc.Spec.IPFamilies[0] != corev1.IPv4Protocol ||
		*svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("defaults missing: %+v", svc.Spec)
	}
}

func TestGivenNodePortIsKeptAndNeverHandedOutTwice(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	first := makeService("first", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 31203})
	created, err := services.Create(ctx(t), first, metav1.CreateOptions{})
	if err != nil || created.Spec.Ports[0].NodePort != 31203 {
		t.Fatalf("create with nodePort: %v %+v", err, created)
	}
	_, err = services.Create(ctx(t), makeService("second", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 31203}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.ports[0].nodePort: Invalid value: 31203: provided port is already allocated") {
		t.Fatalf("second claim: %v", err)
	}
	// The refused create left no ClusterIP allocated behind: after deleting
	// the first service the port is free again.
	if err := services.Delete(ctx(t), "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := services.Create(ctx(t), makeService("second", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 31203}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("port not released on delete: %v", err)
	}
}

func TestClusterIPOutOfRangeOrTaken(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	svc := makeService("a", corev1.ServiceTypeClusterIP)
	svc.Spec.ClusterIP = "10.0.0.1"
	_, err := services.Create(ctx(t), svc, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16") {
		t.Fatalf("out of range: %v", err)
	}
	svc.Spec.ClusterIP = "10.43.0.1" // the kubernetes Service's
	_, err = services.Create(ctx(t), svc, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "failed to allocate IP 10.43.0.1: provided IP is already allocated") {
		t.Fatalf("taken: %v", err)
	}
}

func TestConcurrentCreatesNeverShareANodePort(t *testing.T) {
	ts := newTestServer(t)
	const n = 30
	var wg sync.WaitGroup
	results := make(chan *corev1.Service, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc, err := ts.client.CoreV1().Services("default").Create(ctx(t), makeService(fmt.Sprint("s", i), corev1.ServiceTypeNodePort), metav1.CreateOptions{})
			if err != nil {
				t.Errorf("create: %v", err)
				return
			}
			results <- svc
		}()
	}
	wg.Wait()
	close(results)
	ports, ips := map[int32]bool{}, map[string]bool{}
	for svc := range results {
		if ports[svc.Spec.Ports[0].NodePort] || ips[svc.Spec.ClusterIP] {
			t.Fatalf("duplicate allocation %d %s", svc.Spec.Ports[0].NodePort, svc.Spec.ClusterIP)
		}
		ports[svc.Spec.Ports[0].NodePort] = true
		ips[svc.Spec.ClusterIP] = true
	}
}

func TestUpdateWithoutClusterIPKeepsAllocationAndTypeChangeReleasesNodePort(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	svc, err := services.Create(ctx(t), makeService("web", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, port := svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort
	// Like kubectl replace of the original manifest: no clusterIP, no nodePort.
	replacement := makeService("web", corev1.ServiceTypeNodePort)
	replacement.ResourceVersion = svc.ResourceVersion
	updated, err := services.Update(ctx(t), replacement, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Spec.ClusterIP != ip || updated.Spec.Ports[0].NodePort != port {
		t.Fatalf("allocation changed: %s %d -> %s %d", ip, port, updated.Spec.ClusterIP, updated.Spec.Ports[0].NodePort)
	}
	// Like `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'`: the node
	// port carried over from the old object is dropped, not refused.
	updated.Spec.Type = corev1.ServiceTypeClusterIP
	asClusterIP, err := services.Update(ctx(t), updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if asClusterIP.Spec.Ports[0].NodePort != 0 || asClusterIP.Spec.ExternalTrafficPolicy != "" || asClusterIP.Spec.ClusterIP != ip {
		t.Fatalf("after type change: %+v", asClusterIP.Spec)
	}
	other := makeService("other", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: port})
	if _, err := services.Create(ctx(t), other, metav1.CreateOptions{}); err != nil {
		t.Fatalf("node port not released by the type change: %v", err)
	}
}

func TestDryRunCreatePersistsNothing(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	svc, err := services.Create(ctx(t), makeService("dry", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30080}),
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || svc.Spec.ClusterIP == "" {
		t.Fatalf("dry run: %v %+v", err, svc)
	}
	if _, err := services.Get(ctx(t), "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run stored the object: %v", err)
	}
	if _, err := services.Create(ctx(t), makeService("real", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30080}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("dry run kept the node port: %v", err)
	}
}

func TestLoadBalancerWithLocalTrafficPolicyGetsHealthCheckNodePort(t *testing.T) {
	ts := newTestServer(t)
	svc := makeService("lb", corev1.ServiceTypeLoadBalancer)
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	created, err := ts.client.CoreV1().Services("default").Create(ctx(t), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc, np := created.Spec.HealthCheckNodePort, created.Spec.Ports[0].NodePort
	if hc < 30000 || hc > 32767 || hc == np || np == 0 {
		t.Fatalf("healthCheckNodePort %d nodePort %d", hc, np)
	}
	table := getTable(t, ts, "/api/v1/namespaces/default/services/lb")
	if got := table.Rows[0].Cells[3]; got != "<pending>" {
		t.Fatalf("EXTERNAL-IP of a new LoadBalancer %v", got)
	}
}

func TestBootstrapFreesAllocationsNoServiceHolds(t *testing.T) {
	ts := newTestServer(t)
	// A claim left behind by a crash between allocation and the write of
	// its Service.
	if err := ts.api.claim(ctx(t), portKey(30500), allocationOwner{UID: "gone", Namespace: "default", Name: "lost"}, false); err != nil {
		t.Fatal(err)
	}
	svc, err := ts.client.CoreV1().Services("default").Create(ctx(t), makeService("kept", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.api.Bootstrap(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.CoreV1().Services("default").Create(ctx(t), makeService("reuse", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: 30500}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("leaked port not freed: %v", err)
	}
	_, err = ts.client.CoreV1().Services("default").Create(ctx(t), makeService("steal", corev1.ServiceTypeNodePort, corev1.ServicePort{Port: 80, NodePort: svc.Spec.Ports[0].NodePort}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("a port in use was freed: %v", err)
	}
}

func TestKubernetesServiceComesBackOnBootstrapWithItsIP(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	if err := services.Delete(ctx(t), "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		svc, err := services.Create(ctx(t), makeService(fmt.Sprint("r", i), corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
		if err != nil || svc.Spec.ClusterIP == "10.43.0.1" {
			t.Fatalf("random allocation must never hand out the first IP: %v %v", err, svc.Spec.ClusterIP)
		}
	}
	if err := ts.api.Bootstrap(ctx(t)); err != nil {
		t.Fatal(err)
	}
	svc, err := services.Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.43.0.1" {
		t.Fatalf("kubernetes service: %v %+v", err, svc)
	}
}

func TestDeletedKubernetesServiceComesBack(t *testing.T) {
	ts := newTestServer(t)
	services := ts.client.CoreV1().Services("default")
	old, _ := services.Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err := services.Delete(ctx(t), "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the kubernetes Service to be recreated", func() bool {
		svc, err := services.Get(ctx(t), "kubernetes", metav1.GetOptions{})
		return err == nil && svc.UID != old.UID && svc.Spec.ClusterIP == "10.43.0.1"
	})
}

func TestSystemNamespacesCannotBeDeleted(t *testing.T) {
	ts := newTestServer(t)
	err := ts.client.CoreV1().Namespaces().Delete(ctx(t), "default", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) || err.Error() != `namespaces "default" is forbidden: this namespace may not be deleted` {
		t.Fatalf("delete default: %v", err)
	}
}

func TestIPv6ServiceCIDR(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api, err := New(Config{Storage: store, ServiceCIDR: netip.MustParsePrefix("fd00:43::/108"), AdvertiseAddress: netip.MustParseAddr("::1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Bootstrap(ctx(t)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	svc, err := client.CoreV1().Services("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "fd00:43::1" || svc.Spec.IPFamilies[0] != corev1.IPv6Protocol {
		t.Fatalf("kubernetes service: %v %+v", err, svc.Spec)
	}
	created, err := client.CoreV1().Services("default").Create(ctx(t), makeService("v6", corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
	if err != nil || !netip.MustParsePrefix("fd00:43::/108").Contains(netip.MustParseAddr(created.Spec.ClusterIP)) {
		t.Fatalf("v6 service: %v %+v", err, created)
	}
}
