package proxy

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testNode = "node-a"

var (
	testNodeIP   = netip.MustParseAddr("192.168.1.10")
	testNodeIP2  = netip.MustParseAddr("10.1.0.10")
	testServices = netip.MustParsePrefix("10.43.0.0/16")
	testPods     = netip.MustParsePrefix("10.42.0.0/16")
)

// testProxier is a Proxier on a fake clientset and knftables' fake.
type testProxier struct {
	*Proxier
	nft    *knftables.Fake
	client *fake.Clientset
}

func testConfig() Config {
	return Config{
		NodeName:    testNode,
		NodeIPs:     []netip.Addr{testNodeIP, testNodeIP2},
		ServiceCIDR: testServices,
		ClusterCIDR: testPods,
		Sysctl:      noSysctl{},
		Conntrack:   &fakeConntrack{},
	}
}

type noSysctl struct{}

func (noSysctl) Set(string, string) error { return nil }

// newTestProxier starts informers on a fake clientset holding objs and
// returns a Proxier that has not synced yet.
func newTestProxier(t testing.TB, cfg Config, objs ...runtime.Object) *testProxier {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	nft := knftables.NewFake(knftables.InetFamily, TableName)
	cfg.Client, cfg.Informers, cfg.NFT = client, factory, nft
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	p.WaitForCacheSync(ctx)
	return &testProxier{Proxier: p, nft: nft, client: client}
}

func (tp *testProxier) mustSync(t testing.TB) SyncStats {
	t.Helper()
	st := tp.Sync(context.Background())
	if st.Err != nil {
		t.Fatalf("sync: %v", st.Err)
	}
	return st
}

// TestGoldenRulesets compares the whole ruleset of representative Services
// with testdata/NAME.nft. Run with -update to rewrite them after a change
// that is meant, and read the diff.
func TestGoldenRulesets(t *testing.T) {
	web := makeService("default", "web").clusterIP("10.43.0.20").port("http", 80, 8080, 0)
	webSlice := makeSlice("default", "web", "web-1").port("http", 8080).
		endpoint("10.42.0.5", testNode).endpoint("10.42.1.7", "node-b")
	tests := []struct {
		name string
		cfg  func(*Config)
		objs []runtime.Object
	}{
		{name: "empty"},
		{
			name: "clusterip-two-endpoints",
			objs: []runtime.Object{web.obj(), webSlice.obj()},
		},
		{
			name: "nodeport",
			objs: []runtime.Object{
				makeService("default", "nginx-service").clusterIP("10.43.0.30").
					typ("NodePort").port("", 80, 80, 30007).obj(),
				makeSlice("default", "nginx-service", "nginx-1").port("", 80).
					endpoint("10.42.0.11", testNode).endpoint("10.42.1.12", "node-b").obj(),
			},
		},
		{
			name: "nodeport-addresses-narrowed",
			cfg: func(c *Config) {
				c.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}
			},
			objs: []runtime.Object{
				makeService("default", "nginx-service").clusterIP("10.43.0.30").
					typ("NodePort").port("", 80, 80, 30007).obj(),
				makeSlice("default", "nginx-service", "nginx-1").port("", 80).
					endpoint("10.42.0.11", testNode).obj(),
			},
		},
		{
			name: "no-endpoints-reject",
			objs: []runtime.Object{
				makeService("default", "empty").clusterIP("10.43.0.40").
					typ("NodePort").port("http", 80, 8080, 30040).obj(),
				makeSlice("default", "empty", "empty-1").port("http", 8080).
					notReady("10.42.0.41", testNode).obj(),
			},
		},
		{
			name: "session-affinity",
			objs: []runtime.Object{
				makeService("default", "sticky").clusterIP("10.43.0.50").port("http", 80, 8080, 0).affinity(600).obj(),
				makeSlice("default", "sticky", "sticky-1").port("http", 8080).
					endpoint("10.42.0.51", testNode).endpoint("10.42.1.52", "node-b").obj(),
			},
		},
		{
			name: "external-traffic-policy-local",
			objs: []runtime.Object{
				makeService("default", "local").clusterIP("10.43.0.60").typ("NodePort").
					port("http", 80, 8080, 30060).externalLocal(32000).obj(),
				makeSlice("default", "local", "local-1").port("http", 8080).
					endpoint("10.42.0.61", testNode).endpoint("10.42.1.62", "node-b").obj(),
				// no endpoint on this node: external traffic is dropped
				makeService("default", "elsewhere").clusterIP("10.43.0.61").typ("NodePort").
					port("http", 80, 8080, 30061).externalLocal(32001).obj(),
				makeSlice("default", "elsewhere", "elsewhere-1").port("http", 8080).
					endpoint("10.42.1.63", "node-b").obj(),
			},
		},
		{
			name: "internal-traffic-policy-local",
			objs: []runtime.Object{
				makeService("default", "node-local").clusterIP("10.43.0.70").port("dns", 53, 53, 0).internalLocal().obj(),
				makeSlice("default", "node-local", "node-local-1").port("dns", 53).
					endpoint("10.42.0.71", testNode).endpoint("10.42.1.72", "node-b").obj(),
				makeService("default", "remote-only").clusterIP("10.43.0.71").port("dns", 53, 53, 0).internalLocal().obj(),
				makeSlice("default", "remote-only", "remote-only-1").port("dns", 53).
					endpoint("10.42.1.73", "node-b").obj(),
			},
		},
		{
			name: "loadbalancer",
			objs: []runtime.Object{
				makeService("default", "lb").clusterIP("10.43.0.80").typ("LoadBalancer").
					port("http", 80, 8080, 30080).ingress("192.168.1.10", "192.168.1.11").obj(),
				makeSlice("default", "lb", "lb-1").port("http", 8080).
					endpoint("10.42.0.81", testNode).obj(),
			},
		},
		{
			name: "udp-and-tcp-ports",
			objs: []runtime.Object{
				makeService("kube-system", "dns").clusterIP("10.43.0.10").
					udpPort("dns", 53, 53).port("dns-tcp", 53, 53, 0).obj(),
				makeSlice("kube-system", "dns", "dns-1").udpPort("dns", 53).port("dns-tcp", 53).
					endpoint("10.42.0.2", testNode).obj(),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			tp := newTestProxier(t, cfg, tt.objs...)
			if st := tp.mustSync(t); !st.Full {
				t.Fatalf("first sync was not a full sync: %+v", st)
			}
			got := tp.nft.Dump()
			path := filepath.Join("testdata", tt.name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("ruleset differs from %s (run with -update and read the diff):\n%s", path, diffLines(string(want), got))
			}
			checkWithNFT(t, got)
		})
	}
}

// checkWithNFT asks the real nft to parse and check a ruleset (nft --check,
// nothing is applied) in a network namespace of its own, when this machine
// has nft and we may use it. It catches rules knftables' fake accepts but
// nft does not.
func checkWithNFT(t *testing.T, ruleset string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return
	}
	cmd := exec.Command("unshare", "--net", "nft", "--check", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nft --check rejects the ruleset: %v\n%s", err, out)
	}
}

// diffLines shows the lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// normalize sorts the element lines of a dump (their order depends on the
// order of partial syncs) and keeps everything else in order.
func normalize(dump string) string {
	var rest, elems []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			rest = append(rest, l)
		}
	}
	sort.Strings(elems)
	return strings.Join(append(rest, elems...), "\n")
}
