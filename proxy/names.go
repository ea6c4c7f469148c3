package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"
)

// TableName is the nftables table the proxy owns, in family inet, so that it
// never collides with another program's tables.
const TableName = "tinykube"

// Base chains, hooked into netfilter.
const (
	chainFilterPrerouting     = "filter-prerouting"
	chainFilterInput          = "filter-input"
	chainFilterForward        = "filter-forward"
	chainFilterOutput         = "filter-output"
	chainFilterOutputPostDNAT = "filter-output-post-dnat"
	chainNATPrerouting        = "nat-prerouting"
	chainNATOutput            = "nat-output"
	chainNATPostrouting       = "nat-postrouting"
)

// Helper chains, jumped to from the base chains.
const (
	chainServices               = "services"
	chainServiceEndpointsCheck  = "service-endpoints-check"
	chainNodePortEndpointsCheck = "nodeport-endpoints-check"
	chainClusterIPsCheck        = "cluster-ips-check"
	chainMasquerading           = "masquerading"
	chainMarkForMasquerade      = "mark-for-masquerade"
	chainReject                 = "reject-chain"
)

// Sets and maps shared by all Services.
const (
	setClusterIPs          = "cluster-ips"
	setNodePortIPs         = "nodeport-ips"
	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	setHairpin             = "hairpin"
	mapClusterBackends     = "service-backends"
	mapNodePortBackends    = "nodeport-backends"
)

// Prefixes of the per-Service chains and sets.
const (
	prefixService  = "service-"
	prefixExternal = "external-"
	prefixLocal    = "local-"
	prefixEndpoint = "endpoint-"
	prefixAffinity = "affinity-"
	prefixBackends = "backends-"
	prefixLB       = "lb-" // shared load-balancing chains: lb-KIND-N
)

// masqueradeMark is the packet mark bit that asks nat-postrouting to
// masquerade a packet (the same bit upstream kube-proxy uses).
const masqueradeMark = "0x00004000"

// localhost is the address on which locally generated traffic may reach
// NodePorts.
var localhost = netip.MustParseAddr("127.0.0.1")

// servicePortName identifies one port of one Service:
// "namespace/name/protocol/portname" (portname may be empty).
type servicePortName struct {
	Namespace, Name string
	Protocol        string // "tcp", "udp" or "sctp"
	Port            string // port name
}

func (s servicePortName) String() string {
	return s.Namespace + "/" + s.Name + "/" + s.Protocol + "/" + s.Port
}

// hashName prefixes a readable name with a short hash of it, so that chains
// of Services whose names differ only in characters nft does not keep stay
// distinct, as upstream does.
func hashName(prefix, name string) string {
	sum := sha256.Sum256([]byte(name))
	h := base32.StdEncoding.EncodeToString(sum[:])[:8]
	return prefix + h + "-" + name
}

func serviceChain(sp servicePortName) string  { return hashName(prefixService, sp.String()) }
func externalChain(sp servicePortName) string { return hashName(prefixExternal, sp.String()) }
func localChain(sp servicePortName) string    { return hashName(prefixLocal, sp.String()) }

// backendsMap names the map from numgen index to endpoint of a Service
// port's cluster (local false) or local (true) endpoints.
func backendsMap(sp servicePortName, local bool) string {
	if local {
		return hashName(prefixBackends, sp.String()+"/local")
	}
	return hashName(prefixBackends, sp.String())
}

func endpointID(sp servicePortName, ep netip.AddrPort) string {
	return sp.String() + "__" + ep.Addr().String() + "/" + strconv.Itoa(int(ep.Port()))
}

func endpointChain(sp servicePortName, ep netip.AddrPort) string {
	return hashName(prefixEndpoint, endpointID(sp, ep))
}

func affinitySet(sp servicePortName, ep netip.AddrPort) string {
	return hashName(prefixAffinity, endpointID(sp, ep))
}
