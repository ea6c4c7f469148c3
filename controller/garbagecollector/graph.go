package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// node is what the collector knows of one object.
type node struct {
	gvr               schema.GroupVersionResource
	namespace, name   string
	uid               types.UID
	resourceVersion   string
	owners            []metav1.OwnerReference
	finalizers        []string
	deletionTimestamp *metav1.Time
}

func (n *node) beingDeleted() bool { return n.deletionTimestamp != nil }

func (n *node) deletingDependents() bool {
	return n.beingDeleted() && slices.Contains(n.finalizers, metav1.FinalizerDeleteDependents)
}

func (n *node) orphaning() bool {
	return n.beingDeleted() && slices.Contains(n.finalizers, metav1.FinalizerOrphanDependents)
}

// graph is the ownership graph, by UID. Owners need not be known: the
// dependents index also holds UIDs only seen in ownerReferences.
type graph struct {
	mu         sync.RWMutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]bool
	// absent are UIDs known to be gone (seen deleted, or not found),
	// so their dependents need no lookup; bounded by maxAbsent.
	absent map[types.UID]bool
}

// maxAbsent bounds the absent-owner cache; past it the cache starts over.
const maxAbsent = 10000

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]bool{}, absent: map[types.UID]bool{}}
}

// markAbsent remembers that uid is gone for good (UIDs are never reused).
func (g *graph) markAbsent(uid types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.absent) >= maxAbsent {
		g.absent = map[types.UID]bool{}
	}
	g.absent[uid] = true
}

func (g *graph) isAbsent(uid types.UID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.absent[uid]
}

// upsert records n and returns what was there before.
func (g *graph) upsert(n *node) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[n.uid]
	if old != nil {
		g.unlinkLocked(old)
	}
	g.nodes[n.uid] = n
	for _, o := range n.owners {
		if g.dependents[o.UID] == nil {
			g.dependents[o.UID] = map[types.UID]bool{}
		}
		g.dependents[o.UID][n.uid] = true
	}
	return old
}

// remove forgets the object and returns it.
func (g *graph) remove(uid types.UID) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[uid]
	if old != nil {
		g.unlinkLocked(old)
		delete(g.nodes, uid)
	}
	return old
}

func (g *graph) unlinkLocked(n *node) {
	for _, o := range n.owners {
		delete(g.dependents[o.UID], n.uid)
		if len(g.dependents[o.UID]) == 0 {
			delete(g.dependents, o.UID)
		}
	}
}

func (g *graph) get(uid types.UID) *node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.nodes[uid]
}

// dependentsOf are the known objects that name owner in an
// ownerReference.
func (g *graph) dependentsOf(owner types.UID) []*node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*node
	for uid := range g.dependents[owner] {
		if n := g.nodes[uid]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// blockingDependents are the dependents whose reference to owner has
// blockOwnerDeletion set.
func (g *graph) blockingDependents(owner types.UID) []*node {
	var out []*node
	for _, d := range g.dependentsOf(owner) {
		for _, o := range d.owners {
			if o.UID == owner && o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion {
				out = append(out, d)
			}
		}
	}
	return out
}
