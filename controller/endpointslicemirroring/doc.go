// Package endpointslicemirroring owns the EndpointSlice mirroring
// controller: for every Service without a selector whose Endpoints were
// written by a user, it keeps EndpointSlices that mirror those Endpoints
// (ready addresses from addresses, not ready ones from notReadyAddresses,
// the subset's ports), labelled kubernetes.io/service-name and managed by
// endpointslicemirroring-controller.k8s.io and owned by the Endpoints, as
// upstream's endpointslice-mirroring-controller. Endpoints labelled
// endpointslice.kubernetes.io/skip-mirror=true, leader-election records
// and Endpoints written by the endpoints controller are not mirrored.
package endpointslicemirroring
