// Package events serves events.k8s.io/v1 Events, stored as core/v1 Events
// so that both APIs show the same events; validation is upstream's for the
// new API on top of core's legacy event rules.
package events

import ()
