package workloop

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
)

// records is a slog handler that keeps every record with its attributes
// flattened, for tests to look at.
type records struct {
	mu    sync.Mutex
	lines []map[string]any
}

type recordHandler struct {
	store *records
	attrs []slog.Attr
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recordHandler{store: h.store, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	line := map[string]any{"msg": r.Message, "level": r.Level}
	for _, a := range h.attrs {
		line[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool { line[a.Key] = a.Value.Any(); return true })
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	h.store.lines = append(h.store.lines, line)
	return nil
}

// find returns the first line with message msg.
func (s *records) find(msg string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func (s *records) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

func newLogger() (*slog.Logger, *records) {
	s := &records{}
	return slog.New(recordHandler{store: s}).With("component", "test-controller"), s
}

// start runs l until the test ends and returns Run's result channel.
func start[K comparable](t *testing.T, l Loop[K]) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	returned := make(chan struct{})
	go func() { defer close(returned); done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after ctx ended")
		}
	})
	return done
}

// eventually waits for cond, polling, for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// watchedQueue counts the delayed adds, so a test knows when a key's
// timer is set before it moves the fake clock.
type watchedQueue struct {
	workqueue.TypedRateLimitingInterface[string]
	delayed atomic.Int32
}

func (q *watchedQueue) AddAfter(key string, d time.Duration) {
	q.TypedRateLimitingInterface.AddAfter(key, d)
	q.delayed.Add(1)
}

func (q *watchedQueue) AddRateLimited(key string) {
	q.TypedRateLimitingInterface.AddRateLimited(key)
	q.delayed.Add(1)
}

// immediateQueue retries at once, so retry tests need no clock.
func immediateQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](0, 0))
}

func TestRequeueAfterWaitsWithoutCountingAFailure(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	q := &watchedQueue{TypedRateLimitingInterface: NewQueue[string]("test", clk)}
	var calls atomic.Int32
	var requeuesOnSecond atomic.Int32
	l := Loop[string]{KeyKind: "key", Queue: q, Sync: func(_ context.Context, key string) error {
		if calls.Add(1) == 1 {
			return RequeueAfter(10 * time.Second)
		}
		requeuesOnSecond.Store(int32(q.NumRequeues(key)))
		return nil
	}}
	q.Add("a")
	start(t, l)
	eventually(t, "the first sync and its timer", func() bool { return q.delayed.Load() == 1 })
	clk.Step(9 * time.Second)
	if calls.Load() != 1 {
		t.Fatalf("synced again %d times before the requeue delay", calls.Load()-1)
	}
	clk.Step(time.Second)
	eventually(t, "the requeued sync", func() bool { return calls.Load() == 2 })
	if n := requeuesOnSecond.Load(); n != 0 {
		t.Errorf("NumRequeues = %d on the requeued sync, want 0 (a requeue is not a failure)", n)
	}
}

func TestMaxRetriesDropsTheKeyWithOneLine(t *testing.T) {
	logger, logs := newLogger()
	q := immediateQueue()
	var calls atomic.Int32
	l := Loop[string]{Logger: logger, KeyKind: "key", Queue: q, MaxRetries: 3,
		Sync: func(context.Context, string) error { calls.Add(1); return errors.New("boom") }}
	q.Add("a")
	start(t, l)
	const dropped = "sync failed, dropping the key until its next change"
	eventually(t, "the drop line", func() bool { return logs.find(dropped) != nil })
	if n := calls.Load(); n != 4 {
		t.Errorf("synced %d times, want 4 (the first try and 3 retries)", n)
	}
	if n := logs.count(dropped); n != 1 {
		t.Errorf("%d drop lines, want 1", n)
	}
	if n := logs.count("sync failed, will retry"); n != 3 {
		t.Errorf("%d retry lines, want 3", n)
	}
	if line := logs.find(dropped); line["key"] != "a" || line["component"] != "test-controller" {
		t.Errorf("drop line %v lacks the key or the component", line)
	}
	eventually(t, "the dropped key to leave the queue", func() bool { return q.Len() == 0 && q.NumRequeues("a") == 0 })
}

