package cache

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tinykube/tinykube/scheduler/framework"
)

type podState struct {
	info    *framework.PodInfo
	node    string
	assumed bool
}

// Cache is safe for concurrent use.
type Cache struct {
	mu    sync.RWMutex
	nodes map[string]*framework.NodeInfo
	// list holds the NodeInfos that have a Node, in the order nodes were
	// added; nil when it must be rebuilt.
	list  []*framework.NodeInfo
	order []string
	pods  map[types.UID]*podState
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{nodes: map[string]*framework.NodeInfo{}, pods: map[types.UID]*podState{}}
}

// View calls fn with the nodes, under a read lock: fn must not keep the
// slice or the NodeInfos after it returns, and must not call back into the
// cache.
func (c *Cache) View(fn func(nodes []*framework.NodeInfo)) {
	for {
		c.mu.RLock()
		if c.list != nil {
			defer c.mu.RUnlock()
			fn(c.list)
			return
		}
		c.mu.RUnlock()
		c.mu.Lock()
		c.rebuildLocked()
		c.mu.Unlock()
	}
}

func (c *Cache) rebuildLocked() {
	if c.list != nil {
		return
	}
	list := make([]*framework.NodeInfo, 0, len(c.order))
	kept := c.order[:0]
	for _, name := range c.order {
		n, ok := c.nodes[name]
		if !ok {
			continue
		}
		kept = append(kept, name)
		if n.Node != nil {
			list = append(list, n)
		}
	}
	c.order = kept
	c.list = list
}

func (c *Cache) nodeLocked(name string) *framework.NodeInfo {
	n, ok := c.nodes[name]
	if !ok {
		n = framework.NewNodeInfo(nil)
		c.nodes[name] = n
		c.order = append(c.order, name)
	}
	return n
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	had := n.Node != nil
	n.SetNode(node)
	if !had {
		c.list = nil
	}
}

// RemoveNode removes a node; pods still bound to it keep being counted
// until they are removed, as the node may come back.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return
	}
	if len(n.Pods) == 0 {
		delete(c.nodes, name)
	} else {
		n.SetNode(nil)
	}
	c.list = nil
}

// NumNodes is the number of nodes known.
func (c *Cache) NumNodes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, ni := range c.nodes {
		if ni.Node != nil {
			n++
		}
	}
	return n
}

// AssumePod counts pod (with spec.nodeName set to the chosen node) before
// its binding is confirmed.
func (c *Cache) AssumePod(pi *framework.PodInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(pi, true)
}

// ForgetPod stops counting an assumed pod whose binding failed; a pod the
// API already reported bound stays.
func (c *Cache) ForgetPod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[uid]; ok && ps.assumed {
		c.removeLocked(uid)
	}
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(uid types.UID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.pods[uid]
	return ok && ps.assumed
}

// AddPod records a pod the API reports bound (confirming an assumed one).
func (c *Cache) AddPod(pod *corev1.Pod) {
	pi := framework.NewPodInfo(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(pi, false)
}

// RemovePod stops counting a pod (deleted, or finished).
func (c *Cache) RemovePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(uid)
}

// PodCount is the number of pods counted, assumed included.
func (c *Cache) PodCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pods)
}

func (c *Cache) addLocked(pi *framework.PodInfo, assumed bool) {
	uid := pi.Pod.UID
	if _, ok := c.pods[uid]; ok {
		c.removeLocked(uid)
	}
	n := c.nodeLocked(pi.Pod.Spec.NodeName)
	n.AddPod(pi)
	c.pods[uid] = &podState{info: pi, node: pi.Pod.Spec.NodeName, assumed: assumed}
}

func (c *Cache) removeLocked(uid types.UID) {
	ps, ok := c.pods[uid]
	if !ok {
		return
	}
	delete(c.pods, uid)
	n, ok := c.nodes[ps.node]
	if !ok {
		return
	}
	n.RemovePod(uid)
	if n.Node == nil && len(n.Pods) == 0 {
		delete(c.nodes, ps.node)
		c.list = nil
	}
}
