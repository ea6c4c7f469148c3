package replicaset

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// expectationsTTL bounds how long a ReplicaSet waits for the informer to
// report creations and deletions it made before it syncs again anyway
// (upstream's ExpectationsTimeout).
const expectationsTTL = 5 * time.Minute

// expectations remembers, per ReplicaSet key, how many Pod creations and
// which Pod deletions the controller has made and not yet seen in its
// informer. While they are outstanding the controller does not create or
// delete more Pods for that ReplicaSet, so a lagging cache cannot make it
// act twice.
type expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	records map[string]*expectation
}

type expectation struct {
	adds      int
	deletions map[string]struct{} // pod keys
	at        time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, records: map[string]*expectation{}}
}

// satisfied reports whether the controller may act on key: nothing is
// outstanding, or what is outstanding has expired.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.records[key]
	if !ok {
		return true
	}
	if r.adds <= 0 && len(r.deletions) == 0 {
		return true
	}
	return e.clock.Since(r.at) > expectationsTTL
}

// expectCreations records that n creations are about to be made for key.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records[key] = &expectation{adds: n, at: e.clock.Now()}
}

// expectDeletions records that the pods with podKeys are about to be
// deleted for key.
func (e *expectations) expectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &expectation{deletions: make(map[string]struct{}, len(podKeys)), at: e.clock.Now()}
	for _, k := range podKeys {
		r.deletions[k] = struct{}{}
	}
	e.records[key] = r
}

// creationObserved lowers the outstanding creations of key by one; it is
// called when the informer reports a new pod and when a creation failed
// or was skipped.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		r.adds--
	}
}

// deletionObserved marks the deletion of podKey as seen for key.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		delete(r.deletions, podKey)
	}
}

// forget drops everything recorded for key, when its ReplicaSet is gone.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, key)
}
