// Package workloop runs a controller's rate-limited work queue: it waits
// for the informer caches, then runs workers that sync one key at a time
// and retry a failed key with the queue's back-off. Controllers whose loop
// is exactly this share it instead of writing it again.
package workloop

import (
	"context"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Loop is one controller's queue and what to do with a key.
type Loop struct {
	// Name is the controller's, for log lines.
	Name string
	// KeyKind says what a key names ("service", "namespace"), for log lines.
	KeyKind string
	Queue   workqueue.TypedRateLimitingInterface[string]
	Synced  []cache.InformerSynced
	// Sync reconciles one key from full state; an error retries the key.
	Sync func(ctx context.Context, key string) error
}

// Run blocks until ctx ends, then shuts the queue down.
func (l Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer l.Queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), l.Synced...) {
		return
	}
	for range max(workers, 1) {
		go wait.UntilWithContext(ctx, l.work, time.Second)
	}
	<-ctx.Done()
}

func (l Loop) work(ctx context.Context) {
	for {
		key, quit := l.Queue.Get()
		if quit {
			return
		}
		if err := l.Sync(ctx, key); err != nil {
			// A stale cache (conflict, already exists) heals on retry;
			// anything else is worth a line in the log.
			if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
				slog.Warn(l.Name+": sync failed, will retry", l.KeyKind, key, "err", err)
			}
			l.Queue.AddRateLimited(key)
		} else {
			l.Queue.Forget(key)
		}
		l.Queue.Done(key)
	}
}
