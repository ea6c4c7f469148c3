package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Server.
type Config struct {
	// Informers provides Services and EndpointSlices; the caller starts
	// it. Required.
	Informers informers.SharedInformerFactory
	// Addr is where to listen, UDP and TCP. Default "127.0.0.1:53".
	Addr string
	// Domain is the cluster domain. Default "cluster.local".
	Domain string
	// Upstreams are "host:port" resolvers for other names. Empty: the
	// nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read when Upstreams is empty. Default /etc/resolv.conf.
	ResolvConf string
	// TTL of cluster answers, in seconds. Default 5 (as CoreDNS).
	TTL uint32
	// Listen opens sockets; nil: net.ListenPacket and net.Listen. Tests
	// pass a function that opens them in a network namespace.
	ListenPacket func(network, address string) (net.PacketConn, error)
	Listen       func(network, address string) (net.Listener, error)
	// ForwardTimeout bounds one upstream exchange. Default 2s.
	ForwardTimeout time.Duration
}

// Server answers DNS queries for the cluster.
type Server struct {
	cfg       Config
	zone      string // "cluster.local."
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	upstreams []string

	mu    sync.Mutex
	addr  string
	ready chan struct{}
}

// New validates cfg and registers the informers it needs.
func New(cfg Config) (*Server, error) {
	if cfg.Informers == nil {
		return nil, errors.New("dns: Informers is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:53"
	}
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	if cfg.ListenPacket == nil {
		cfg.ListenPacket = net.ListenPacket
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	ups := cfg.Upstreams
	if len(ups) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		rc, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("dns: upstream resolvers: %w", err)
		}
		for _, s := range rc.Servers {
			ups = append(ups, net.JoinHostPort(s, rc.Port))
		}
	}
	svc := cfg.Informers.Core().V1().Services()
	sl := cfg.Informers.Discovery().V1().EndpointSlices()
	return &Server{
		cfg:       cfg,
		zone:      dns.Fqdn(strings.ToLower(cfg.Domain)),
		services:  svc.Lister(),
		slices:    sl.Lister(),
		synced:    []cache.InformerSynced{svc.Informer().HasSynced, sl.Informer().HasSynced},
		upstreams: ups,
		ready:     make(chan struct{}),
	}, nil
}

// Ready is closed once the server answers.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the UDP and TCP address the server listens on, once Ready.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run waits for the caches, serves until ctx ends, then shuts down.
func (s *Server) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return ctx.Err()
	}
	pc, l, err := s.listen()
	if err != nil {
		return err
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	started := make(chan struct{}, 2)
	udp.NotifyStartedFunc = func() { started <- struct{}{} }
	tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	errc := make(chan error, 2)
	go func() { errc <- udp.ActivateAndServe() }()
	go func() { errc <- tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			_ = udp.Shutdown()
			_ = tcp.Shutdown()
			return fmt.Errorf("dns: %w", err)
		}
	}
	s.mu.Lock()
	s.addr = pc.LocalAddr().String()
	s.mu.Unlock()
	close(s.ready)
	<-ctx.Done()
	_ = udp.Shutdown()
	_ = tcp.Shutdown()
	return nil
}

// listen opens UDP and TCP on the same port. With port 0 the UDP port the
// kernel picks may be taken for TCP: then it tries again.
func (s *Server) listen() (net.PacketConn, net.Listener, error) {
	var err error
	for range 10 {
		var pc net.PacketConn
		pc, err = s.cfg.ListenPacket("udp", s.cfg.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
		var l net.Listener
		l, err = s.cfg.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(s.cfg.Addr); port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("dns: %w", err)
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if name != s.zone && !strings.HasSuffix(name, "."+s.zone) {
		s.forward(w, req)
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	answers, exists := s.lookup(name, q)
	switch {
	case !exists:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
	case len(answers) == 0:
		m.Ns = []dns.RR{s.soa()}
	default:
		m.Answer = answers
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); !tcp {
		m.Truncate(udpSize(req))
	}
	_ = w.WriteMsg(m)
}

func udpSize(req *dns.Msg) int {
	if o := req.IsEdns0(); o != nil {
		return int(o.UDPSize())
	}
	return dns.MinMsgSize
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:    dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.cfg.TTL},
		Ns:     "ns.dns." + s.zone,
		Mbox:   "hostmaster." + s.zone,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.cfg.TTL,
	}
}

// lookup answers a name inside the zone. exists is false for NXDOMAIN.
func (s *Server) lookup(name string, q dns.Question) (answers []dns.RR, exists bool) {
	rest := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	if rest == "" {
		if q.Qtype == dns.TypeSOA {
			return []dns.RR{s.soa()}, true
		}
		return nil, true
	}
	labels := dns.SplitDomainName(rest)
	n := len(labels)
	switch labels[n-1] {
	case "svc":
		return s.lookupService(name, labels[:n-1], q)
	case "pod":
		return s.lookupPod(name, labels[:n-1], q)
	}
	return nil, false
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.cfg.TTL}
}

