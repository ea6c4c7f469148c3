package dns

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

func slice(ns, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: svc + "-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}

func ep(ip string, ready bool, hostname string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	if hostname != "" {
		e.Hostname = &hostname
	}
	return e
}

// upstream is a resolver on 127.0.0.1 that knows example.org only.
func upstream(t *testing.T) string {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	for range 10 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.org." && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.org. 60 IN A 192.0.2.7")
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	tcp := &dns.Server{Listener: l, Handler: srv.Handler}
	go srv.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { _ = srv.Shutdown(); _ = tcp.Shutdown() })
	return pc.LocalAddr().String()
}

func startServer(t *testing.T, objs ...runtime.Object) string {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := New(Config{Informers: factory, Addr: "127.0.0.1:0", Upstreams: []string{upstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("DNS server not ready")
	}
	return s.Addr()
}

func query(t *testing.T, server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return resp
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[3]+" "+strings.Join(f[4:], " "))
	}
	slices.Sort(out)
	return out
}

func TestClusterDNS(t *testing.T) {
	addr := startServer(t,
		service("default", "web", "10.43.0.20", corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}),
		service("db", "pg", corev1.ClusterIPNone),
		slice("db", "pg", ep("10.42.0.5", true, "pg-0"), ep("10.42.1.6", true, "pg-1"), ep("10.42.1.7", false, "pg-2")),
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.org"},
		},
	)
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers []string
	}{
		{"ClusterIP Service", "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.43.0.20"}},
		{"names are case-insensitive", "WEB.Default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.43.0.20"}},
		{"headless Service: ready pod IPs", "pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.42.0.5", "A 10.42.1.6"}},
		{"headless endpoint by hostname", "pg-1.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.42.1.6"}},
		{"ExternalName: CNAME", "ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME example.org."}},
		{"SRV for a named port", "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 100 80 web.default.svc.cluster.local."}},
		{"pod A record", "10-42-0-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.42.0.9"}},
		{"AAAA of an IPv4 Service: no data", "web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"namespace exists", "default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"unknown Service: NXDOMAIN", "nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"unknown namespace: NXDOMAIN", "web.nope.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"other names are forwarded upstream", "example.org.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.7"}},
		{"upstream NXDOMAIN is passed on", "nothing.example.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				m := query(t, addr, network, tt.qname, tt.qtype)
				if m.Rcode != tt.rcode {
					t.Errorf("rcode = %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := answers(m); !slices.Equal(got, tt.answers) {
					t.Errorf("answers = %q, want %q", got, tt.answers)
				}
			})
		}
	}
}

// TestShortNamesThroughSearchList resolves short names as a pod's stub
// resolver does with the kubelet's resolv.conf ("search
// NS.svc.cluster.local svc.cluster.local cluster.local", ndots:5): each
// candidate in turn until one is not NXDOMAIN.
func TestShortNamesThroughSearchList(t *testing.T) {
	addr := startServer(t, service("default", "web", "10.43.0.20"), service("other", "api", "10.43.0.21"))
	search := []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local."}
	resolve := func(name string) []string {
		for _, d := range search {
			m := query(t, addr, "udp", name+"."+d, dns.TypeA)
			if m.Rcode != dns.RcodeNameError {
				return answers(m)
			}
		}
		return answers(query(t, addr, "udp", dns.Fqdn(name), dns.TypeA))
	}
	for name, want := range map[string][]string{
		"web":                           {"A 10.43.0.20"},
		"web.default":                   {"A 10.43.0.20"},
		"api.other":                     {"A 10.43.0.21"},
		"api.other.svc":                 {"A 10.43.0.21"},
		"web.default.svc.cluster.local": {"A 10.43.0.20"},
		"api":                           nil, // another namespace: not found
	} {
		if got := resolve(name); !slices.Equal(got, want) {
			t.Errorf("%s resolves to %q, want %q", name, got, want)
		}
	}
}

// TestClusterDNSFollowsChanges checks a new Service resolves without restart.
func TestClusterDNSFollowsChanges(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	s, err := New(Config{Informers: factory, Addr: "127.0.0.1:0", Upstreams: []string{upstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go s.Run(ctx)
	<-s.Ready()
	name := "late.default.svc.cluster.local."
	if m := query(t, s.Addr(), "udp", name, dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("before the Service exists: rcode %s", dns.RcodeToString[m.Rcode])
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, service("default", "late", "10.43.0.99"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return slices.Equal(answers(query(t, s.Addr(), "udp", name, dns.TypeA)), []string{"A 10.43.0.99"}), nil
	})
	if err != nil {
		t.Fatal("new Service never resolved")
	}
}
