// Package framework is the scheduler's plugin framework in miniature: the
// plugin interfaces (filter, score), the typed *Status they return, the
// per-cycle CycleState, the NodeInfo view of a node with the pods placed on
// it, the Registry value that maps plugin names to factories, and the
// Framework that runs an ordered profile of plugins for one pod.
//
// It owns no informers and makes no API calls; the scheduler package feeds
// it NodeInfos from its cache.
package framework
