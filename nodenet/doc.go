// Package nodenet makes pods on different nodes reach each other. It runs on
// every node and owns, in that node's network namespace:
//
//   - the routes to the other nodes' pod CIDRs, in the main table, marked
//     with RouteProtocol ("proto 116" in `ip route`) so that it recognises,
//     updates and removes only its own routes;
//   - with the vxlan backend, the device "tinykube.1" (VNI 1, UDP port 8472,
//     learning off, MTU 1450) with its neighbour and forwarding entries;
//   - the nftables table "ip tinykube-nodenet", which masquerades pod traffic
//     leaving the cluster CIDR;
//   - net.ipv4.ip_forward=1;
//   - the annotations tinykube.io/backend-type, tinykube.io/backend-data and
//     tinykube.io/public-ip of its own Node (it writes no other Node).
//
// Two backends, as flannel's: "host-gw" (the default) routes each other
// node's spec.podCIDR via that node's InternalIP, with no encapsulation, and
// needs all nodes on one L2 segment; "vxlan" routes each podCIDR via the other
// node's VTEP over tinykube.1, for nodes that only reach each other through
// routers. Pod-to-pod traffic keeps its source address on both.
//
// The pods' own side, the bridge "tinykube0" with the podCIDR's first address
// and the pods' veths, is the kubelet's (its CNI bridge plugin). Two of its
// settings must follow nodenet: masquerading (ipMasq) must be off, since it
// would masquerade pod-to-pod traffic to other nodes (nodenet's table takes
// over masquerading), and with vxlan the pods' MTU must be VXLANMTU.
//
// Run keeps the kernel in sync with the Node objects (level-triggered: every
// sync computes the whole desired state from all Nodes), on every Node event,
// on every route and link change the kernel announces (a route someone
// deleted comes back at once) and every ResyncPeriod. Cleanup removes
// everything above but the sysctl and the annotations. README.md beside this
// file explains the routes, the annotations and the nft table.
package nodenet
