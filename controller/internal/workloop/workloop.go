package workloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Loop is one controller's queue and what to do with a key.
type Loop[K comparable] struct {
	// Logger is the controller's (it should carry its "component"); each
	// sync logs through Logger.With(KeyKind, key). Nil discards.
	Logger *slog.Logger
	// KeyKind says what a key names ("service", "namespace"), as the
	// attribute of the key in log lines.
	KeyKind string
	// Queue is the controller's queue; its event handlers Add to it.
	Queue workqueue.TypedRateLimitingInterface[K]
	// Synced are the caches to wait for before anything else runs.
	Synced []cache.InformerSynced
	// Workers is how many keys are synced at once; below 1 means 1.
	Workers int
	// MaxRetries, when positive, drops a key after that many failed
	// syncs in a row (it comes back with its next event); zero retries
	// for ever.
	MaxRetries int
	// PreStart, when set, runs once after the caches synced and before
	// the first sync (rebuilding state the syncs rely on); an error ends
	// Run with that error.
	PreStart func(ctx context.Context) error
	// Sync reconciles one key from full state. An error retries the key
	// (see MaxRetries); RequeueAfter asks for it again later.
	Sync func(ctx context.Context, key K) error
}

// NewQueue is the rate-limited queue controllers use: per-key exponential
// back-off from 5ms capped at 1000s, and an overall 10 qps bucket
// (client-go's default controller rate limiter). A nil clock is the real
// one.
func NewQueue[K comparable](name string, clk clock.WithTicker) workqueue.TypedRateLimitingInterface[K] {
	cfg := workqueue.TypedRateLimitingQueueConfig[K]{Name: name}
	if clk != nil {
		cfg.Clock = clk
	}
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[K](), cfg)
}

// requeue is what RequeueAfter returns.
type requeue struct{ after time.Duration }

func (r requeue) Error() string { return fmt.Sprintf("workloop: requeue after %s", r.after) }

// RequeueAfter is what a Sync returns to see its key again after d (a
// recheck, a deadline), which is not a failure: the key's back-off is
// reset.
func RequeueAfter(d time.Duration) error { return requeue{after: d} }

// loggerKey is the context key of the per-key logger.
type loggerKey struct{}

// Logger returns the logger of the sync ctx belongs to (the controller's
// logger with the key); outside a sync, one that discards.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// Log is the loop's logger: Logger, or one that discards.
func (l Loop[K]) Log() *slog.Logger {
	if l.Logger == nil {
		return discard
	}
	return l.Logger
}

// syncedPoll is how often Run looks at the caches until they synced.
const syncedPoll = 100 * time.Millisecond

// Run waits for the caches, runs PreStart, then syncs keys until ctx ends.
// It returns once ctx ended and the syncs in flight returned (keys still
// queued then are not synced), with the queue shut down: nil, or
// PreStart's error.
func (l Loop[K]) Run(ctx context.Context) error {
	defer l.Queue.ShutDown()
	logger := l.Log()
	logger.Info("starting", "workers", max(l.Workers, 1))
	defer logger.Info("stopped")
	err := wait.PollUntilContextCancel(ctx, syncedPoll, true, func(context.Context) (bool, error) {
		for _, synced := range l.Synced {
			if !synced() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil // ctx ended first
	}
	if l.PreStart != nil {
		if err := l.PreStart(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	var workers sync.WaitGroup
	for range max(l.Workers, 1) {
		workers.Go(func() { l.work(ctx, logger) })
	}
	<-ctx.Done()
	l.Queue.ShutDown()
	workers.Wait()
	return nil
}

// work syncs keys until the queue shuts down or ctx ends.
func (l Loop[K]) work(ctx context.Context, logger *slog.Logger) {
	for {
		key, quit := l.Queue.Get()
		if quit {
			return
		}
		if ctx.Err() != nil {
			l.Queue.Done(key)
			return
		}
		l.one(ctx, logger.With(l.KeyKind, key), key)
	}
}

// one syncs key and decides when it comes back.
func (l Loop[K]) one(ctx context.Context, logger *slog.Logger, key K) {
	defer l.Queue.Done(key)
	err := l.Sync(context.WithValue(ctx, loggerKey{}, logger), key)
	var rq requeue
	switch {
	case err == nil:
		l.Queue.Forget(key)
	case errors.As(err, &rq):
		l.Queue.Forget(key)
		l.Queue.AddAfter(key, rq.after)
	case l.MaxRetries > 0 && l.Queue.NumRequeues(key) >= l.MaxRetries:
		logger.Error("sync failed, dropping the key until its next change", "retries", l.MaxRetries, "err", err)
		l.Queue.Forget(key)
	default:
		// A stale cache (conflict, already exists) heals on retry;
		// anything else is worth a line at warning level.
		level := slog.LevelWarn
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			level = slog.LevelDebug
		}
		logger.Log(ctx, level, "sync failed, will retry", "err", err)
		l.Queue.AddRateLimited(key)
	}
}
