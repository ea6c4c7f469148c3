// Package sandbox owns a pod's shared namespaces without a pause container:
// it creates the pod's network, UTS (hostname = pod name) and IPC namespaces,
// pins them as bind mounts under its directory, attaches the network
// namespace to the node's CNI bridge network through libcni (bridge,
// host-local, and portmap for pods with hostPorts; "lo" is set up directly)
// and removes all of it again: CNI DEL frees
// the IP and the veth, then the namespaces are unmounted.
//
// Every container of the pod then joins these namespaces by path.
package sandbox