func TestWithoutMaxRetriesAKeyIsRetriedUntilItSyncs(t *testing.T) {
	q := immediateQueue()
	var calls atomic.Int32
	l := Loop[string]{Queue: q, Sync: func(context.Context, string) error {
		if calls.Add(1) < 30 {
			return errors.New("not yet")
		}
		return nil
	}}
	q.Add("a")
	start(t, l)
	eventually(t, "the 30th sync", func() bool { return calls.Load() == 30 })
	eventually(t, "the key's back-off to be forgotten", func() bool { return q.NumRequeues("a") == 0 })
}

func TestBackOffIsCapped(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	q := &watchedQueue{TypedRateLimitingInterface: NewQueue[string]("test", clk)}
	var calls atomic.Int32
	l := Loop[string]{Queue: q, Sync: func(context.Context, string) error { calls.Add(1); return errors.New("boom") }}
	q.Add("a")
	start(t, l)
	// 5ms doubling reaches the 1000s cap after 18 failures; each further
	// failure waits no longer than the cap.
	for want := int32(1); want <= 25; want++ {
		eventually(t, "a sync and its retry timer", func() bool { return calls.Load() == want && q.delayed.Load() == want })
		clk.Step(1000 * time.Second)
	}
}

func TestPreStartRunsAfterTheCachesAndBeforeTheFirstSync(t *testing.T) {
	var synced, prestarted atomic.Bool
	var sawCachesSynced, sawPreStart atomic.Bool
	var calls atomic.Int32
	q := immediateQueue()
	l := Loop[string]{
		Queue:  q,
		Synced: []cache.InformerSynced{synced.Load},
		PreStart: func(context.Context) error {
			sawCachesSynced.Store(synced.Load())
			prestarted.Store(true)
			return nil
		},
		Sync: func(context.Context, string) error {
			sawPreStart.Store(prestarted.Load())
			calls.Add(1)
			return nil
		},
	}
	q.Add("a")
	start(t, l)
	synced.Store(true)
	eventually(t, "the first sync", func() bool { return calls.Load() == 1 })
	if !sawCachesSynced.Load() {
		t.Error("PreStart ran before the caches synced")
	}
	if !sawPreStart.Load() {
		t.Error("a sync ran before PreStart")
	}
}

func TestPreStartErrorEndsRun(t *testing.T) {
	want := errors.New("no occupancy")
	var calls atomic.Int32
	q := immediateQueue()
	q.Add("a")
	done := start(t, Loop[string]{Queue: q,
		PreStart: func(context.Context) error { return want },
		Sync:     func(context.Context, string) error { calls.Add(1); return nil }})
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Errorf("Run = %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if calls.Load() != 0 {
		t.Errorf("%d syncs after PreStart failed", calls.Load())
	}
}

func TestSyncLogsWithItsKey(t *testing.T) {
	logger, logs := newLogger()
	q := immediateQueue()
	l := Loop[string]{Logger: logger, KeyKind: "namespace", Queue: q, Workers: 3,
		Sync: func(ctx context.Context, key string) error {
			Logger(ctx).Info("synced " + key)
			return nil
		}}
	for _, k := range []string{"a", "b", "c"} {
		q.Add(k)
	}
	start(t, l)
	for _, k := range []string{"a", "b", "c"} {
		eventually(t, "the line of "+k, func() bool { return logs.find("synced "+k) != nil })
		line := logs.find("synced " + k)
		if line["namespace"] != k || line["component"] != "test-controller" {
			t.Errorf("line %v: want namespace=%s and the component", line, k)
		}
	}
}

func TestLoggerOutsideASyncDiscards(t *testing.T) {
	if Logger(context.Background()) == nil {
		t.Fatal("Logger returned nil outside a sync")
	}
	Logger(context.Background()).Info("dropped")
}

func TestRunReturnsNilWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := func() bool { return false }
	err := Loop[string]{Queue: immediateQueue(), Synced: []cache.InformerSynced{never},
		Sync: func(context.Context, string) error { return nil }}.Run(ctx)
	if err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestRunWaitsForTheSyncsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	q := immediateQueue()
	q.Add("a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Loop[string]{Queue: q, Sync: func(ctx context.Context, _ string) error {
			close(started)
			<-ctx.Done()
			<-release
			finished.Store(true)
			return nil
		}}.Run(ctx)
	}()
	<-started
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a sync was in flight")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if !finished.Load() {
		t.Error("Run returned before the sync did")
	}
}
