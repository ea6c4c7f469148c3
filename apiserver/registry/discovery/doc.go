// Package discovery serves discovery.k8s.io/v1: EndpointSlices, with
// upstream's defaults, validation (sharing core's endpoint address rules)
// and table.
package discovery

import ()
