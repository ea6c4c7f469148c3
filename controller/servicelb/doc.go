// Package servicelb gives LoadBalancer Services an address without a cloud,
// as k3s's ServiceLB does: every ready node's address goes into
// status.loadBalancer.ingress, and the proxy on each node makes
// NODE_IP:port answer. Two LoadBalancer Services cannot both own a port on
// the nodes: the older one (by creation time, then namespace/name) keeps it,
// the newer stays pending, with a Warning event, until the port is free.
// Services with a spec.loadBalancerClass belong to another implementation
// and are left alone. One controller runs per cluster, as
// service-lb-controller in the controller manager (ManagerConfig.ServiceLB).
package servicelb
