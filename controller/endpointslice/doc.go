// Package endpointslice owns the endpointslice controller (upstream's
// endpointslice-controller) and the legacy endpoints controller, which share one reconcile: for every Service with
// a selector, the addresses of the matching pods (ready, serving,
// terminating, nodeName, zone) with the Service's ports resolved against
// each pod's containers, written as EndpointSlices of at most 100
// endpoints (labelled kubernetes.io/service-name and managed by
// endpointslice-controller.k8s.io, owned by the Service) and as the
// Endpoints object named like the Service, which kubectl describe shows.
package endpointslice