func (s *Server) aRecords(name string, q dns.Question, ips []string) []dns.RR {
	var out []dns.RR
	for _, ipStr := range ips {
		ip, err := netip.ParseAddr(ipStr)
		if err != nil {
			continue
		}
		switch {
		case ip.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			out = append(out, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: ip.AsSlice()})
		case ip.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	return out
}

// lookupService handles the labels before "svc": [ns], [svc ns],
// [hostname svc ns], [_port _proto svc ns].
func (s *Server) lookupService(name string, l []string, q dns.Question) ([]dns.RR, bool) {
	switch len(l) {
	case 0:
		return nil, true // svc.DOMAIN: an empty non-terminal
	case 1:
		svcs, err := s.services.Services(l[0]).List(labels.Everything())
		return nil, err == nil && len(svcs) > 0
	case 2:
		svc, err := s.services.Services(l[1]).Get(l[0])
		if err != nil {
			return nil, false
		}
		switch {
		case svc.Spec.Type == corev1.ServiceTypeExternalName:
			if q.Qtype == dns.TypeCNAME || q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
				return []dns.RR{&dns.CNAME{Hdr: s.hdr(name, dns.TypeCNAME), Target: dns.Fqdn(svc.Spec.ExternalName)}}, true
			}
			return nil, true
		case svc.Spec.ClusterIP == corev1.ClusterIPNone:
			var ips []string
			for _, ep := range s.endpoints(svc) {
				ips = append(ips, ep.Addresses[0])
			}
			return s.aRecords(name, q, ips), true
		default:
			ips := svc.Spec.ClusterIPs
			if len(ips) == 0 {
				ips = []string{svc.Spec.ClusterIP}
			}
			return s.aRecords(name, q, ips), true
		}
	case 3:
		svc, err := s.services.Services(l[2]).Get(l[1])
		if err != nil {
			return nil, false
		}
		var ips []string
		for _, ep := range s.endpoints(svc) {
			if ep.Hostname != nil && strings.EqualFold(*ep.Hostname, l[0]) {
				ips = append(ips, ep.Addresses[0])
			}
		}
		return s.aRecords(name, q, ips), len(ips) > 0
	case 4:
		return s.lookupSRV(name, l, q)
	}
	return nil, false
}

// lookupSRV answers _PORT._PROTO.SERVICE.NS.svc.DOMAIN.
func (s *Server) lookupSRV(name string, l []string, q dns.Question) ([]dns.RR, bool) {
	if !strings.HasPrefix(l[0], "_") || !strings.HasPrefix(l[1], "_") {
		return nil, false
	}
	svc, err := s.services.Services(l[3]).Get(l[2])
	if err != nil {
		return nil, false
	}
	portName, proto := l[0][1:], l[1][1:]
	for _, p := range svc.Spec.Ports {
		if !strings.EqualFold(p.Name, portName) || !strings.EqualFold(string(p.Protocol), proto) {
			continue
		}
		if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
			return nil, true
		}
		target := dns.Fqdn(svc.Name + "." + svc.Namespace + ".svc." + strings.TrimSuffix(s.zone, "."))
		return []dns.RR{&dns.SRV{
			Hdr: s.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100,
			Port: uint16(p.Port), Target: target,
		}}, true
	}
	return nil, false
}

// lookupPod answers A-B-C-D.NS.pod.DOMAIN with A.B.C.D.
func (s *Server) lookupPod(name string, l []string, q dns.Question) ([]dns.RR, bool) {
	if len(l) != 2 {
		return nil, len(l) < 2
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(l[0], "-", "."))
	if err != nil {
		return nil, false
	}
	return s.aRecords(name, q, []string{ip.String()}), true
}

// endpoints lists the ready endpoints of a Service (all of them with
// publishNotReadyAddresses), one per address.
func (s *Server) endpoints(svc *corev1.Service) []discoveryv1.Endpoint {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	slices, err := s.slices.EndpointSlices(svc.Namespace).List(sel)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []discoveryv1.Endpoint
	for _, sl := range slices {
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 || seen[ep.Addresses[0]] {
				continue
			}
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if !ready && !svc.Spec.PublishNotReadyAddresses {
				continue
			}
			seen[ep.Addresses[0]] = true
			out = append(out, ep)
		}
	}
	return out
}

// forward sends a query for a name outside the cluster to the upstream
// resolvers in turn, over the protocol the client used.
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) {
	network := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: s.cfg.ForwardTimeout}
	for _, up := range s.upstreams {
		resp, _, err := c.Exchange(req, up)
		if err == nil {
			resp.Id = req.Id
			_ = w.WriteMsg(resp)
			return
		}
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}

var _ dns.Handler = (*Server)(nil)
