package kubelet

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodHostsFile(t *testing.T) {
	nodeHosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(nodeHosts, []byte("127.0.0.1\tlocalhost\n192.0.2.10\tnode-a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const localhost = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nfe00::\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	aliases := []corev1.HostAlias{{IP: "192.0.2.1", Hostnames: []string{"foo.local", "bar.local"}}, {IP: "192.0.2.2", Hostnames: []string{"baz.local"}}}
	const aliasLines = "\n# Entries added by HostAliases.\n192.0.2.1\tfoo.local\tbar.local\n192.0.2.2\tbaz.local\n"
	ip := []netip.Addr{netip.MustParseAddr("10.42.0.7")}
	tests := []struct {
		name string
		spec corev1.PodSpec
		ips  []netip.Addr
		want string
	}{
		{"the pod's name on its IP", corev1.PodSpec{}, ip, "# Kubernetes-managed hosts file.\n" + localhost + "10.42.0.7\tweb\n"},
		{"hostname and subdomain give an FQDN", corev1.PodSpec{Hostname: "db-0", Subdomain: "db"}, ip,
			"# Kubernetes-managed hosts file.\n" + localhost + "10.42.0.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n"},
		{"host aliases follow, under one header", corev1.PodSpec{HostAliases: aliases}, ip,
			"# Kubernetes-managed hosts file.\n" + localhost + "10.42.0.7\tweb\n" + aliasLines},
		{"host network: the node's file", corev1.PodSpec{HostNetwork: true, HostAliases: aliases}, nil,
			"# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n192.0.2.10\tnode-a\n" + aliasLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tt.spec}
			got, err := podHostsFile(pod, tt.ips, "cluster.local", nodeHosts)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("hosts:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
