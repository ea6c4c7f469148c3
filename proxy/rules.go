package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// ruleConfig is what the rules depend on besides Services and endpoints.
type ruleConfig struct {
	// nodePortIPs are the node addresses on which NodePorts answer.
	nodePortIPs []netip.Addr
	// localhostNodePorts lets locally generated traffic reach NodePorts on
	// 127.0.0.1.
	localhostNodePorts bool
	serviceCIDR        netip.Prefix // unallocated addresses in it are dropped
	clusterCIDR        netip.Prefix // pod addresses; invalid: masquerade all
}

// chain is a regular chain and its rules, in order.
type chain struct {
	name  string
	rules []string
}

// element is an element of one of the shared sets or maps.
type element struct {
	set   string
	key   []string
	value []string // empty for sets
	// guard is the id of the verdict element that sends traffic to this
	// backend element: a Service may only hold the backend element while it
	// holds the verdict, so that two Services claiming one external IP and
	// port never mix their endpoints.
	guard string
}

func (e element) id() string {
	n := len(e.set) + 3*len(e.key)
	for _, k := range e.key {
		n += len(k)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(e.set)
	for i, k := range e.key {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(" . ")
		}
		b.WriteString(k)
	}
	return b.String()
}

// fragment is everything one Service contributes to the ruleset. Its chains
// and affinity sets belong to it alone; its elements go into shared maps;
// shared names the load-balancing chains (shared by every Service port with
// the same number of endpoints) that its elements send traffic to.
type fragment struct {
	chains   []chain
	affinity []affinity
	backends []backends
	elements []element
	shared   []string
}

// backends is a map from numgen index to endpoint address . port.
type backends struct {
	name     string
	protocol string
	elements []element
}

// affinity is a dynamic set remembering which clients an endpoint served.
type affinity struct {
	name    string
	timeout time.Duration
}

// verdicts used as map values
const (
	verdictDrop   = "drop"
	verdictReject = "goto " + chainReject
)

func gotoChain(name string) []string { return []string{"goto " + name} }

// buildFragment computes the rules of one Service from its ports.
func buildFragment(cfg *ruleConfig, ports []*servicePort) *fragment {
	f := &fragment{}
	clusterIPs := map[netip.Addr]bool{}
	for _, sp := range ports {
		if !clusterIPs[sp.clusterIP] {
			clusterIPs[sp.clusterIP] = true
			f.elements = append(f.elements, element{set: setClusterIPs, key: []string{sp.clusterIP.String()}})
		}
		f.addPort(cfg, sp)
	}
	return f
}

func (f *fragment) addPort(cfg *ruleConfig, sp *servicePort) {
	if sp.affinitySeconds > 0 || sp.externalLocal {
		f.addPortChains(cfg, sp)
		return
	}
	f.addPortShared(sp)
}

// addPortShared writes a Service port without session affinity and with
// externalTrafficPolicy Cluster (nearly all of them) without chains or maps of
// its own: its verdict elements send traffic to the shared load-balancing
// chain for its number of endpoints, which DNATs through the shared backends
// maps keyed by the packet's destination and a random index. A full sync is
// then a handful of chains and long element lists, and a change of one
// Service rewrites only its elements.
func (f *fragment) addPortShared(sp *servicePort) {
	proto := sp.name.Protocol
	port := strconv.Itoa(int(sp.port))
	clusterEPs, _, hasAny := sp.categorize()
	noEndpoints := verdictDrop
	if !hasAny {
		noEndpoints = verdictReject
	}
	n := len(clusterEPs)
	for _, ep := range clusterEPs {
		if ep.local {
			ip := ep.addr.Addr().String()
			f.addElement(element{set: setHairpin, key: []string{ip, ip}})
		}
	}
	// ip: the destination of the traffic; lb: the kind of shared chain.
	addIP := func(ip string, lb string) {
		key := []string{ip, proto, port}
		if n == 0 {
			f.elements = append(f.elements, element{set: mapNoEndpointServices, key: key, value: []string{noEndpoints}})
			return
		}
		verdict := element{set: mapServiceIPs, key: key, value: gotoChain(lbChain(lb, proto, n))}
		f.elements = append(f.elements, verdict)
		f.addBackends(backendsMapName(mapClusterBackends, proto), []string{ip, port}, verdict.id(), clusterEPs)
		f.addShared(lbChain(lb, proto, n))
	}
	addIP(sp.clusterIP.String(), lbCluster)
	for _, ip := range sp.externalIPs {
		addIP(ip.String(), lbExternal)
	}
	if sp.nodePort != 0 {
		key := []string{proto, strconv.Itoa(int(sp.nodePort))}
		if n == 0 {
			f.elements = append(f.elements, element{set: mapNoEndpointNodePorts, key: key, value: []string{noEndpoints}})
			return
		}
		verdict := element{set: mapServiceNodePorts, key: key, value: gotoChain(lbChain(lbNodePort, proto, n))}
		f.elements = append(f.elements, verdict)
		f.addBackends(backendsMapName(mapNodePortBackends, proto), key[1:], verdict.id(), clusterEPs)
		f.addShared(lbChain(lbNodePort, proto, n))
	}
}

