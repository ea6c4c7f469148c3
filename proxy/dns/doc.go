// Package dns is tinykube's cluster DNS: a small server (github.com/miekg/dns)
// that answers for the cluster domain from the informer caches, and forwards
// every other name to the node's upstream resolvers.
//
// It serves, as CoreDNS's kubernetes plugin does:
//
//	SERVICE.NS.svc.DOMAIN          A: the ClusterIP; headless: the ready
//	                               endpoint addresses; ExternalName: CNAME
//	HOSTNAME.SERVICE.NS.svc.DOMAIN A: the endpoint with that hostname
//	_PORT._PROTO.SERVICE.NS.svc.DOMAIN  SRV for named ports
//	A-B-C-D.NS.pod.DOMAIN          A: A.B.C.D
//
// Short forms (SERVICE, SERVICE.NS) reach it through the search list the
// kubelet writes into pods' resolv.conf (NS.svc.DOMAIN svc.DOMAIN DOMAIN).
// Names in the cluster domain that do not exist get NXDOMAIN; existing
// names without records of the asked type get an empty NOERROR answer.
package dns
