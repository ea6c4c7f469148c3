package kubelet

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

const hostResolvConfText = `# written by the host
nameserver 192.0.2.53
nameserver 192.0.2.54
search corp.example. lab.example .
options timeout:2 ndots:1
options attempts:3
`

func dnsTestConfigurer(t *testing.T, clusterDNS ...string) (*dnsConfigurer, *record.FakeRecorder) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(hostResolvConfText), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10)
	c := &dnsConfigurer{
		log:           slog.New(slog.DiscardHandler),
		clusterDomain: "cluster.local",
		resolvConf:    path,
		nodeIPs:       []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		recorder:      rec,
		nodeRef:       nodeRef("node-a"),
	}
	for _, ip := range clusterDNS {
		c.clusterDNS = append(c.clusterDNS, netip.MustParseAddr(ip))
	}
	return c, rec
}

func dnsPod(policy corev1.DNSPolicy, hostNetwork bool, cfg *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-1"},
		Spec:       corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNetwork, DNSConfig: cfg},
	}
}

func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestPodResolvConfFollowsDNSPolicy(t *testing.T) {
	const (
		clusterFirst = "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 10.43.0.10\noptions ndots:5\n"
		nodeDefault  = "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions timeout:2 ndots:1 attempts:3\n"
	)
	tests := []struct {
		name        string
		policy      corev1.DNSPolicy
		hostNetwork bool
		dnsConfig   *corev1.PodDNSConfig
		want        string
	}{
		{"ClusterFirst is the default", "", false, nil, clusterFirst},
		{"ClusterFirst", corev1.DNSClusterFirst, false, nil, clusterFirst},
		{"ClusterFirst on the host network means Default", corev1.DNSClusterFirst, true, nil, nodeDefault},
		{"ClusterFirstWithHostNet", corev1.DNSClusterFirstWithHostNet, true, nil, clusterFirst},
		{"Default is the node's resolver", corev1.DNSDefault, false, nil, nodeDefault},
		{"None without dnsConfig is empty", corev1.DNSNone, false, nil, ""},
		{"None takes only dnsConfig", corev1.DNSNone, false, &corev1.PodDNSConfig{
			Nameservers: []string{"203.0.113.1"},
			Searches:    []string{"a.example"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
		}, "search a.example\nnameserver 203.0.113.1\noptions ndots:2 edns0\n"},
		{"dnsConfig merges into ClusterFirst: servers and searches appended once, options by name", corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"203.0.113.1", "10.43.0.10"},
			Searches:    []string{"cluster.local", "extra.example"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "single-request-reopen"}},
		}, "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example extra.example\n" +
			"nameserver 10.43.0.10\nnameserver 203.0.113.1\noptions ndots:1 single-request-reopen\n"},
		{"dnsConfig merges into Default", corev1.DNSDefault, false, &corev1.PodDNSConfig{
			Options: []corev1.PodDNSConfigOption{{Name: "timeout", Value: ptr.To("5")}},
		}, "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions timeout:5 ndots:1 attempts:3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := dnsTestConfigurer(t, "10.43.0.10")
			got, err := c.podDNS(dnsPod(tt.policy, tt.hostNetwork, tt.dnsConfig))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.resolvConf()) != tt.want {
				t.Errorf("resolv.conf:\n%s\nwant:\n%s", got.resolvConf(), tt.want)
			}
			if ev := events(rec); len(ev) > 0 {
				t.Errorf("unexpected events %q", ev)
			}
		})
	}
}

func TestClusterFirstWithoutClusterDNSFallsBackToDefault(t *testing.T) {
	c, rec := dnsTestConfigurer(t)
	got, err := c.podDNS(dnsPod(corev1.DNSClusterFirst, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions timeout:2 ndots:1 attempts:3\n"; string(got.resolvConf()) != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", got.resolvConf(), want)
	}
	msg := `kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`
	want := []string{
		"Warning MissingClusterDNS " + msg,
		`Warning MissingClusterDNS pod: "web_shop(uid-1)". ` + msg,
	}
	if ev := events(rec); strings.Join(ev, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
}

func TestDefaultWithoutNodeResolverAnswersNothing(t *testing.T) {
	c, _ := dnsTestConfigurer(t)
	c.resolvConf = ""
	got, err := c.podDNS(dnsPod(corev1.DNSDefault, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "search .\nnameserver 0.0.0.0\n"; string(got.resolvConf()) != want {
		t.Errorf("resolv.conf %q, want %q", got.resolvConf(), want)
	}
}

func TestPodDNSLimits(t *testing.T) {
	long := strings.Repeat("a", 254)
	var many []string
	for i := 0; i < 40; i++ {
		many = append(many, "d"+strings.Repeat("x", 60)+string(rune('a'+i%26))+string(rune('a'+i/26))+".example")
	}
	tests := []struct {
		name         string
		dnsConfig    corev1.PodDNSConfig
		wantServers  int
		wantSearches func([]string) bool
		wantEvent    string
	}{
		{"at most three nameservers", corev1.PodDNSConfig{Nameservers: []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"}}, 3, nil,
			"Warning DNSConfigForming Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 203.0.113.1 203.0.113.2 203.0.113.3"},
		{"search domains over 253 characters are dropped", corev1.PodDNSConfig{Nameservers: []string{"203.0.113.1"}, Searches: []string{"ok.example", long}}, 1,
			func(s []string) bool { return strings.Join(s, " ") == "ok.example" },
			"Warning DNSConfigForming Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ok.example"},
		{"at most 32 search domains within 2048 characters", corev1.PodDNSConfig{Nameservers: []string{"203.0.113.1"}, Searches: many}, 1,
			func(s []string) bool {
				return len(s) <= 32 && len(strings.Join(s, " ")) <= 2048 && len(s) > 0 && s[0] == many[0]
			}, "Warning DNSConfigForming Search Line limits were exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := dnsTestConfigurer(t)
			got, err := c.podDNS(dnsPod(corev1.DNSNone, false, &tt.dnsConfig))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.servers) != tt.wantServers {
				t.Errorf("servers %v", got.servers)
			}
			if tt.wantSearches != nil && !tt.wantSearches(got.searches) {
				t.Errorf("searches %v", got.searches)
			}
			ev := events(rec)
			if len(ev) != 1 || !strings.HasPrefix(ev[0], tt.wantEvent) {
				t.Errorf("events %q, want one starting %q", ev, tt.wantEvent)
			}
		})
	}
}

func TestNodeResolvConfSkipsALoopbackStub(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	stub := write("stub.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n")
	resolved := write("resolved.conf", "nameserver 192.0.2.1\n")
	real := write("real.conf", "nameserver 127.0.0.53\nnameserver 192.0.2.1\n")
	missing := filepath.Join(dir, "missing.conf")
	tests := []struct {
		name, host, fallback, want string
	}{
		{"only the systemd-resolved stub: its upstream list", stub, resolved, resolved},
		{"a reachable nameserver too: the host's file", real, resolved, real},
		{"no upstream list: the host's file", stub, missing, stub},
		{"no host file: the host's path", missing, resolved, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeResolvConf(slog.New(slog.DiscardHandler), tt.host, tt.fallback); got != tt.want {
				t.Errorf("nodeResolvConf = %s, want %s", got, tt.want)
			}
		})
	}
}