// addBackends adds the elements key . i : endpoint i of a shared backends map.
func (f *fragment) addBackends(m string, key []string, guard string, eps []endpoint) {
	for i, ep := range eps {
		k := append(slices.Clip(key), strconv.Itoa(i))
		f.elements = append(f.elements, element{
			set: m, key: k, guard: guard,
			value: []string{ep.addr.Addr().String(), strconv.Itoa(int(ep.addr.Port()))}})
	}
}

// addShared records that the fragment uses the shared chain name.
func (f *fragment) addShared(name string) {
	if !slices.Contains(f.shared, name) {
		f.shared = append(f.shared, name)
	}
}

// addPortChains writes a Service port with session affinity or
// externalTrafficPolicy Local, which need chains of their own.
func (f *fragment) addPortChains(cfg *ruleConfig, sp *servicePort) {
	proto := sp.name.Protocol
	port := strconv.Itoa(int(sp.port))
	clusterEPs, localEPs, hasAny := sp.categorize()
	noEndpoints := verdictDrop
	if !hasAny {
		noEndpoints = verdictReject
	}

	// With session affinity every endpoint gets a chain that remembers its
	// clients; without, endpoints are picked inside one DNAT rule.
	if sp.affinitySeconds > 0 {
		seen := map[netip.AddrPort]bool{}
		for _, eps := range [][]endpoint{clusterEPs, localEPs} {
			for _, ep := range eps {
				if !seen[ep.addr] {
					seen[ep.addr] = true
					f.addEndpoint(sp, ep)
				}
			}
		}
	}

	// The cluster chain: ClusterIP traffic, and external traffic under
	// externalTrafficPolicy Cluster.
	svcChain := serviceChain(sp.name)
	if len(clusterEPs) > 0 {
		masq := fmt.Sprintf("ip daddr %s %s dport %s", sp.clusterIP, proto, port)
		if cfg.clusterCIDR.IsValid() {
			masq += " ip saddr != " + cfg.clusterCIDR.String()
		}
		rules := []string{masq + " jump " + chainMarkForMasquerade}
		rules = append(rules, f.balanceRules(sp, clusterEPs, false)...)
		f.chains = append(f.chains, chain{name: svcChain, rules: rules})
		f.elements = append(f.elements, element{
			set: mapServiceIPs, key: []string{sp.clusterIP.String(), proto, port}, value: gotoChain(svcChain)})
	} else {
		f.elements = append(f.elements, element{
			set: mapNoEndpointServices, key: []string{sp.clusterIP.String(), proto, port}, value: []string{noEndpoints}})
	}

	if !sp.usesExternalChain() {
		return
	}
	externalEPs := clusterEPs
	if sp.externalLocal {
		externalEPs = localEPs
	}
	extChain := externalChain(sp.name)
	if len(externalEPs) > 0 {
		var rules []string
		if !sp.externalLocal {
			// External traffic to a Service is masqueraded, so replies
			// come back through this node whichever node the pod is on.
			rules = []string{"jump " + chainMarkForMasquerade, "goto " + svcChain}
		} else {
			// Keep the client's address and use local endpoints only;
			// but traffic from pods and from this node itself goes to
			// the whole Service, as upstream short-circuits it.
			if cfg.clusterCIDR.IsValid() && len(clusterEPs) > 0 {
				rules = append(rules, "ip saddr "+cfg.clusterCIDR.String()+" goto "+svcChain)
			}
			if len(clusterEPs) > 0 {
				rules = append(rules,
					"fib saddr type local jump "+chainMarkForMasquerade,
					"fib saddr type local goto "+svcChain)
			}
			lc := localChain(sp.name)
			rules = append(rules, "goto "+lc)
			f.chains = append(f.chains, chain{name: lc, rules: f.balanceRules(sp, localEPs, true)})
		}
		f.chains = append(f.chains, chain{name: extChain, rules: rules})
	}
	for _, ip := range sp.externalIPs {
		key := []string{ip.String(), proto, port}
		if len(externalEPs) > 0 {
			f.elements = append(f.elements, element{set: mapServiceIPs, key: key, value: gotoChain(extChain)})
		} else {
			f.elements = append(f.elements, element{set: mapNoEndpointServices, key: key, value: []string{noEndpoints}})
		}
	}
	if sp.nodePort != 0 {
		key := []string{proto, strconv.Itoa(int(sp.nodePort))}
		if len(externalEPs) > 0 {
			f.elements = append(f.elements, element{set: mapServiceNodePorts, key: key, value: gotoChain(extChain)})
		} else {
			f.elements = append(f.elements, element{set: mapNoEndpointNodePorts, key: key, value: []string{noEndpoints}})
		}
	}
}

