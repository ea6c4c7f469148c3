package apiserver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/storage"
)

// rbacPrefix holds the keys of Roles, ClusterRoles, RoleBindings and
// ClusterRoleBindings.
const rbacPrefix = "/registry/rbac.authorization.k8s.io/"

// rbacCache keeps an authz.PolicySet in step with the RBAC objects in
// the store: a list, then a watch from the list's revision (listed
// again when the watch ends with an error). It starts on first use;
// that first use waits for the list, so no decision is made on an empty
// policy.
type rbacCache struct {
	s      *Server
	policy *authz.PolicySet

	startOnce sync.Once
	startErr  error

	mu sync.Mutex
	// applied is the store revision the policy reflects.
	applied int64
	// caughtUp is closed and replaced whenever applied grows.
	caughtUp chan struct{}
	watcher  storage.Watcher
}

func newRBACCache(s *Server) *rbacCache {
	return &rbacCache{s: s, policy: authz.NewPolicySet(), caughtUp: make(chan struct{})}
}

// start lists the policy and starts the watch, once.
func (c *rbacCache) start(ctx context.Context) error {
	c.startOnce.Do(func() {
		rev, err := c.list(ctx)
		if err != nil {
			c.startErr = err
			return
		}
		go c.run(rev)
	})
	return c.startErr
}

// list replaces the policy with the store's RBAC objects and returns
// the revision it read them at.
func (c *rbacCache) list(ctx context.Context) (int64, error) {
	var objs []runtime.Object
	var rev int64
	opts := storage.ListOptions{}
	for {
		page, err := c.s.store.List(ctx, rbacPrefix, opts)
		if err != nil {
			return 0, err
		}
		rev = page.Revision
		for _, kv := range page.KVs {
			if obj, err := c.decode(kv); err == nil {
				objs = append(objs, obj)
			}
		}
		if page.Continue == "" {
			break
		}
		opts = storage.ListOptions{Continue: page.Continue}
	}
	c.policy.Replace(objs)
	c.advance(rev)
	return rev, nil
}

// run follows the store from rev until the store closes or the server
// ends its watches.
func (c *rbacCache) run(rev int64) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.s.watchesDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		err := c.follow(ctx, rev)
		if errors.Is(err, storage.ErrClosed) || ctx.Err() != nil {
			return
		}
		// The watch fell behind or its revision was compacted: list
		// again, after a pause so a broken store is not hammered.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if rev, err = c.list(ctx); err != nil {
			if errors.Is(err, storage.ErrClosed) {
				return
			}
			c.s.log.Warn("listing the RBAC policy", "err", err)
		}
	}
}

func (c *rbacCache) follow(ctx context.Context, rev int64) error {
	w, err := c.s.store.Watch(ctx, rbacPrefix, rev)
	if err != nil {
		return err
	}
	defer w.Stop()
	c.mu.Lock()
	c.watcher = w
	c.mu.Unlock()
	for ev := range w.Events() {
		switch ev.Type {
		case storage.Added, storage.Modified:
			if obj, err := c.decode(ev.KV); err == nil {
				c.policy.Set(obj)
			}
		case storage.Deleted:
			if ev.PrevKV != nil {
				if obj, err := c.decode(*ev.PrevKV); err == nil {
					c.policy.Delete(obj)
				}
			}
		}
		c.advance(ev.KV.ModRevision)
	}
	c.mu.Lock()
	c.watcher = nil
	c.mu.Unlock()
	if err := w.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

func (c *rbacCache) decode(kv storage.KeyValue) (runtime.Object, error) {
	resource, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, rbacPrefix), "/")
	res, ok := c.s.resources.lookup(rbacV1.WithResource(resource))
	if !ok {
		return nil, errors.New("apiserver: not an RBAC key: " + kv.Key)
	}
	return c.s.fromKV(res, kv)
}

func (c *rbacCache) advance(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev > c.applied {
		c.applied = rev
		close(c.caughtUp)
		c.caughtUp = make(chan struct{})
	}
}

// catchUpRetry is how often catchUp asks a new watch for progress.
const catchUpRetry = 50 * time.Millisecond

// catchUp waits, at most until ctx ends, until the policy reflects
// every write committed before the call. A denial calls it before it
// answers, so that a binding created a moment ago is never missed.
func (c *rbacCache) catchUp(ctx context.Context) {
	rev, err := c.s.store.Revision(ctx)
	if err != nil {
		return
	}
	for {
		c.mu.Lock()
		applied, ch, w := c.applied, c.caughtUp, c.watcher
		c.mu.Unlock()
		if applied >= rev {
			return
		}
		if w != nil {
			// A quiet RBAC prefix only moves forward on a progress event.
			w.RequestProgress()
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(catchUpRetry):
			// The watch may have been (re)started meanwhile: ask again.
		}
	}
}