// addEndpoint adds the chain of one endpoint of a Service with session
// affinity: it remembers the client, then DNATs.
func (f *fragment) addEndpoint(sp *servicePort, ep endpoint) {
	ip := ep.addr.Addr().String()
	set := affinitySet(sp.name, ep.addr)
	f.affinity = append(f.affinity, affinity{name: set, timeout: time.Duration(sp.affinitySeconds) * time.Second})
	f.chains = append(f.chains, chain{name: endpointChain(sp.name, ep.addr), rules: []string{
		// hairpin: a pod reaching itself through the Service
		"ip saddr " + ip + " jump " + chainMarkForMasquerade,
		"update @" + set + " { ip saddr }",
		fmt.Sprintf("meta l4proto %s dnat ip to %s", sp.name.Protocol, ep.addr),
	}})
}

// balanceRules sends a new connection to one of eps, at random with equal
// weight. Without session affinity that is one DNAT rule through a named map
// from a numgen index to the endpoint: no per-endpoint chains and no
// anonymous sets (the kernel names each anonymous set by scanning all sets
// of the table, so thousands of them make a full sync quadratic). Local
// endpoints go into the shared hairpin set, so that a pod reaching itself
// through the Service is masqueraded. With affinity, clients seen recently
// go back to their endpoint's chain, others pick one through a numgen
// verdict map.
func (f *fragment) balanceRules(sp *servicePort, eps []endpoint, local bool) []string {
	if sp.affinitySeconds > 0 {
		var rules []string
		for _, ep := range eps {
			rules = append(rules, "ip saddr @"+affinitySet(sp.name, ep.addr)+" goto "+endpointChain(sp.name, ep.addr))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "numgen random mod %d vmap { ", len(eps))
		for i, ep := range eps {
			if i > 0 {
				b.WriteString(" , ")
			}
			fmt.Fprintf(&b, "%d : goto %s", i, endpointChain(sp.name, ep.addr))
		}
		b.WriteString(" }")
		return append(rules, b.String())
	}
	m := backends{name: backendsMap(sp.name, local), protocol: sp.name.Protocol}
	for i, ep := range eps {
		ip := ep.addr.Addr().String()
		m.elements = append(m.elements, element{
			set: m.name, key: []string{strconv.Itoa(i)}, value: []string{ip, strconv.Itoa(int(ep.addr.Port()))}})
		if ep.local {
			f.addElement(element{set: setHairpin, key: []string{ip, ip}})
		}
	}
	f.backends = append(f.backends, m)
	return []string{fmt.Sprintf("meta l4proto %s dnat ip addr . port to numgen random mod %d map @%s", sp.name.Protocol, len(eps), m.name)}
}

// addElement adds e unless the fragment has it already.
func (f *fragment) addElement(e element) {
	id := e.id()
	for _, x := range f.elements {
		if x.id() == id {
			return
		}
	}
	f.elements = append(f.elements, e)
}

// baseChain describes a chain hooked into netfilter.
type baseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

var baseChains = []baseChain{
	{chainFilterPrerouting, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{chainFilterInput, knftables.FilterType, knftables.InputHook, knftables.DNATPriority + "-10"},
	{chainFilterForward, knftables.FilterType, knftables.ForwardHook, knftables.DNATPriority + "-10"},
	{chainFilterOutput, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{chainFilterOutputPostDNAT, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "+10"},
	{chainNATPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{chainNATOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{chainNATPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// staticChains returns the rules of the base and helper chains, which do not
// depend on Services.
func staticChains(cfg *ruleConfig) []chain {
	natOutput := []string{"jump " + chainServices}
	if cfg.localhostNodePorts {
		natOutput = append(natOutput,
			"ip daddr "+localhost.String()+" meta l4proto . th dport vmap @"+mapServiceNodePorts)
	}
	clusterIPsCheck := []string{"ip daddr @" + setClusterIPs + " reject"}
	if cfg.serviceCIDR.IsValid() {
		clusterIPsCheck = append(clusterIPsCheck, "ip daddr "+cfg.serviceCIDR.String()+" drop")
	}
	return []chain{
		// Only locally generated packets may be addressed to 127.0.0.0/8:
		// route_localnet is on for localhost NodePorts, and must not expose
		// the node's loopback services to its neighbours.
		{chainFilterPrerouting, []string{`iifname != "lo" ip daddr 127.0.0.0/8 drop`}},
		{chainFilterInput, []string{
			"ct state new jump " + chainNodePortEndpointsCheck,
			"ct state new jump " + chainServiceEndpointsCheck,
		}},
		{chainFilterForward, []string{
			"ct state new jump " + chainServiceEndpointsCheck,
			"ct state new jump " + chainClusterIPsCheck,
		}},
		{chainFilterOutput, []string{"ct state new jump " + chainServiceEndpointsCheck}},
		{chainFilterOutputPostDNAT, []string{"ct state new jump " + chainClusterIPsCheck}},
		{chainNATPrerouting, []string{"jump " + chainServices}},
		{chainNATOutput, natOutput},
		{chainNATPostrouting, []string{
			"jump " + chainMasquerading,
			// hairpin: after DNAT, a pod talking to itself
			"ip saddr . ip daddr @" + setHairpin + " masquerade fully-random",
		}},
		{chainServices, []string{
			"ip daddr . meta l4proto . th dport vmap @" + mapServiceIPs,
			"ip daddr @" + setNodePortIPs + " meta l4proto . th dport vmap @" + mapServiceNodePorts,
		}},
		{chainServiceEndpointsCheck, []string{"ip daddr . meta l4proto . th dport vmap @" + mapNoEndpointServices}},
		{chainNodePortEndpointsCheck, []string{
			"ip daddr @" + setNodePortIPs + " meta l4proto . th dport vmap @" + mapNoEndpointNodePorts,
		}},
		{chainClusterIPsCheck, clusterIPsCheck},
		{chainMasquerading, []string{
			"meta mark & " + masqueradeMark + " == 0 return",
			"meta mark set meta mark ^ " + masqueradeMark,
			"masquerade fully-random",
		}},
		{chainMarkForMasquerade, []string{"meta mark set meta mark | " + masqueradeMark}},
		{chainReject, []string{"reject"}},
	}
}

// sharedSets returns the sets and maps shared by all Services.
func sharedSets() []knftables.Object {
	addrProtoPort := "ipv4_addr . inet_proto . inet_service : verdict"
	protoPort := "inet_proto . inet_service : verdict"
	objs := []knftables.Object{
		&knftables.Set{Name: setClusterIPs, Type: "ipv4_addr", Comment: knftables.PtrTo("active ClusterIPs")},
		&knftables.Set{Name: setHairpin, Type: "ipv4_addr . ipv4_addr", Comment: knftables.PtrTo("local endpoints as address . address: a pod reaching itself through a Service")},
		&knftables.Set{Name: setNodePortIPs, Type: "ipv4_addr", Comment: knftables.PtrTo("addresses that accept NodePort traffic")},
		&knftables.Map{Name: mapServiceIPs, Type: addrProtoPort, Comment: knftables.PtrTo("ClusterIP, external IP and LoadBalancer IP traffic")},
		&knftables.Map{Name: mapServiceNodePorts, Type: protoPort, Comment: knftables.PtrTo("NodePort traffic")},
		&knftables.Map{Name: mapNoEndpointServices, Type: addrProtoPort, Comment: knftables.PtrTo("drop or reject traffic to Services without endpoints")},
		&knftables.Map{Name: mapNoEndpointNodePorts, Type: protoPort, Comment: knftables.PtrTo("drop or reject traffic to NodePorts without endpoints")},
	}
	// One backends map per protocol: nft (1.0.6) refuses a DNAT through a
	// map whose typeof names another transport protocol than the rule
	// matched, or th.
	for _, proto := range protocols {
		objs = append(objs,
			&knftables.Map{Name: backendsMapName(mapClusterBackends, proto),
				TypeOf:  "ip daddr . " + proto + " dport . numgen random mod 1 : ip daddr . " + proto + " dport",
				Comment: knftables.PtrTo("Service address . port . random index: endpoint")},
			&knftables.Map{Name: backendsMapName(mapNodePortBackends, proto),
				TypeOf:  proto + " dport . numgen random mod 1 : ip daddr . " + proto + " dport",
				Comment: knftables.PtrTo("nodePort . random index: endpoint")})
	}
	return objs
}

// Kinds of shared load-balancing chains.
const (
	lbCluster  = "cluster"  // ClusterIP traffic
	lbExternal = "external" // LoadBalancer ingress and external IPs
	lbNodePort = "nodeport" // NodePorts
)

// protocols are the transport protocols of Service ports.
var protocols = []string{"tcp", "udp", "sctp"}

// backendsMapName names the shared backends map of a protocol.
func backendsMapName(base, proto string) string { return base + "-" + proto }

// lbChain names the shared chain that balances traffic of a kind and
// protocol over n endpoints: lb-KIND-PROTO-N.
func lbChain(kind, proto string, n int) string {
	return prefixLB + kind + "-" + proto + "-" + strconv.Itoa(n)
}

// sharedChain returns the rules of a shared load-balancing chain, named by
// lbChain: masquerade what must be, then DNAT to the endpoint that the
// packet's destination and a random index in [0, n) select in the shared
// backends map of the protocol.
func sharedChain(cfg *ruleConfig, name string) (chain, bool) {
	parts := strings.Split(strings.TrimPrefix(name, prefixLB), "-")
	if !strings.HasPrefix(name, prefixLB) || len(parts) != 3 || !slices.Contains(protocols, parts[1]) {
		return chain{}, false
	}
	kind, proto := parts[0], parts[1]
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 1 {
		return chain{}, false
	}
	dnat := "meta l4proto " + proto + " dnat ip addr . port to "
	var rules []string
	switch kind {
	case lbCluster:
		// ClusterIP traffic that does not come from a pod
		if cfg.clusterCIDR.IsValid() {
			rules = append(rules, "ip saddr != "+cfg.clusterCIDR.String()+" jump "+chainMarkForMasquerade)
		} else {
			rules = append(rules, "jump "+chainMarkForMasquerade)
		}
		rules = append(rules, fmt.Sprintf(dnat+"ip daddr . %s dport . numgen random mod %d map @%s",
			proto, n, backendsMapName(mapClusterBackends, proto)))
	case lbExternal:
		// external traffic: replies must come back through this node
		rules = append(rules, "jump "+chainMarkForMasquerade,
			fmt.Sprintf(dnat+"ip daddr . %s dport . numgen random mod %d map @%s",
				proto, n, backendsMapName(mapClusterBackends, proto)))
	case lbNodePort:
		rules = append(rules, "jump "+chainMarkForMasquerade,
			fmt.Sprintf(dnat+"%s dport . numgen random mod %d map @%s",
				proto, n, backendsMapName(mapNodePortBackends, proto)))
	default:
		return chain{}, false
	}
	return chain{name: name, rules: rules}, true
}
